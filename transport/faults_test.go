package transport

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// A cut holds a link's frames, as TCP holds its bytes over a cut network:
// nothing arrives while it lasts, and everything arrives, in order, once
// it is lifted (before the keepalive gives up). A cut link never loses a
// frame while it stays up.
func TestBlockOutboundHoldsFramesAndClearReleases(t *testing.T) {
	a := startNode(t, "a", nil)
	b := startNode(t, "b", nil)
	la := dial(t, a, b)

	sent := 0
	for _, peer := range []string{b.NodeName(), b.Addr()} { // by name, then by address
		a.Faults().Block(peer, Outbound)
		for range 3 {
			if err := la.Send([]byte{byte(sent)}); err != nil {
				t.Fatalf("Send while cut = %v, want the frame held", err)
			}
			sent++
		}
		time.Sleep(50 * time.Millisecond)
		if got := b.in.count(); got != sent-3 {
			t.Fatalf("b received %d frames while cut by %s, want %d", got, peer, sent-3)
		}
		a.Faults().Clear(peer)
		waitFor(t, 5*time.Second, func() bool { return b.in.count() == sent }, "the held frames after Clear")
	}
	for i, f := range b.in.get() {
		if f[0] != byte(i) {
			t.Fatalf("frame %d arrived as %d", i, f[0])
		}
	}
	if d := la.Stats().FramesHeld; d < 2 {
		t.Errorf("FramesHeld = %d, want >= 2", d)
	}
	if la.Err() != nil {
		t.Errorf("the link closed: %v", la.Err())
	}
}

func TestBlockInboundHoldsFrames(t *testing.T) {
	quiet := func(c *Config) { c.KeepaliveInterval = time.Hour } // no pings to count
	a := startNode(t, "a", quiet)
	b := startNode(t, "b", quiet)
	la := dial(t, a, b)
	waitFor(t, 5*time.Second, func() bool { return b.in.numLinks() == 1 }, "inbound link")
	lb := b.in.link(0)

	b.Faults().Block(a.NodeName(), Inbound)
	la.Send([]byte("held"))
	waitFor(t, 5*time.Second, func() bool { return lb.Stats().FramesHeld == 1 }, "b holds the frame")
	if b.in.count() != 0 {
		t.Fatal("b received a frame through an inbound cut")
	}
	// Inbound-only: b can still send.
	lb.Send([]byte("from b"))
	waitFor(t, 5*time.Second, func() bool { return a.in.count() == 1 }, "b's frame reaches a")

	b.Faults().ClearAll()
	la.Send([]byte("kept"))
	waitFor(t, 5*time.Second, func() bool { return b.in.count() == 2 }, "frames after ClearAll")
	if got := b.in.get(); string(got[0]) != "held" || string(got[1]) != "kept" {
		t.Fatalf("b received %q", got)
	}
}

// A link cut both ways dies of keepalive, as over a real cut network.
func TestBlockBothEndsLinkByKeepalive(t *testing.T) {
	// a gives up first; b then sees the connection end (a cut link cannot
	// carry a's close frame).
	a := startNode(t, "a", func(c *Config) { c.KeepaliveInterval = 20 * time.Millisecond; c.KeepaliveMisses = 3 })
	b := startNode(t, "b", func(c *Config) { c.KeepaliveInterval = time.Second })
	la := dial(t, a, b)
	waitFor(t, 5*time.Second, func() bool { return b.in.numLinks() == 1 }, "inbound link")
	lb := b.in.link(0)

	a.Faults().Block(b.NodeName(), Both)
	select {
	case <-la.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("cut link stayed up")
	}
	if !errors.Is(la.Err(), ErrKeepalive) {
		t.Errorf("link error = %v, want ErrKeepalive", la.Err())
	}
	<-lb.Done()
	if errors.Is(lb.Err(), ErrKeepalive) {
		t.Errorf("b learnt the keepalive reason through a cut link: %v", lb.Err())
	}
	// And a new link is refused while the cut lasts.
	if err := dialErr(a, b); !errors.Is(err, ErrRefused) {
		t.Errorf("Dial across a cut = %v, want ErrRefused", err)
	}
	if err := dialErr(b, a); !errors.Is(err, ErrRefused) {
		t.Errorf("Dial into a cut = %v, want ErrRefused", err)
	}
	a.Faults().ClearAll()
	dial(t, a, b)
}

