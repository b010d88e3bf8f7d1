package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLinkExchangesFramesBothWays(t *testing.T) {
	a := startNode(t, "a", nil)
	b := startNode(t, "b", nil)

	la := dial(t, a, b)
	if got := la.Peer(); got.Name != b.NodeName() || got.Addr != b.Addr() {
		t.Fatalf("dialer sees peer %+v, want name %s addr %s", got, b.NodeName(), b.Addr())
	}
	if !la.Outbound() {
		t.Error("dialled link should be outbound")
	}
	waitFor(t, 5*time.Second, func() bool { return b.in.numLinks() == 1 }, "b reports the inbound link")
	lb := b.in.link(0)
	if got := lb.Peer(); got.Name != a.NodeName() || got.Addr != a.Addr() || got.Incarnation != a.cfg.Incarnation {
		t.Fatalf("acceptor sees peer %+v, want %s %s %d", got, a.NodeName(), a.Addr(), a.cfg.Incarnation)
	}
	if lb.Outbound() {
		t.Error("accepted link should be inbound")
	}

	if err := la.Send([]byte("hello b")); err != nil {
		t.Fatal(err)
	}
	if err := lb.Send([]byte("hello a")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { return b.in.count() == 1 && a.in.count() == 1 }, "one frame each way")
	if got := string(b.in.get()[0]); got != "hello b" {
		t.Errorf("b got %q", got)
	}
	if got := string(a.in.get()[0]); got != "hello a" {
		t.Errorf("a got %q", got)
	}
	// Empty frames are frames too.
	if err := la.Send(nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { return b.in.count() == 2 }, "empty frame")
	if s := la.Stats(); s.FramesSent != 2 || s.BytesSent == 0 {
		t.Errorf("stats %+v", s)
	}
	if n := a.Stats().Links; n != 1 {
		t.Errorf("a has %d links", n)
	}
}

