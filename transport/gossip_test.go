package transport

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func startMember(t *testing.T, n *node) *memberlist.Memberlist {
	t.Helper()
	c := memberlist.DefaultLocalConfig()
	c.Name = n.NodeName()
	c.Transport = n.Gossip()
	c.Label = n.cfg.ClusterName
	c.SecretKey = GossipKey(n.cfg.Secret, n.cfg.ClusterName)
	_, port, _ := net.SplitHostPort(n.Addr())
	c.BindPort, _ = strconv.Atoi(port)
	c.ProbeInterval = 100 * time.Millisecond
	c.ProbeTimeout = 50 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.PushPullInterval = time.Second
	c.TCPTimeout = time.Second
	c.SuspicionMult = 2
	c.LogOutput = io.Discard
	m, err := memberlist.Create(c)
	if err != nil {
		t.Fatalf("memberlist.Create: %v", err)
	}
	t.Cleanup(func() { m.Shutdown() }) // runs before the Network's Close
	return m
}

func alive(m *memberlist.Memberlist) int { return m.NumMembers() }

// Three memberlist instances gossip over the adapter: they join and converge,
// a cut isolates a node from gossip, and the counters show the drops.
func TestMemberlistOverGossipAdapter(t *testing.T) {
	nodes := []*node{startNode(t, "g1", nil), startNode(t, "g2", nil), startNode(t, "g3", nil)}
	var ms []*memberlist.Memberlist
	for _, n := range nodes {
		ms = append(ms, startMember(t, n))
	}
	if got := ms[0].LocalNode().Address(); got != nodes[0].Addr() {
		t.Fatalf("memberlist advertises %s, network is %s", got, nodes[0].Addr())
	}
	for _, m := range ms[1:] {
		if _, err := m.Join([]string{nodes[0].Addr()}); err != nil {
			t.Fatalf("join: %v", err)
		}
	}
	waitFor(t, 10*time.Second, func() bool {
		return alive(ms[0]) == 3 && alive(ms[1]) == 3 && alive(ms[2]) == 3
	}, "3 members everywhere (%d %d %d)", alive(ms[0]), alive(ms[1]), alive(ms[2]))
	waitFor(t, 10*time.Second, func() bool {
		s := nodes[0].Stats()
		return s.PacketsReceived > 0 && s.PacketsSent > 0 && s.StreamsIn > 0
	}, "gossip packets and streams through g1's adapter: %+v", nodes[0].Stats())

	// Cut g3 off from g1 and g2 (on their side, by name): they declare it dead.
	for _, n := range nodes[:2] {
		n.Faults().Block(nodes[2].NodeName(), Both)
	}
	waitFor(t, 15*time.Second, func() bool { return alive(ms[0]) == 2 && alive(ms[1]) == 2 },
		"g1 and g2 see g3 gone (%d %d)", alive(ms[0]), alive(ms[1]))
	if nodes[0].Stats().PacketsDropped == 0 {
		t.Error("no packets dropped by the cut")
	}
}

func TestGossipAdapterLifecycle(t *testing.T) {
	n := startNode(t, "g", nil)
	g := n.Gossip()
	if n.Gossip() != g {
		t.Fatal("Gossip returned a second adapter while the first is live")
	}
	ip, port, err := g.FinalAdvertiseAddr("", 0)
	if err != nil || net.JoinHostPort(ip.String(), strconv.Itoa(port)) != n.Addr() {
		t.Fatalf("FinalAdvertiseAddr = %v %d %v, want %s", ip, port, err, n.Addr())
	}
	if ip, port, _ := g.FinalAdvertiseAddr("10.0.0.1", 0); ip.String() != "10.0.0.1" || strconv.Itoa(port) == "0" {
		t.Errorf("explicit advertise = %v %d", ip, port)
	}
	if _, _, err := g.FinalAdvertiseAddr("not-an-ip", 1); err == nil {
		t.Error("bad advertise IP accepted")
	}

	// A refused stream dial fails fast; a blocked packet is dropped silently.
	other := startNode(t, "h", nil)
	n.Faults().Refuse(other.Addr())
	if _, err := g.DialTimeout(other.Addr(), time.Second); !errors.Is(err, ErrRefused) {
		t.Errorf("refused stream dial = %v", err)
	}
	n.Faults().Block(other.NodeName(), Outbound)
	if _, err := g.(*gossipTransport).WriteToAddress([]byte("x"), memberlist.Address{Addr: other.Addr(), Name: other.NodeName()}); err != nil {
		t.Errorf("blocked packet write = %v", err)
	}
	if n.Stats().PacketsDropped != 1 {
		t.Errorf("PacketsDropped = %d", n.Stats().PacketsDropped)
	}
	n.Faults().ClearAll()

	// A stream to a node with no memberlist is closed by it.
	c, err := g.DialTimeout(other.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("stream to a node without gossip stayed open: %v", err)
	}
	c.Close()

	// Shutdown detaches without closing the Network's sockets.
	g.Shutdown()
	g.Shutdown()
	if _, err := g.WriteTo([]byte("x"), other.Addr()); err == nil {
		t.Error("write after Shutdown succeeded")
	}
	if _, err := g.DialTimeout(other.Addr(), time.Second); err == nil {
		t.Error("dial after Shutdown succeeded")
	}
	if g2 := n.Gossip(); g2 == g {
		t.Error("Gossip after Shutdown returned the dead adapter")
	}
	dial(t, other, n) // the listener still serves
}

// Fault rules apply to memberlist streams already open: a cut fails the
// stream, in the cut direction only.
func TestGossipStreamFaults(t *testing.T) {
	f := NewFaults()
	local, remote := net.Pipe()
	defer remote.Close()
	c := &faultConn{Conn: local, faults: f, name: "peer@h", addr: "127.0.0.1:9"}
	go io.Copy(io.Discard, remote)

	if _, err := c.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	f.Delay("peer@h", time.Millisecond, 0)
	if _, err := c.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	f.Block("127.0.0.1:9", Inbound)
	if _, err := c.Write([]byte("outbound still works")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, ErrRefused) {
		t.Fatalf("Read across an inbound cut = %v", err)
	}
	local2, remote2 := net.Pipe()
	defer remote2.Close()
	c2 := &faultConn{Conn: local2, faults: f, name: "peer@h", addr: "127.0.0.1:9"}
	f.Block("peer@h", Outbound)
	if _, err := c2.Write([]byte("x")); !errors.Is(err, ErrRefused) {
		t.Fatalf("Write across an outbound cut = %v", err)
	}
}

// Delayed gossip packets still arrive; one still pending at Close is
// cancelled (goleak would catch a leaked timer goroutine).
func TestGossipPacketDelay(t *testing.T) {
	a := startNode(t, "a", nil)
	b := startNode(t, "b", nil)
	ga, gb := a.Gossip(), b.Gossip()

	a.Faults().Delay(b.NodeName(), 10*time.Millisecond, 5*time.Millisecond)
	if _, err := ga.WriteToAddress([]byte("late"), memberlist.Address{Addr: b.Addr(), Name: b.NodeName()}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-gb.PacketCh():
		if string(p.Buf) != "late" || p.From.String() != a.Addr() {
			t.Fatalf("got %q from %s", p.Buf, p.From)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("delayed packet never arrived")
	}

	a.Faults().Delay(b.NodeName(), time.Hour, 0)
	if _, err := ga.WriteTo([]byte("never"), b.Addr()); err != nil { // name learnt above
		t.Fatal(err)
	}
	a.Close()
}
