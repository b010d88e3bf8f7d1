package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Connection preambles: the first byte of every TCP connection says what
// follows, so links and memberlist streams share one listener.
const (
	kindLink    byte = 'A' // arsenal link, plaintext
	kindTLSLink byte = 'T' // arsenal link, TLS handshake follows
	kindGossip  byte = 'M' // memberlist stream: u8 len | addr | u8 len | name, then memberlist's bytes
)

// maxPendingHandshakes bounds concurrent inbound connections that have not
// finished their handshake, so a connection flood costs bounded goroutines.
const maxPendingHandshakes = 256

// Network owns a node's address: one TCP listener and one UDP socket on the
// same host:port. It accepts and dials authenticated links, and carries
// memberlist's gossip through Gossip(). Close releases everything.
type Network struct {
	cfg    Config
	log    *slog.Logger
	faults *Faults
	key    []byte
	tcp    net.Listener
	udp    net.PacketConn
	advIP  netip.Addr
	adv    netip.AddrPort

	done  chan struct{}
	slots chan struct{} // inbound handshake slots

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{} // connections still in their handshake
	links  map[*Link]struct{}
	timers map[*time.Timer]struct{} // delayed gossip packets
	wg     sync.WaitGroup           // every goroutine we start

	gossip atomic.Pointer[gossipTransport] // current memberlist adapter
	names  sync.Map                        // node address -> node name, for fault rules

	packetsSent, packetsReceived, packetsDropped atomic.Uint64
	streamsIn, streamsOut                        atomic.Uint64
}

// Listen validates cfg, binds TCP and UDP on cfg.BindAddr and starts serving.
func Listen(cfg Config) (*Network, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	tcp, udp, err := bindBoth(cfg.Net, cfg.BindAddr)
	if err != nil {
		return nil, err
	}
	var adv netip.AddrPort
	bound, err := addrPort(tcp.Addr())
	if err == nil {
		adv, err = advertise(cfg.AdvertiseAddr, bound)
	}
	if err != nil {
		tcp.Close()
		udp.Close()
		return nil, err
	}
	n := &Network{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "transport"),
		faults: cfg.Faults,
		key:    linkKey(cfg.Secret, cfg.ClusterName),
		tcp:    tcp,
		udp:    udp,
		advIP:  adv.Addr(),
		adv:    adv,
		done:   make(chan struct{}),
		slots:  make(chan struct{}, maxPendingHandshakes),
		conns:  make(map[net.Conn]struct{}),
		links:  make(map[*Link]struct{}),
		timers: make(map[*time.Timer]struct{}),
	}
	n.wg.Add(2)
	go n.acceptLoop()
	go n.udpLoop()
	n.log.Debug("transport listening", "bind", tcp.Addr().String(), "advertise", n.Addr(), "tls", cfg.TLS != nil)
	return n, nil
}

// bindBoth binds TCP first (so port 0 picks a port), then UDP on that same
// port. If another process holds the UDP side of a kernel-picked port, it
// tries another port.
func bindBoth(nw Net, bind string) (net.Listener, net.PacketConn, error) {
	host, port, err := net.SplitHostPort(bind)
	if err != nil {
		return nil, nil, fmt.Errorf("transport: BindAddr %q: %w", bind, err)
	}
	var lastErr error
	for range 10 {
		ln, err := nw.Listen(bind)
		if err != nil {
			return nil, nil, fmt.Errorf("transport: listen tcp %s: %w", bind, err)
		}
		ap, err := addrPort(ln.Addr())
		if err != nil {
			ln.Close()
			return nil, nil, err
		}
		pc, err := nw.ListenPacket(net.JoinHostPort(host, strconv.Itoa(int(ap.Port()))))
		if err == nil {
			if udp, ok := pc.(*net.UDPConn); ok {
				// Gossip bursts; a larger receive buffer loses fewer
				// packets. Best effort, as in memberlist.
				for size := 2 << 20; size > 0; size /= 2 {
					if udp.SetReadBuffer(size) == nil {
						break
					}
				}
			}
			return ln, pc, nil
		}
		ln.Close()
		lastErr = err
		if port != "0" {
			break
		}
	}
	return nil, nil, fmt.Errorf("transport: listen udp on the tcp port of %s: %w", bind, lastErr)
}

