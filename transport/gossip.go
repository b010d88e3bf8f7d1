package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// errGossipShutdown is returned by the adapter after memberlist shut it down.
var errGossipShutdown = errors.New("transport: gossip transport shut down")

// gossipTransport adapts a Network to memberlist.NodeAwareTransport: packets
// ride the Network's UDP socket, streams its TCP listener behind the 'M'
// preamble. It owns no sockets, so memberlist's Shutdown only detaches it.
type gossipTransport struct {
	n        *Network
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	shutdown chan struct{}
	once     sync.Once
}

// Gossip returns the memberlist transport for this Network; set it as
// memberlist.Config.Transport, with Config.Name equal to NodeName, Label
// equal to ClusterName and SecretKey from GossipKey. memberlist's BindPort
// should be the port of Addr() (it uses it for join addresses without a
// port). After memberlist shuts the adapter down, Gossip returns a fresh one,
// so a node can restart its membership on the same Network.
func (n *Network) Gossip() memberlist.NodeAwareTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	if g := n.gossip.Load(); g != nil && !g.isShutdown() {
		return g
	}
	g := &gossipTransport{
		n:        n,
		packetCh: make(chan *memberlist.Packet),
		streamCh: make(chan net.Conn),
		shutdown: make(chan struct{}),
	}
	n.gossip.Store(g)
	return g
}

// activeGossip returns the adapter that should receive traffic, or nil.
func (n *Network) activeGossip() *gossipTransport {
	if g := n.gossip.Load(); g != nil && !g.isShutdown() {
		return g
	}
	return nil
}

func (g *gossipTransport) isShutdown() bool {
	select {
	case <-g.shutdown:
		return true
	default:
		return false
	}
}

// FinalAdvertiseAddr implements memberlist.Transport. An explicit ip (from
// memberlist's AdvertiseAddr) wins, as with memberlist's own transport;
// otherwise the Network's advertised address.
func (g *gossipTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip == "" {
		return net.IP(g.n.advIP.AsSlice()), int(g.n.adv.Port()), nil
	}
	parsed := net.ParseIP(ip)
	if parsed == nil {
		return nil, 0, fmt.Errorf("transport: failed to parse advertise address %q", ip)
	}
	if v4 := parsed.To4(); v4 != nil {
		parsed = v4
	}
	if port == 0 {
		port = int(g.n.adv.Port())
	}
	return parsed, port, nil
}

