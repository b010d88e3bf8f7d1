package sim

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"
)

// packetQueue is how many datagrams a socket holds unread; more are
// dropped, as a full UDP receive buffer drops them.
const packetQueue = 1024

type packet struct {
	b    []byte
	from netip.AddrPort
}

// packetConn is a datagram socket.
type packetConn struct {
	nw       *Network
	h        *Host
	life     *life
	addr     netip.AddrPort
	queue    chan packet
	rdl, wdl *deadline
	once     sync.Once
	done     chan struct{}
}

var _ net.PacketConn = (*packetConn)(nil)

func newPacketConn(nw *Network, h *Host, l *life, addr netip.AddrPort) *packetConn {
	return &packetConn{
		nw: nw, h: h, life: l, addr: addr,
		queue: make(chan packet, packetQueue),
		rdl:   newDeadline(), wdl: newDeadline(),
		done: make(chan struct{}),
	}
}

func (p *packetConn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(p.addr) }

func (p *packetConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: p.LocalAddr(), Err: err}
}

// ReadFrom returns the next queued datagram. A paused or crashed host
// reads nothing; datagrams queue meanwhile.
func (p *packetConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		changed := p.nw.watch()
		switch {
		case isClosed(p.done):
			return 0, nil, p.opErr("read", net.ErrClosed)
		case isClosed(p.rdl.wait()):
			return 0, nil, p.opErr("read", os.ErrDeadlineExceeded)
		}
		if p.h.state(p.life) != lifeUp {
			select {
			case <-changed:
			case <-p.rdl.wait():
			case <-p.done:
			}
			continue
		}
		select {
		case pk := <-p.queue:
			n := copy(b, pk.b)
			return n, net.UDPAddrFromAddrPort(pk.from), nil
		case <-changed:
		case <-p.rdl.wait():
		case <-p.done:
		}
	}
}

// WriteTo sends a datagram. Like UDP it reports success whatever becomes
// of the datagram.
func (p *packetConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	switch {
	case isClosed(p.done):
		return 0, p.opErr("write", net.ErrClosed)
	case isClosed(p.wdl.wait()):
		return 0, p.opErr("write", os.ErrDeadlineExceeded)
	}
	to, err := udpAddrPort(addr)
	if err != nil {
		return 0, p.opErr("write", err)
	}
	p.nw.send(p.addr, p.life, to, slices.Clone(b))
	return len(b), nil
}

func udpAddrPort(a net.Addr) (netip.AddrPort, error) {
	switch a := a.(type) {
	case *net.UDPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	case nil:
		return netip.AddrPort{}, fmt.Errorf("sim: no destination address")
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return ap, fmt.Errorf("sim: destination %q is not ip:port", a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

func (p *packetConn) SetDeadline(t time.Time) error {
	p.rdl.set(t)
	p.wdl.set(t)
	return nil
}

func (p *packetConn) SetReadDeadline(t time.Time) error  { p.rdl.set(t); return nil }
func (p *packetConn) SetWriteDeadline(t time.Time) error { p.wdl.set(t); return nil }

func (p *packetConn) Close() error {
	p.once.Do(func() {
		close(p.done)
		p.rdl.stop()
		p.wdl.stop()
		p.nw.mu.Lock()
		if p.nw.packets[p.addr] == p {
			delete(p.nw.packets, p.addr)
		}
		p.nw.mu.Unlock()
	})
	return nil
}

// send routes one datagram: the sender's state and the path's faults
// decide whether it is lost and how late it arrives; the destination's
// queue decides whether there is room.
func (nw *Network) send(from netip.AddrPort, fl *life, to netip.AddrPort, b []byte) {
	nw.mu.Lock()
	state := fl.state
	nw.mu.Unlock()
	if state != lifeUp {
		nw.stats.droppedDown.Add(1)
		return
	}
	nw.stats.packetsSent.Add(1)
	delay, drop, cut := nw.draw(from.Addr(), to.Addr(), KindPacket)
	switch {
	case cut:
		nw.stats.droppedCut.Add(1)
		return
	case drop:
		nw.stats.droppedRate.Add(1)
		return
	}
	deliver := func() {
		nw.mu.Lock()
		dst := nw.packets[to]
		var st lifeState
		if dst != nil {
			st = dst.life.state
		}
		nw.mu.Unlock()
		switch {
		case dst == nil:
			nw.stats.noSocket.Add(1)
			return
		case st == lifeCrashed:
			nw.stats.droppedDown.Add(1)
			return
		}
		select {
		case dst.queue <- packet{b: b, from: from}:
			nw.stats.packetsDelivered.Add(1)
		default:
			nw.stats.droppedFull.Add(1)
		}
	}
	if delay > 0 {
		time.AfterFunc(delay, deliver)
		return
	}
	deliver()
}