func advertise(cfgAddr string, bound netip.AddrPort) (netip.AddrPort, error) {
	ip, port := bound.Addr().Unmap(), int(bound.Port())
	if cfgAddr != "" {
		aip, aport, err := parseAdvertise(cfgAddr)
		if err != nil {
			return netip.AddrPort{}, err
		}
		ip = aip
		if aport != 0 {
			port = aport
		}
	}
	if ip.IsUnspecified() {
		p, err := privateIP()
		if err != nil {
			return netip.AddrPort{}, err
		}
		ip = p
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// Addr returns the advertised node address, host:port, with the real port
// when BindAddr asked for port 0.
func (n *Network) Addr() string { return n.adv.String() }

// NodeName returns the configured node name.
func (n *Network) NodeName() string { return n.cfg.NodeName }

// Faults returns the fault-injection rules this Network obeys (never nil).
func (n *Network) Faults() *Faults { return n.faults }

// Links returns the currently open links.
func (n *Network) Links() []*Link {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*Link, 0, len(n.links))
	for l := range n.links {
		out = append(out, l)
	}
	return out
}

// NetworkStats are counters for diagnostics.
type NetworkStats struct {
	Links           int
	PacketsSent     uint64 // gossip packets handed to the UDP socket
	PacketsReceived uint64 // gossip packets delivered to memberlist
	PacketsDropped  uint64 // gossip packets dropped by fault rules
	StreamsIn       uint64 // memberlist streams accepted
	StreamsOut      uint64 // memberlist streams dialled
}

// Stats returns current counters.
func (n *Network) Stats() NetworkStats {
	n.mu.Lock()
	links := len(n.links)
	n.mu.Unlock()
	return NetworkStats{
		Links:           links,
		PacketsSent:     n.packetsSent.Load(),
		PacketsReceived: n.packetsReceived.Load(),
		PacketsDropped:  n.packetsDropped.Load(),
		StreamsIn:       n.streamsIn.Load(),
		StreamsOut:      n.streamsOut.Load(),
	}
}

// Close stops listening, closes every link (telling peers) and pending
// connection, shuts the gossip adapter down, and waits for all of the
// Network's goroutines. Shut memberlist down first; streams already handed
// to it belong to it.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		n.wg.Wait()
		return nil
	}
	n.closed = true
	close(n.done)
	conns := make([]net.Conn, 0, len(n.conns))
	for c := range n.conns {
		conns = append(conns, c)
	}
	links := make([]*Link, 0, len(n.links))
	for l := range n.links {
		links = append(links, l)
	}
	timers := make([]*time.Timer, 0, len(n.timers))
	for t := range n.timers {
		timers = append(timers, t)
	}
	n.mu.Unlock()

	if g := n.gossip.Load(); g != nil {
		g.Shutdown()
	}
	n.tcp.Close()
	n.udp.Close()
	for _, c := range conns {
		c.Close()
	}
	for _, l := range links {
		l.closeWith(detailed(ErrClosed, "network shutting down"), true)
	}
	for _, t := range timers {
		if t.Stop() {
			n.wg.Done() // the callback will never run
		}
	}
	n.wg.Wait()
	return nil
}

// goConn runs fn(c) on a tracked goroutine; c is closed by Close while
// tracked. It reports false (and closes c) if the Network is closed.
func (n *Network) goConn(c net.Conn, fn func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		c.Close()
		return false
	}
	n.conns[c] = struct{}{}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
	return true
}

func (n *Network) track(c net.Conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.conns[c] = struct{}{}
	return true
}

func (n *Network) untrack(c net.Conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
}

// after runs fn after d on a tracked timer (Close cancels it).
func (n *Network) after(d time.Duration, fn func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.wg.Add(1)
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		defer n.wg.Done()
		n.mu.Lock()
		delete(n.timers, t)
		n.mu.Unlock()
		fn()
	})
	n.timers[t] = struct{}{}
}

func (n *Network) isClosed() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// learn records that the node at addr is called name, so that fault rules
// written with either match traffic identified by the other.
func (n *Network) learn(addr, name string) {
	if addr == "" || name == "" {
		return
	}
	if old, ok := n.names.Load(addr); ok && old.(string) == name {
		return
	}
	n.names.Store(addr, name)
}

func (n *Network) nameOf(addr string) string {
	if v, ok := n.names.Load(addr); ok {
		return v.(string)
	}
	return ""
}

func (n *Network) handshaker() *handshaker {
	return &handshaker{
		cluster:     n.cfg.ClusterName,
		name:        n.cfg.NodeName,
		incarnation: n.cfg.Incarnation,
		addr:        n.Addr(),
		key:         n.key,
		accept:      n.cfg.AcceptPeer,
		check: func(name, addr string) error {
			// Not n.learn here: the hello is not authenticated yet.
			if e := n.faults.match(name, addr); e.refusesLink() {
				return detailed(ErrRefused, fmt.Sprintf("%s refuses %s", n.cfg.NodeName, name))
			}
			return nil
		},
	}
}

