package transport

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// Net is the network a Network binds and dials on: the operating system's
// (the default) or a simulated one (package sim). Listen and ListenPacket
// are called with the same host:port, the packet side with the port the
// stream listener got when the port was 0; addresses use IP literals, as
// memberlist requires. Conns must honour deadlines (links and memberlist
// rely on them), and a closed socket's pending calls must return an error
// wrapping net.ErrClosed.
type Net interface {
	// Listen opens the stream listener for links and memberlist streams.
	Listen(addr string) (net.Listener, error)
	// ListenPacket opens the datagram socket for memberlist's packets.
	ListenPacket(addr string) (net.PacketConn, error)
	// Dial connects to a Listen address. It returns when the connection
	// is open, fails, or ctx ends (ctx carries the connect deadline).
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

// osNet is the operating system's TCP and UDP.
type osNet struct{}

func (osNet) Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

func (osNet) ListenPacket(addr string) (net.PacketConn, error) { return net.ListenPacket("udp", addr) }

func (osNet) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// addrPort extracts ip:port from a socket address of any Net.
func addrPort(a net.Addr) (netip.AddrPort, error) {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort(), nil
	case *net.UDPAddr:
		return a.AddrPort(), nil
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("transport: socket address %q is not ip:port: %w", a.String(), err)
	}
	return ap, nil
}

// writePacket sends one datagram, without allocating on the OS network.
func (n *Network) writePacket(b []byte, to netip.AddrPort) error {
	if u, ok := n.udp.(*net.UDPConn); ok {
		_, err := u.WriteToUDPAddrPort(b, to)
		return err
	}
	_, err := n.udp.WriteTo(b, net.UDPAddrFromAddrPort(to))
	return err
}

// readPacket reads one datagram and its sender.
func (n *Network) readPacket(buf []byte) (int, netip.AddrPort, error) {
	if u, ok := n.udp.(*net.UDPConn); ok {
		return u.ReadFromUDPAddrPort(buf)
	}
	nb, from, err := n.udp.ReadFrom(buf)
	if err != nil {
		return nb, netip.AddrPort{}, err
	}
	ap, err := addrPort(from)
	return nb, ap, err
}