// BlockLinks cuts node links only: frames are dropped (and the link dies
// of keepalive), new links are refused, and gossip packets still flow.
func TestBlockLinksCutsLinksNotGossip(t *testing.T) {
	a := startNode(t, "a", func(c *Config) { c.KeepaliveInterval = 20 * time.Millisecond; c.KeepaliveMisses = 3 })
	b := startNode(t, "b", nil)
	la := dial(t, a, b)
	a.Faults().BlockLinks(b.NodeName(), Both)
	if e := a.Faults().match(b.NodeName(), ""); e.blocks(Outbound) || e.refuses() || !e.blocksLink(Outbound) || !e.refusesLink() {
		t.Fatalf("a link-only rule must cut links and nothing else: %+v", e)
	}
	if err := la.Send([]byte("lost")); err != nil {
		t.Fatalf("Send while links are cut = %v, want a silent drop", err)
	}
	select {
	case <-la.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("cut link stayed up")
	}
	if !errors.Is(la.Err(), ErrKeepalive) {
		t.Errorf("link error = %v, want ErrKeepalive", la.Err())
	}
	if err := dialErr(a, b); !errors.Is(err, ErrRefused) {
		t.Errorf("Dial across a link-only cut = %v, want ErrRefused", err)
	}
	if got := b.in.count(); got != 0 {
		t.Errorf("b received %d frames across the cut", got)
	}
	if r := a.Faults().Rules(); len(r) != 1 || r[0].LinkBlock != Both || r[0].Block != 0 || !strings.Contains(r[0].String(), "block_links=both") {
		t.Errorf("rules = %+v", r)
	}
	a.Faults().ClearAll()
	dial(t, a, b)
}

func TestRefuse(t *testing.T) {
	a := startNode(t, "a", nil)
	b := startNode(t, "b", nil)

	a.Faults().Refuse(b.Addr())
	if err := dialErr(a, b); !errors.Is(err, ErrRefused) {
		t.Fatalf("Dial to refused peer = %v, want ErrRefused", err)
	}
	a.Faults().Clear(b.Addr())

	b.Faults().Refuse(a.NodeName())
	err := dialErr(a, b)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("Dial to a peer refusing us = %v, want ErrRefused", err)
	}
	var pe *PeerError
	if !errors.As(err, &pe) {
		t.Errorf("refusal by the peer should be a *PeerError: %v", err)
	}
	b.Faults().Clear(a.NodeName())
	dial(t, a, b)
}

func TestDelayKeepsOrder(t *testing.T) {
	a := startNode(t, "a", nil)
	b := startNode(t, "b", nil)
	la := dial(t, a, b)

	a.Faults().Delay(b.NodeName(), 5*time.Millisecond, 10*time.Millisecond)
	for i := range 50 {
		if i == 25 {
			a.Faults().Delay(b.NodeName(), 0, 0) // undelayed frames queue behind delayed ones
		}
		la.Send([]byte{byte(i)})
	}
	waitFor(t, 10*time.Second, func() bool { return b.in.count() == 50 }, "50 frames")
	for i, f := range b.in.get() {
		if f[0] != byte(i) {
			t.Fatalf("frame %d arrived as %d", i, f[0])
		}
	}
}

func TestFaultRules(t *testing.T) {
	f := NewFaults()
	if f.Rules() != nil {
		t.Fatal("new Faults has rules")
	}
	f.Block("b", Inbound)
	f.Block("b", Outbound)
	f.Delay("c", time.Second, time.Millisecond)
	f.Refuse("d")
	rules := f.Rules()
	if len(rules) != 3 || rules[0].Peer != "b" || rules[0].Block != Both || rules[1].Delay != time.Second || !rules[2].Refuse {
		t.Fatalf("rules = %+v", rules)
	}
	for _, r := range rules {
		if r.String() == "" {
			t.Error("empty rule string")
		}
	}
	if e := f.match("x", "b"); !e.blocks(Inbound) || !e.blocks(Outbound) {
		t.Error("rule by address does not match")
	}
	if e := f.match("c", ""); e.wait() < time.Second || e.wait() > time.Second+time.Millisecond {
		t.Error("delay out of range")
	}
	f.Delay("c", 0, 0)
	f.Clear("b")
	if got := f.Rules(); len(got) != 1 || got[0].Peer != "d" {
		t.Fatalf("after clears: %+v", got)
	}
	f.ClearAll()
	if f.Rules() != nil || f.match("d", "").refuses() {
		t.Fatal("ClearAll left rules")
	}
	var nilFaults *Faults
	if nilFaults.match("a", "b") != (effect{}) {
		t.Fatal("nil Faults matched")
	}
	for d, want := range map[Direction]string{0: "none", Outbound: "outbound", Inbound: "inbound", Both: "both", 8: "Direction(8)"} {
		if d.String() != want {
			t.Errorf("%d.String() = %q", d, d.String())
		}
	}
}
