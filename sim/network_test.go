package sim_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/sim"
)

var (
	ipA = netip.MustParseAddr("10.1.0.1")
	ipB = netip.MustParseAddr("10.1.0.2")
)

// pipe returns both ends of a simulated stream connection from ipA to ipB.
func pipe(t testing.TB, nw *sim.Network) (client, server net.Conn) {
	t.Helper()
	ln, err := nw.Host(ipB).Listen("10.1.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = nw.Host(ipA).Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	return client, server
}

// TestConnConformance runs x/net's net.Conn conformance suite (reads and
// writes, deadlines, concurrent use, close) on simulated streams.
func TestConnConformance(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		nw := sim.NewNetwork(1)
		c1, c2 = pipe(t, nw)
		return c1, c2, func() { c1.Close(); c2.Close(); nw.Close() }, nil
	})
}

func packetConns(t *testing.T, nw *sim.Network) (a, b net.PacketConn) {
	t.Helper()
	a, err := nw.Host(ipA).ListenPacket("10.1.0.1:7000")
	must(t, err)
	b, err = nw.Host(ipB).ListenPacket("10.1.0.2:7000")
	must(t, err)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func readPacket(t *testing.T, c net.PacketConn) (string, net.Addr) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(testutil.Scale(5 * time.Second)))
	buf := make([]byte, 100)
	n, from, err := c.ReadFrom(buf)
	must(t, err)
	return string(buf[:n]), from
}

func TestPackets(t *testing.T) {
	nw := sim.NewNetwork(1)
	defer nw.Close()
	a, b := packetConns(t, nw)
	if _, err := a.WriteTo([]byte("hello"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if m, from := readPacket(t, b); m != "hello" || from.String() != "10.1.0.1:7000" {
		t.Fatalf("got %q from %v", m, from)
	}
	// A read deadline in the past fails at once, as a timeout.
	b.SetReadDeadline(time.Now().Add(-time.Second))
	if _, _, err := b.ReadFrom(make([]byte, 10)); !isTimeout(err) {
		t.Fatalf("read past deadline: %v", err)
	}
	// A full queue drops, like a full UDP receive buffer.
	for range 2000 {
		a.WriteTo([]byte("x"), b.LocalAddr())
	}
	if st := nw.Stats(); st.DroppedFull == 0 || st.PacketsDelivered < 1000 {
		t.Fatalf("stats after a burst: %+v", st)
	}
	// A cut drops; a datagram to nobody vanishes.
	nw.SetPath(ipA, ipB, sim.PathFaults{Cut: true})
	a.WriteTo([]byte("lost"), b.LocalAddr())
	a.WriteTo([]byte("nobody"), &net.UDPAddr{IP: net.IPv4(10, 1, 0, 9), Port: 1})
	if st := nw.Stats(); st.DroppedCut != 1 || st.NoSocket != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
}

func TestListenAddresses(t *testing.T) {
	nw := sim.NewNetwork(1)
	defer nw.Close()
	h := nw.Host(ipA)
	ln, err := h.Listen("0.0.0.0:0")
	must(t, err)
	defer ln.Close()
	ap := netip.MustParseAddrPort(ln.Addr().String())
	if ap.Addr() != ipA || ap.Port() == 0 {
		t.Fatalf("bound %v", ap)
	}
	// The packet side binds the same port, as the transport does.
	pc, err := h.ListenPacket(ln.Addr().String())
	must(t, err)
	defer pc.Close()
	if _, err := h.Listen(ln.Addr().String()); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second listen: %v", err)
	}
	if _, err := h.Listen("10.1.0.2:80"); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("listen on another host's address: %v", err)
	}
}

func TestDialRefusedAndCut(t *testing.T) {
	nw := sim.NewNetwork(1)
	defer nw.Close()
	ctx := context.Background()
	if _, err := nw.Host(ipA).Dial(ctx, "10.1.0.2:80"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to nobody: %v", err)
	}
	ln, err := nw.Host(ipB).Listen("10.1.0.2:80")
	must(t, err)
	defer ln.Close()
	nw.SetPath(ipA, ipB, sim.PathFaults{Refuse: true})
	if _, err := nw.Host(ipA).Dial(ctx, "10.1.0.2:80"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial refused by a fault: %v", err)
	}
	// Over a cut (here the way back), a dial waits: until its context
	// ends, or until the cut is lifted.
	nw.SetPath(ipA, ipB, sim.PathFaults{})
	nw.SetPath(ipB, ipA, sim.PathFaults{Cut: true})
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := nw.Host(ipA).Dial(short, "10.1.0.2:80"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial over a cut: %v", err)
	}
	dialed := make(chan error, 1)
	go func() {
		c, err := nw.Host(ipA).Dial(ctx, "10.1.0.2:80")
		if err == nil {
			c.Close()
		}
		dialed <- err
	}()
	select {
	case err := <-dialed:
		t.Fatalf("dial returned over a cut: %v", err)
	default:
	}
	nw.ClearPaths()
	if err := testutil.Recv(t, dialed, 5*time.Second, "dial after the cut is lifted"); err != nil {
		t.Fatal(err)
	}
}