// Frames from each sender arrive in the order sent, under concurrency, both
// directions at once.
func TestLinkFIFOUnderConcurrentSenders(t *testing.T) {
	const senders, perSender = 4, 2500
	a := startNode(t, "a", nil)
	b := startNode(t, "b", nil)
	la := dial(t, a, b)
	waitFor(t, 5*time.Second, func() bool { return b.in.numLinks() == 1 }, "inbound link")
	lb := b.in.link(0)

	var wg sync.WaitGroup
	for _, l := range []*Link{la, lb} {
		for s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perSender {
					f := make([]byte, 5, 64)
					f[0] = byte(s)
					binary.BigEndian.PutUint32(f[1:], uint32(i))
					if err := l.Send(f); err != nil {
						t.Errorf("send: %v", err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	total := senders * perSender
	for _, n := range []*node{a, b} {
		waitFor(t, 20*time.Second, func() bool { return n.in.count() == total }, "%s receives %d frames (has %d)", n.NodeName(), total, n.in.count())
		next := make([]uint32, senders)
		for _, f := range n.in.get() {
			s, seq := f[0], binary.BigEndian.Uint32(f[1:])
			if seq != next[s] {
				t.Fatalf("%s: sender %d: got seq %d, want %d", n.NodeName(), s, seq, next[s])
			}
			next[s]++
		}
	}
}

func TestWrongSecretIsRefusedOnBothSides(t *testing.T) {
	a := startNode(t, "a", nil)
	b := startNode(t, "b", func(c *Config) { c.Secret = []byte("another secret") })

	err := dialErr(a, b)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("Dial error = %v, want ErrAuth", err)
	}
	if a.in.numLinks() != 0 {
		t.Error("a reported a link")
	}
	waitFor(t, 5*time.Second, func() bool { return a.logs.hasLine("level=ERROR", "secrets differ") }, "error log on the dialer")
	waitFor(t, 5*time.Second, func() bool { return b.logs.hasLine("level=ERROR", "secrets differ", a.NodeName()) }, "error log on the acceptor")
	if b.in.numLinks() != 0 {
		t.Error("b reported a link")
	}
	// And the other way round.
	if err := dialErr(b, a); !errors.Is(err, ErrAuth) {
		t.Fatalf("reverse Dial error = %v, want ErrAuth", err)
	}
}

func TestClusterMismatchIsRefused(t *testing.T) {
	a := startNode(t, "a", nil)
	b := startNode(t, "b", func(c *Config) { c.ClusterName = "other" })

	err := dialErr(a, b)
	if !errors.Is(err, ErrClusterMismatch) {
		t.Fatalf("Dial error = %v, want ErrClusterMismatch", err)
	}
	if want := `want "other" got "test"`; !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Errorf("error %q does not say %s", err, want)
	}
	waitFor(t, 5*time.Second, func() bool { return a.logs.hasLine("level=ERROR", "cluster name mismatch") }, "error log on the dialer")
	waitFor(t, 5*time.Second, func() bool {
		return b.logs.hasLine("level=ERROR", "cluster name mismatch", `want \"other\" got \"test\"`)
	}, "error log on the acceptor")
}

func TestLinkToSelfIsRefused(t *testing.T) {
	a := startNode(t, "a", nil)
	if err := dialErr(a, a); !errors.Is(err, ErrSameName) {
		t.Fatalf("Dial self = %v, want ErrSameName", err)
	}
}

// An oversized frame closes that link only; others keep working. Send
// refuses frames over our own limit without closing anything.
func TestOversizedFrameClosesOnlyThatLink(t *testing.T) {
	a := startNode(t, "a", nil)
	b := startNode(t, "b", func(c *Config) { c.MaxFrameSize = 1024 })
	c := startNode(t, "c", nil)

	la := dial(t, a, b)
	lc := dial(t, c, b)
	waitFor(t, 5*time.Second, func() bool { return b.in.numLinks() == 2 }, "two inbound links")

	if err := la.Send(make([]byte, 2048)); err != nil {
		t.Fatal(err)
	}
	<-la.Done()
	if !errors.Is(la.Err(), ErrFrameTooLarge) {
		t.Errorf("sender link error = %v, want ErrFrameTooLarge", la.Err())
	}
	waitFor(t, 5*time.Second, func() bool { return b.logs.hasLine("level=ERROR", "frame too large") }, "b logs the oversized frame")

	if err := lc.Send([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { return b.in.count() == 1 }, "frame on the other link")

	// Sender-side limit.
	bToC := dial(t, b, c)
	if err := bToC.Send(make([]byte, 1025)); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("Send over own limit = %v, want ErrFrameTooLarge", err)
	}
	if err := bToC.Send([]byte("ok")); err != nil {
		t.Errorf("link closed by a refused Send: %v", err)
	}
}

// Garbage on a fresh connection closes that connection and nothing else.
func TestGarbageConnectionsAreDropped(t *testing.T) {
	b := startNode(t, "b", nil)
	a := startNode(t, "a", nil)

	hello := func() []byte {
		h := hello{version: protoVersion, cluster: "test", name: "x@h", addr: "127.0.0.1:1"}
		return h.marshal()
	}
	badVersion := hello()
	badVersion[0] = 99
	cases := map[string][]byte{
		"http":           []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"huge frame":     append([]byte{kindLink}, 0xff, 0xff, 0xff, 0xff, frameHello),
		"unknown frame":  append([]byte{kindLink}, appendFrame(nil, 0x7e, []byte("x"))...),
		"truncated":      append([]byte{kindLink}, 0, 0, 0, 50, frameHello, 1, 2, 3),
		"bad hello":      append([]byte{kindLink}, appendFrame(nil, frameHello, []byte{protoVersion, 200})...),
		"bad version":    append([]byte{kindLink}, appendFrame(nil, frameHello, badVersion)...),
		"bad auth":       append(append([]byte{kindLink}, appendFrame(nil, frameHello, hello())...), appendFrame(nil, frameAuth, make([]byte, macLen))...),
		"short auth":     append(append([]byte{kindLink}, appendFrame(nil, frameHello, hello())...), appendFrame(nil, frameAuth, []byte{1})...),
		"gossip garbage": {kindGossip, 200, 'x'},
		"tls garbage":    append([]byte{kindTLSLink}, bytes.Repeat([]byte{0x16}, 100)...),
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", b.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(payload)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					if errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatal("connection still open after garbage")
					}
					break // closed by b, as wanted
				}
			}
		})
	}
	if b.in.numLinks() != 0 {
		t.Fatal("garbage produced a link")
	}
	dial(t, a, b) // still serving
	waitFor(t, 5*time.Second, func() bool { return b.in.numLinks() == 1 }, "real link after garbage")
}