func (n *Network) acceptLoop() {
	defer n.wg.Done()
	var backoff time.Duration
	for {
		c, err := n.tcp.Accept()
		if err != nil {
			if n.isClosed() {
				return
			}
			// Usually EMFILE: back off rather than spin, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			n.log.Warn("accept failed", "err", err, "retry_in", backoff)
			select {
			case <-n.done:
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		select {
		case n.slots <- struct{}{}:
		default:
			n.log.Warn("too many pending handshakes, dropping connection", "remote", c.RemoteAddr().String())
			c.Close()
			continue
		}
		if !n.goConn(c, func() {
			defer func() { <-n.slots }()
			n.serveConn(c)
		}) {
			<-n.slots
			return
		}
	}
}

// serveConn reads the preamble of an inbound connection and dispatches it.
func (n *Network) serveConn(c net.Conn) {
	c.SetDeadline(time.Now().Add(n.cfg.HandshakeTimeout))
	var kind [1]byte
	if _, err := io.ReadFull(c, kind[:]); err != nil {
		n.log.Debug("inbound connection closed before preamble", "remote", c.RemoteAddr().String(), "err", err)
		n.drop(c)
		return
	}
	switch kind[0] {
	case kindLink, kindTLSLink:
		n.acceptLink(c, kind[0] == kindTLSLink)
	case kindGossip:
		n.acceptStream(c)
	default:
		n.log.Warn("inbound connection with unknown preamble", "remote", c.RemoteAddr().String(), "byte", fmt.Sprintf("0x%02x", kind[0]))
		n.drop(c)
	}
}

func (n *Network) drop(c net.Conn) {
	c.Close()
	n.untrack(c)
}

func (n *Network) acceptLink(raw net.Conn, peerTLS bool) {
	remote := raw.RemoteAddr().String()
	var peer PeerInfo
	conn, binding, err := n.serverTLS(raw, peerTLS)
	if err == nil {
		fr := newFrameReader(bufio.NewReaderSize(conn, 64<<10), maxHandshakeFrame)
		if peer, err = n.handshaker().server(conn, fr, binding); err == nil {
			conn.SetDeadline(time.Time{})
			fr.max = n.cfg.MaxFrameSize
			if _, err = n.establish(raw, conn, fr, peer, false); err == nil {
				return
			}
		}
	}
	if peer.Name != "" {
		n.logHandshake("inbound link refused", err, "remote", remote, "claimed_peer", peer.Name, "claimed_addr", peer.Addr)
	} else {
		n.logHandshake("inbound link refused", err, "remote", remote)
	}
	conn.Close()
	n.untrack(raw)
}

func (n *Network) serverTLS(raw net.Conn, peerTLS bool) (net.Conn, []byte, error) {
	switch {
	case peerTLS && n.cfg.TLS == nil:
		// The peer waits for a TLS ServerHello we cannot send; it will see
		// its TLS handshake fail.
		return raw, nil, fmt.Errorf("%w: peer wants TLS but this node has no TLS config", ErrHandshake)
	case !peerTLS && n.cfg.TLS != nil:
		err := detailed(ErrHandshake, "this node requires TLS")
		return raw, nil, refuse(raw, err)
	case !peerTLS:
		return raw, nil, nil
	}
	tc := tls.Server(raw, n.cfg.TLS)
	if err := tc.Handshake(); err != nil {
		return tc, nil, fmt.Errorf("%w: TLS: %w", ErrHandshake, err)
	}
	binding, err := tlsBinding(tc)
	return tc, binding, err
}

func tlsBinding(tc *tls.Conn) ([]byte, error) {
	cs := tc.ConnectionState()
	b, err := cs.ExportKeyingMaterial(tlsExporterLabel, nil, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: TLS exporter: %w", ErrHandshake, err)
	}
	return b, nil
}

// logHandshake logs a failed handshake at a level that matches how much an
// operator needs to know: misconfiguration (secret, cluster name, version)
// is an error on both sides; fault rules are expected; garbage and stalls
// are warnings.
func (n *Network) logHandshake(msg string, err error, args ...any) {
	args = append(args, "err", err)
	switch {
	case errors.Is(err, ErrAuth), errors.Is(err, ErrClusterMismatch), errors.Is(err, ErrVersion), errors.Is(err, ErrSameName), errors.Is(err, ErrNameTaken):
		n.log.Error(msg, args...)
	case errors.Is(err, ErrRefused), errors.Is(err, ErrClosed):
		n.log.Info(msg, args...)
	default:
		n.log.Warn(msg, args...)
	}
}

// Dial opens an authenticated link to the node at addr (host:port). The
// handshake is complete and OnLink has run when it returns. It fails with an
// error wrapping ErrAuth, ErrClusterMismatch, ErrRefused, ErrHandshake (timeouts,
// garbage) or the context's error. Dial does not deduplicate: two dials give
// two links.
func (n *Network) Dial(ctx context.Context, addr string) (*Link, error) {
	l, peer, err := n.dial(ctx, addr)
	if err != nil {
		if peer != "" {
			err = fmt.Errorf("transport: dial %s (%s): %w", addr, peer, err)
		} else {
			err = fmt.Errorf("transport: dial %s: %w", addr, err)
		}
		n.logHandshake("outbound link failed", err, "addr", addr)
		return nil, err
	}
	return l, nil
}

// dial returns the peer's claimed name along with errors, for messages.
func (n *Network) dial(ctx context.Context, addr string) (*Link, string, error) {
	if n.isClosed() {
		return nil, "", ErrClosed
	}
	if e := n.faults.match(n.nameOf(addr), addr); e.refusesLink() {
		return nil, n.nameOf(addr), detailed(ErrRefused, "by a rule on this node")
	}
	// One deadline from connect to the last handshake byte.
	deadline := time.Now().Add(n.cfg.HandshakeTimeout)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	raw, err := n.cfg.Net.Dial(dctx, addr)
	cancel()
	if err != nil {
		return nil, "", err
	}
	if !n.track(raw) {
		raw.Close()
		return nil, "", ErrClosed
	}
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	raw.SetDeadline(deadline)
	// Cancelling ctx aborts the handshake by expiring the deadline.
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })

	conn, fr, peer, err := n.clientHandshake(raw, addr)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err == nil {
		conn.SetDeadline(time.Time{})
		fr.max = n.cfg.MaxFrameSize
		var l *Link
		if l, err = n.establish(raw, conn, fr, peer, true); err == nil {
			return l, peer.Name, nil
		}
	}
	switch {
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	case n.isClosed() && !errors.Is(err, ErrClosed):
		err = fmt.Errorf("%w (%w)", ErrClosed, err)
	}
	conn.Close()
	n.untrack(raw)
	return nil, peer.Name, err
}