func TestCrashResetsPeers(t *testing.T) {
	nw := sim.NewNetwork(1)
	defer nw.Close()
	c, s := pipe(t, nw)
	defer c.Close()
	defer s.Close()
	read := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 10))
		read <- err
	}()
	nw.Host(ipB).Crash()
	if err := testutil.Recv(t, read, 5*time.Second, "read after the peer crashed"); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("write: %v", err)
	}
	if _, err := nw.Host(ipA).Dial(context.Background(), s.LocalAddr().String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a crashed host: %v", err)
	}
	if !nw.Host(ipB).Crashed() {
		t.Fatal("not crashed")
	}
	nw.Host(ipB).Revive()
	ln, err := nw.Host(ipB).Listen("10.1.0.2:0")
	must(t, err)
	ln.Close()
}

// Stream bytes across a cut or to a paused host are held, then delivered
// in order; jitter never reorders a stream.
func TestStreamHeldAndOrdered(t *testing.T) {
	nw := sim.NewNetwork(5)
	defer nw.Close()
	c, s := pipe(t, nw)
	defer c.Close()
	defer s.Close()
	nw.SetPath(ipA, ipB, sim.PathFaults{Delay: time.Millisecond, Jitter: 5 * time.Millisecond})
	nw.Host(ipB).Pause()
	for i := range 50 {
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if n, err := s.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("paused host read %d bytes, %v", n, err)
	}
	nw.Host(ipB).Resume()
	nw.SetPath(ipA, ipB, sim.PathFaults{Cut: true, Delay: time.Millisecond, Jitter: 5 * time.Millisecond})
	if n, err := s.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("read across a cut: %d bytes, %v", n, err)
	}
	nw.SetPath(ipA, ipB, sim.PathFaults{Delay: time.Millisecond, Jitter: 5 * time.Millisecond})
	s.SetReadDeadline(time.Now().Add(testutil.Scale(5 * time.Second)))
	buf := make([]byte, 50)
	if _, err := io.ReadFull(s, buf); err != nil {
		t.Fatal(err)
	}
	for i, b := range buf {
		if int(b) != i {
			t.Fatalf("byte %d = %d: stream reordered", i, b)
		}
	}
}

// The same seed gives the same decisions per pair, whatever other pairs
// do meanwhile; another seed gives others.
func TestSeedReplaysDecisions(t *testing.T) {
	faults := sim.PathFaults{Drop: 0.3, Delay: time.Microsecond, Jitter: 50 * time.Microsecond}
	ipC := netip.MustParseAddr("10.1.0.3")
	run := func(seed uint64, noise bool) []sim.Decision {
		nw := sim.NewNetwork(seed)
		defer nw.Close()
		a, err := nw.Host(ipA).ListenPacket("10.1.0.1:7000")
		must(t, err)
		c, err := nw.Host(ipC).ListenPacket("10.1.0.3:7000")
		must(t, err)
		defer a.Close()
		defer c.Close()
		nw.SetPath(ipA, ipB, faults)
		nw.SetPath(ipC, ipB, faults)
		to := &net.UDPAddr{IP: ipB.AsSlice(), Port: 7000}
		for range 200 {
			if noise {
				c.WriteTo([]byte("noise"), to)
			}
			a.WriteTo([]byte("x"), to)
		}
		var out []sim.Decision
		for _, d := range nw.Decisions() {
			if d.From == ipA {
				out = append(out, d)
			}
		}
		return out
	}
	first := run(42, false)
	if len(first) != 200 {
		t.Fatalf("%d decisions, want 200", len(first))
	}
	drops := 0
	for i, d := range first {
		if d.N != uint64(i+1) || d.Kind != sim.KindPacket || d.Delay < time.Microsecond || d.Delay > 51*time.Microsecond {
			t.Fatalf("decision %d: %v", i, d)
		}
		if d.Drop {
			drops++
		}
	}
	if drops < 30 || drops > 90 {
		t.Fatalf("%d of 200 dropped at rate 0.3", drops)
	}
	if again := run(42, true); !slices.Equal(first, again) {
		t.Fatal("same seed, different decisions")
	}
	if other := run(43, false); slices.Equal(first, other) {
		t.Fatal("another seed, same decisions")
	}
}

func TestClusterRandIsSeeded(t *testing.T) {
	draw := func(seed uint64) []int {
		c, err := sim.New(context.Background(), sim.Options{Nodes: 1, Seed: seed})
		must(t, err)
		defer c.Close()
		var out []int
		for range 10 {
			out = append(out, c.Rand().IntN(1000))
		}
		return out
	}
	if a, b := draw(9), draw(9); !slices.Equal(a, b) {
		t.Fatalf("same seed: %v vs %v", a, b)
	}
}