func TestStalledPeerIsDroppedAfterHandshakeTimeout(t *testing.T) {
	b := startNode(t, "b", func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond })
	for name, payload := range map[string][]byte{"silent": nil, "preamble only": {kindLink}, "half frame": {kindLink, 0, 0}} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", b.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(payload)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = c.Read(make([]byte, 1))
			if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("stalled connection not dropped: %v", err)
			}
		})
	}
}

func TestDialToSilentListenerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()

	a := startNode(t, "a", func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond })
	_, err = a.Dial(context.Background(), ln.Addr().String())
	if !errors.Is(err, ErrHandshake) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Dial to silent listener = %v, want a handshake timeout", err)
	}

	// A cancelled context aborts the handshake too, and says so.
	ctx, cancel := context.WithCancel(context.Background())
	a2 := startNode(t, "a2", func(c *Config) { c.HandshakeTimeout = time.Minute })
	go func() {
		// Cancel once the handshake is under way.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			mu.Lock()
			n := len(held)
			mu.Unlock()
			if n == 2 {
				break
			}
		}
		cancel()
	}()
	_, err = a2.Dial(ctx, ln.Addr().String())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial with cancelled context = %v, want context.Canceled", err)
	}
}

func TestLinkCloseTellsThePeer(t *testing.T) {
	a := startNode(t, "a", nil)
	b := startNode(t, "b", nil)
	la := dial(t, a, b)
	waitFor(t, 5*time.Second, func() bool { return b.in.numLinks() == 1 }, "inbound link")
	lb := b.in.link(0)

	la.Close()
	<-lb.Done()
	if !errors.Is(lb.Err(), ErrPeerClosed) {
		t.Errorf("peer link error = %v, want ErrPeerClosed", lb.Err())
	}
	if !errors.Is(la.Err(), ErrClosed) {
		t.Errorf("local link error = %v, want ErrClosed", la.Err())
	}
	if err := la.Send([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
	if err := lb.Send([]byte("x")); !errors.Is(err, ErrClosed) || !errors.Is(err, ErrPeerClosed) {
		t.Errorf("Send on peer-closed link = %v, want ErrClosed wrapping ErrPeerClosed", err)
	}
	waitFor(t, 5*time.Second, func() bool { return len(a.Links()) == 0 && len(b.Links()) == 0 }, "links forgotten")
}

func TestNetworkCloseClosesLinks(t *testing.T) {
	a := startNode(t, "a", nil)
	b := startNode(t, "b", nil)
	la := dial(t, a, b)
	waitFor(t, 5*time.Second, func() bool { return b.in.numLinks() == 1 }, "inbound link")

	b.Close()
	<-la.Done()
	if !errors.Is(la.Err(), ErrPeerClosed) {
		t.Errorf("link error after peer shutdown = %v", la.Err())
	}
	if err := b.in.link(0).Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("local link error after Close = %v", err)
	}
	if _, err := b.Dial(context.Background(), a.Addr()); !errors.Is(err, ErrClosed) {
		t.Errorf("Dial after Close = %v", err)
	}
	if err := dialErr(a, b); err == nil {
		t.Error("Dial to a closed network succeeded")
	}
	b.Close() // idempotent
}

// Frames sent before the receiver sets its handler are held, not lost.
func TestFramesWaitForLateHandler(t *testing.T) {
	a := startNode(t, "a", func(c *Config) { c.OnLink = nil })
	b := startNode(t, "b", func(c *Config) {
		c.OnLink = func(l *Link) {
			for i := range 10 {
				l.Send([]byte{byte(i)})
			}
		}
	})
	la := dial(t, a, b)
	time.Sleep(20 * time.Millisecond) // let frames arrive first; correctness does not depend on it
	in := &inbox{}
	la.SetHandler(in.handler)
	waitFor(t, 5*time.Second, func() bool { return in.count() == 10 }, "10 frames")
	for i, f := range in.get() {
		if f[0] != byte(i) {
			t.Fatalf("frame %d is %d", i, f[0])
		}
	}
}

func TestKeepaliveMeasuresRTT(t *testing.T) {
	fast := func(c *Config) { c.KeepaliveInterval = 20 * time.Millisecond }
	a := startNode(t, "a", fast)
	b := startNode(t, "b", fast)
	la := dial(t, a, b)
	waitFor(t, 5*time.Second, func() bool { return la.RTT() > 0 }, "an RTT measurement")
	if la.Stats().RTT <= 0 {
		t.Error("stats miss RTT")
	}
}

// A receiver whose handler is stuck: Send never waits. Once the queue is
// over SendQueueBytes, the next Send closes the link with ErrOverload (the
// one overload policy) and returns at once.
func TestSendOverloadClosesLinkAtOnce(t *testing.T) {
	release := make(chan struct{})
	a := startNode(t, "a", func(c *Config) { c.SendQueueBytes = 256 << 10 })
	b := startNode(t, "b", func(c *Config) {
		c.OnLink = func(l *Link) { l.SetHandler(func([]byte) { <-release }) }
	})
	defer close(release)
	la := dial(t, a, b)
	frame := make([]byte, 16<<10)
	var sent int
	var slowest time.Duration
	start := time.Now()
	var err error
	for err == nil && time.Since(start) < 20*time.Second {
		t0 := time.Now()
		err = la.Send(frame)
		slowest = max(slowest, time.Since(t0))
		sent++
	}
	t.Logf("%d sends of 16 KiB before the overload, in %s; slowest Send %s", sent, time.Since(start).Round(time.Millisecond), slowest)
	if !errors.Is(err, ErrOverload) || !errors.Is(err, ErrClosed) {
		t.Fatalf("Send error = %v, want ErrOverload (and ErrClosed)", err)
	}
	if slowest > 2*time.Second { // loose: it used to wait for the write timeout
		t.Errorf("a Send took %s: it must never wait", slowest)
	}
	if !errors.Is(la.Err(), ErrOverload) {
		t.Errorf("link error = %v, want ErrOverload", la.Err())
	}
	if err := la.Send([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after the overload = %v, want ErrClosed", err)
	}
	_ = b
}

// A peer that stops reading while the queue stays under its bound loses
// the link after WriteTimeout, with an error that says so.
func TestWriteStallClosesLink(t *testing.T) {
	release := make(chan struct{})
	a := startNode(t, "a", func(c *Config) {
		c.WriteTimeout = 300 * time.Millisecond
		c.SendQueueBytes = 1 << 30
	})
	b := startNode(t, "b", func(c *Config) {
		c.OnLink = func(l *Link) { l.SetHandler(func([]byte) { <-release }) }
	})
	defer close(release)
	la := dial(t, a, b)
	frame := make([]byte, 64<<10)
	deadline := time.Now().Add(30 * time.Second)
	for la.Send(frame) == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // a trickle: the socket fills, the queue does not
	}
	select {
	case <-la.Done():
	default:
		t.Fatal("the link to a peer that stopped reading stayed up")
	}
	if errors.Is(la.Err(), ErrOverload) || !strings.Contains(la.Err().Error(), "not reading") {
		t.Errorf("link error %q does not explain the stall", la.Err())
	}
	_ = b
}

func TestHandlerPanicClosesLinkNotNode(t *testing.T) {
	a := startNode(t, "a", nil)
	b := startNode(t, "b", func(c *Config) {
		c.OnLink = func(l *Link) { l.SetHandler(func([]byte) { panic("boom") }) }
	})
	la := dial(t, a, b)
	la.Send([]byte("x"))
	<-la.Done()
	waitFor(t, 5*time.Second, func() bool { return b.logs.hasLine("level=ERROR", "panicked", "boom") }, "panic logged")
	dial(t, a, b) // b still serves
}

func TestTLSLinks(t *testing.T) {
	dir := t.TempDir()
	cert, key, ca := writeTLSFiles(t, dir, "one")
	tlsA, err := LoadTLS(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	cert2, key2, ca2 := writeTLSFiles(t, dir, "two")
	tlsOther, err := LoadTLS(cert2, key2, ca2)
	if err != nil {
		t.Fatal(err)
	}

	a := startNode(t, "a", func(c *Config) { c.TLS = tlsA })
	b := startNode(t, "b", func(c *Config) { c.TLS = tlsA })
	la := dial(t, a, b)
	la.Send([]byte("over tls"))
	waitFor(t, 5*time.Second, func() bool { return b.in.count() == 1 }, "frame over TLS")

	other := startNode(t, "other", func(c *Config) { c.TLS = tlsOther })
	if err := dialErr(other, b); !errors.Is(err, ErrHandshake) {
		t.Errorf("Dial with a foreign CA = %v, want ErrHandshake", err)
	}
	plain := startNode(t, "plain", nil)
	if err := dialErr(plain, b); err == nil || !bytes.Contains([]byte(err.Error()), []byte("requires TLS")) {
		t.Errorf("plaintext Dial to TLS node = %v, want 'requires TLS'", err)
	}
	if err := dialErr(a, plain); !errors.Is(err, ErrHandshake) {
		t.Errorf("TLS Dial to plaintext node = %v, want ErrHandshake", err)
	}
	waitFor(t, 5*time.Second, func() bool { return plain.logs.hasLine("wants TLS") }, "plaintext node explains")

	if _, err := LoadTLS(cert, key, cert+".missing"); err == nil {
		t.Error("LoadTLS with a missing CA succeeded")
	}
}

func TestConfigValidation(t *testing.T) {
	good := Config{ClusterName: "c", NodeName: "n@h", Secret: []byte("s"), BindAddr: "127.0.0.1:0"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"no cluster":     func(c *Config) { c.ClusterName = "" },
		"long cluster":   func(c *Config) { c.ClusterName = string(make([]byte, 200)) },
		"control chars":  func(c *Config) { c.NodeName = "a\nb" },
		"no secret":      func(c *Config) { c.Secret = nil },
		"bad bind":       func(c *Config) { c.BindAddr = "nope" },
		"hostname adv":   func(c *Config) { c.AdvertiseAddr = "example.com:1" },
		"negative frame": func(c *Config) { c.MaxFrameSize = -1 },
		"negative time":  func(c *Config) { c.WriteTimeout = -1 },
	} {
		c := good
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
		if _, err := Listen(c); err == nil {
			t.Errorf("%s: Listen accepted it", name)
		}
	}
}

func TestAddrUsesOnePortForTCPAndUDP(t *testing.T) {
	n := startNode(t, "a", func(c *Config) { c.AdvertiseAddr = "10.1.2.3" })
	host, port, _ := net.SplitHostPort(n.Addr())
	if host != "10.1.2.3" || port == "0" {
		t.Fatalf("Addr = %s", n.Addr())
	}
	if got := n.udp.LocalAddr().(*net.UDPAddr).Port; fmt.Sprint(got) != port {
		t.Errorf("udp port %d, tcp port %s", got, port)
	}
}

func TestFingerprintAndGossipKey(t *testing.T) {
	fp := Fingerprint([]byte("s1"))
	if len(fp) != 16 || fp != Fingerprint([]byte("s1")) || fp == Fingerprint([]byte("s2")) {
		t.Errorf("fingerprint %q not stable or not distinct", fp)
	}
	k := GossipKey([]byte("s1"), "c1")
	if len(k) != 32 || !bytes.Equal(k, GossipKey([]byte("s1"), "c1")) {
		t.Fatal("gossip key not 32 stable bytes")
	}
	if bytes.Equal(k, GossipKey([]byte("s1"), "c2")) || bytes.Equal(k, GossipKey([]byte("s2"), "c1")) {
		t.Error("gossip key ignores cluster or secret")
	}
	if bytes.Equal(k, linkKey([]byte("s1"), "c1")) {
		t.Error("gossip key equals link key")
	}
}