// WriteTo implements memberlist.Transport.
func (g *gossipTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return g.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport. A packet cut by a
// fault rule is dropped silently (UDP gives no error either); a delayed one
// is sent later from a timer.
func (g *gossipTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if g.isShutdown() {
		return time.Time{}, errGossipShutdown
	}
	n := g.n
	name := g.peerName(a)
	e := n.faults.match(name, a.Addr)
	if e.blocks(Outbound) {
		n.packetsDropped.Add(1)
		return time.Now(), nil
	}
	to, err := resolveUDP(a.Addr)
	if err != nil {
		return time.Time{}, err
	}
	if d := e.wait(); d > 0 {
		buf := bytes.Clone(b)
		n.after(d, func() {
			if n.writePacket(buf, to) == nil {
				n.packetsSent.Add(1)
			}
		})
		return time.Now(), nil
	}
	err = n.writePacket(b, to)
	if err == nil {
		n.packetsSent.Add(1)
	}
	return time.Now(), err
}

func (g *gossipTransport) peerName(a memberlist.Address) string {
	if a.Name != "" {
		g.n.learn(a.Addr, a.Name)
		return a.Name
	}
	return g.n.nameOf(a.Addr)
}

func resolveUDP(addr string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap, nil
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return ua.AddrPort(), nil
}

// PacketCh implements memberlist.Transport.
func (g *gossipTransport) PacketCh() <-chan *memberlist.Packet { return g.packetCh }

// StreamCh implements memberlist.Transport.
func (g *gossipTransport) StreamCh() <-chan net.Conn { return g.streamCh }

// DialTimeout implements memberlist.Transport.
func (g *gossipTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return g.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport: a TCP
// connection to the peer's node address, announced with the 'M' preamble.
func (g *gossipTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if g.isShutdown() {
		return nil, errGossipShutdown
	}
	n := g.n
	name := g.peerName(a)
	if e := n.faults.match(name, a.Addr); e.refuses() {
		return nil, fmt.Errorf("transport: gossip stream to %s: %w", a.String(), ErrRefused)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	c, err := n.cfg.Net.Dial(ctx, a.Addr)
	cancel()
	if err != nil {
		return nil, err
	}
	c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(streamPreamble(n.Addr(), n.cfg.NodeName)); err != nil {
		c.Close()
		return nil, fmt.Errorf("transport: gossip stream to %s: preamble: %w", a.String(), err)
	}
	c.SetWriteDeadline(time.Time{})
	n.streamsOut.Add(1)
	return &faultConn{Conn: c, faults: n.faults, name: name, addr: a.Addr}, nil
}

// Shutdown implements memberlist.Transport. It detaches the adapter; the
// sockets belong to the Network and close with Network.Close.
func (g *gossipTransport) Shutdown() error {
	g.once.Do(func() { close(g.shutdown) })
	return nil
}

// streamPreamble announces who is dialling, so fault rules can match an
// inbound stream (whose source port is ephemeral) by node address or name.
// It is not authenticated; it only steers fault injection.
func streamPreamble(addr, name string) []byte {
	addr = truncateUTF8(addr, 255)
	name = truncateUTF8(name, 255)
	b := make([]byte, 0, 3+len(addr)+len(name))
	b = append(b, kindGossip)
	b = appendStr8(b, addr)
	return appendStr8(b, name)
}

// readStreamPreamble reads what follows the 'M' byte.
func readStreamPreamble(r io.Reader) (addr, name string, err error) {
	read := func() (string, error) {
		var n [1]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return "", err
		}
		b := make([]byte, n[0])
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		return sanitize(string(b)), nil
	}
	if addr, err = read(); err != nil {
		return "", "", err
	}
	if name, err = read(); err != nil {
		return "", "", err
	}
	return addr, name, nil
}

// acceptStream hands an inbound memberlist stream to the active adapter.
func (n *Network) acceptStream(c net.Conn) {
	addr, name, err := readStreamPreamble(c)
	if err != nil {
		n.log.Warn("bad gossip stream preamble", "remote", c.RemoteAddr().String(), "err", err)
		n.drop(c)
		return
	}
	n.learn(addr, name)
	if e := n.faults.match(name, addr); e.refuses() {
		n.log.Debug("gossip stream refused by fault rule", "peer", name, "peer_addr", addr)
		n.drop(c)
		return
	}
	g := n.activeGossip()
	if g == nil {
		n.drop(c)
		return
	}
	c.SetDeadline(time.Time{}) // memberlist sets its own
	n.untrack(c)
	n.streamsIn.Add(1)
	select {
	case g.streamCh <- &faultConn{Conn: c, faults: n.faults, name: name, addr: addr}:
	case <-g.shutdown:
		c.Close()
	case <-n.done:
		c.Close()
	}
}

// udpLoop reads gossip packets for the life of the Network and hands them to
// whichever adapter is active.
func (n *Network) udpLoop() {
	defer n.wg.Done()
	buf := make([]byte, 65536)
	for {
		nb, from, err := n.readPacket(buf)
		ts := time.Now()
		if err != nil {
			if n.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			n.log.Warn("reading gossip packet", "err", err)
			select { // do not spin on a persistent error
			case <-n.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		if nb < 1 {
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		addr := from.String()
		if n.faults.match(n.nameOf(addr), addr).blocks(Inbound) {
			n.packetsDropped.Add(1)
			continue
		}
		g := n.activeGossip()
		if g == nil {
			continue
		}
		p := &memberlist.Packet{Buf: bytes.Clone(buf[:nb]), From: net.UDPAddrFromAddrPort(from), Timestamp: ts}
		select {
		case g.packetCh <- p:
			n.packetsReceived.Add(1)
		case <-g.shutdown:
		case <-n.done:
			return
		}
	}
}

// faultConn applies fault rules to a memberlist stream. A cut stream fails
// (a byte stream cannot silently lose bytes and stay meaningful); delay is
// added before each write.
type faultConn struct {
	net.Conn
	faults     *Faults
	name, addr string
}

func (c *faultConn) Read(b []byte) (int, error) {
	if c.faults.match(c.name, c.addr).blocks(Inbound) {
		c.Conn.Close()
		return 0, fmt.Errorf("transport: gossip stream from %s cut: %w", c.addr, ErrRefused)
	}
	return c.Conn.Read(b)
}

func (c *faultConn) Write(b []byte) (int, error) {
	e := c.faults.match(c.name, c.addr)
	if e.blocks(Outbound) {
		c.Conn.Close()
		return 0, fmt.Errorf("transport: gossip stream to %s cut: %w", c.addr, ErrRefused)
	}
	if d := e.wait(); d > 0 {
		time.Sleep(d)
	}
	return c.Conn.Write(b)
}

var _ memberlist.NodeAwareTransport = (*gossipTransport)(nil)