// clientHandshake runs preamble, TLS and handshake on raw. It always returns
// the connection to use or close (raw, or its TLS wrapper).
func (n *Network) clientHandshake(raw net.Conn, addr string) (net.Conn, *frameReader, PeerInfo, error) {
	kind := kindLink
	if n.cfg.TLS != nil {
		kind = kindTLSLink
	}
	if _, err := raw.Write([]byte{kind}); err != nil {
		return raw, nil, PeerInfo{}, hsIOErr("sending preamble", err)
	}
	conn, binding := raw, []byte(nil)
	if n.cfg.TLS != nil {
		tcfg := n.cfg.TLS.Clone()
		if tcfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(addr)
			tcfg.ServerName = host
		}
		tc := tls.Client(raw, tcfg)
		if err := tc.Handshake(); err != nil {
			return tc, nil, PeerInfo{}, fmt.Errorf("%w: TLS: %w", ErrHandshake, err)
		}
		var err error
		if binding, err = tlsBinding(tc); err != nil {
			return tc, nil, PeerInfo{}, err
		}
		conn = tc
	}
	fr := newFrameReader(bufio.NewReaderSize(conn, 64<<10), maxHandshakeFrame)
	peer, err := n.handshaker().client(conn, fr, binding)
	return conn, fr, peer, err
}

// establish turns a handshaken connection into a running Link: registers it
// (so Close reaches it), calls OnLink, then starts its goroutines.
func (n *Network) establish(raw, conn net.Conn, fr *frameReader, peer PeerInfo, outbound bool) (*Link, error) {
	n.learn(peer.Addr, peer.Name)
	l := newLink(n, conn, fr, peer, outbound)
	n.mu.Lock()
	delete(n.conns, raw)
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	n.links[l] = struct{}{}
	n.wg.Add(2)
	n.mu.Unlock()

	l.log.Info("link established", "incarnation", peer.Incarnation)
	if n.cfg.OnLink != nil {
		func() {
			defer func() {
				if r := recover(); r != nil {
					l.log.Error("OnLink panicked", "panic", r)
					l.closeWith(fmt.Errorf("transport: OnLink panicked: %v", r), true)
				}
			}()
			n.cfg.OnLink(l)
		}()
	}
	go l.readLoop()
	go l.writeLoop()
	return l, nil
}

func (n *Network) removeLink(l *Link) {
	n.mu.Lock()
	delete(n.links, l)
	n.mu.Unlock()
}
