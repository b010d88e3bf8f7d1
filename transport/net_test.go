package transport

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// countingNet is the OS network, counting what goes through it.
type countingNet struct {
	osNet
	listens, packets, dials atomic.Int32
}

func (c *countingNet) Listen(addr string) (net.Listener, error) {
	c.listens.Add(1)
	return c.osNet.Listen(addr)
}

func (c *countingNet) ListenPacket(addr string) (net.PacketConn, error) {
	c.packets.Add(1)
	return c.osNet.ListenPacket(addr)
}

func (c *countingNet) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c.dials.Add(1)
	return c.osNet.Dial(ctx, addr)
}

// Config.Net carries every bind and dial: links, memberlist streams and
// packets. (Package sim runs whole clusters on an in-memory Net.)
func TestConfigNet(t *testing.T) {
	cn := &countingNet{}
	a := startNode(t, "na", func(c *Config) { c.Net = cn })
	b := startNode(t, "nb", func(c *Config) { c.Net = cn })
	if cn.listens.Load() != 2 || cn.packets.Load() != 2 {
		t.Fatalf("listens %d, packet listens %d; want 2 and 2", cn.listens.Load(), cn.packets.Load())
	}
	l := dial(t, a, b)
	if err := l.Send([]byte("over Config.Net")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { return b.in.count() == 1 }, "frame delivered")
	if cn.dials.Load() != 1 {
		t.Fatalf("%d dials, want 1", cn.dials.Load())
	}
	ma, mb := startMember(t, a), startMember(t, b)
	if _, err := mb.Join([]string{a.Addr()}); err != nil { // a memberlist stream
		t.Fatalf("join: %v", err)
	}
	waitFor(t, 10*time.Second, func() bool { return ma.NumMembers() == 2 && mb.NumMembers() == 2 }, "members")
	if cn.dials.Load() < 2 {
		t.Fatalf("memberlist's stream did not dial through Config.Net")
	}
	waitFor(t, 10*time.Second, func() bool { return a.Stats().PacketsReceived > 0 && b.Stats().PacketsReceived > 0 }, "gossip packets")
}
