package sim

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/arsenal-go/arsenal/transport"
)

// Network is an in-memory IP network: hosts with virtual IP addresses,
// stream connections (TCP-like: reliable, ordered, buffered, with deadlines)
// and datagrams (UDP-like: bounded queues that drop when full), and faults
// per directed pair of hosts. It never touches the operating system's
// network. A Host is a transport.Net.
//
// All methods are safe for concurrent use.
type Network struct {
	seed uint64

	mu        sync.Mutex
	closed    bool
	done      chan struct{}
	changed   chan struct{} // closed and replaced whenever faults or host states change
	hosts     map[netip.Addr]*Host
	paths     map[pair]PathFaults
	rngs      map[rngKey]*pairRand
	listeners map[netip.AddrPort]*listener
	packets   map[netip.AddrPort]*packetConn
	conns     map[*conn]struct{}
	log       decisionLog

	stats struct {
		packetsSent, packetsDelivered                               atomic.Uint64
		droppedCut, droppedRate, droppedFull, droppedDown, noSocket atomic.Uint64
		dials, refused                                              atomic.Uint64
	}
}

type pair struct{ from, to netip.Addr }

// Kind names the traffic a random decision was made for.
type Kind string

const (
	// KindPacket is a datagram (memberlist's gossip packets).
	KindPacket Kind = "packet"
	// KindStream is one write on a stream connection (node links and
	// memberlist streams).
	KindStream Kind = "stream"
)

type rngKey struct {
	pair
	kind Kind
}

// pairRand is the random stream of one directed pair and kind. Separate
// streams make the n-th decision on a pair independent of traffic on other
// pairs, so a seed replays the same decision sequence per pair even though
// the interleaving of pairs depends on the Go scheduler.
type pairRand struct {
	r *rand.Rand
	n uint64
}

// PathFaults are the faults on traffic from one host to another. The zero
// value is a healthy path.
type PathFaults struct {
	// Cut drops everything from -> to: datagrams are lost, stream bytes
	// are held (TCP retransmits; they flow again when the cut is lifted,
	// unless a timeout closed the connection first), and new connections
	// in either direction wait (their SYN or SYN-ACK is lost) until the
	// cut is lifted or the dialler gives up.
	Cut bool
	// Refuse makes from's new connections to `to` fail at once, as a
	// closed port or a firewall's reject would. Existing ones stay.
	Refuse bool
	// Delay is added to every datagram and stream write from -> to, plus
	// a uniform random extra in [0, Jitter]. Streams stay in order (a
	// write is never delivered before an earlier one); datagrams may be
	// reordered by jitter, as on a real network.
	Delay, Jitter time.Duration
	// Drop is the probability in [0, 1] that a datagram from -> to is
	// lost. Streams are reliable: TCP hides loss.
	Drop float64
}

func (f PathFaults) zero() bool { return f == PathFaults{} }

func (f PathFaults) String() string {
	var s []string
	if f.Cut {
		s = append(s, "cut")
	}
	if f.Refuse {
		s = append(s, "refuse")
	}
	if f.Delay > 0 || f.Jitter > 0 {
		s = append(s, fmt.Sprintf("delay=%s±%s", f.Delay, f.Jitter))
	}
	if f.Drop > 0 {
		s = append(s, fmt.Sprintf("drop=%g", f.Drop))
	}
	if len(s) == 0 {
		return "healthy"
	}
	return fmt.Sprint(s)
}

// NewNetwork returns an empty network whose random decisions (jitter and
// drops) derive from seed.
func NewNetwork(seed uint64) *Network {
	return &Network{
		seed:      seed,
		done:      make(chan struct{}),
		changed:   make(chan struct{}),
		hosts:     make(map[netip.Addr]*Host),
		paths:     make(map[pair]PathFaults),
		rngs:      make(map[rngKey]*pairRand),
		listeners: make(map[netip.AddrPort]*listener),
		packets:   make(map[netip.AddrPort]*packetConn),
		conns:     make(map[*conn]struct{}),
		log:       decisionLog{max: 4096},
	}
}

// Seed returns the seed of the random decisions.
func (nw *Network) Seed() uint64 { return nw.seed }

// Host returns the host with the given IP address, creating it on first
// use. Hosts live as long as the Network.
func (nw *Network) Host(ip netip.Addr) *Host {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	h := nw.hosts[ip]
	if h == nil {
		h = &Host{nw: nw, ip: ip, life: &life{}, nextPort: 30000, nextEphemeral: 49152}
		nw.hosts[ip] = h
	}
	return h
}

// SetPath replaces the faults on traffic from -> to.
func (nw *Network) SetPath(from, to netip.Addr, f PathFaults) {
	nw.UpdatePath(from, to, func(p *PathFaults) { *p = f })
}

// UpdatePath changes the faults on traffic from -> to.
func (nw *Network) UpdatePath(from, to netip.Addr, fn func(*PathFaults)) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	k := pair{from, to}
	f := nw.paths[k]
	fn(&f)
	f.Drop = min(max(f.Drop, 0), 1)
	f.Delay, f.Jitter = max(f.Delay, 0), max(f.Jitter, 0)
	if f.zero() {
		delete(nw.paths, k)
	} else {
		nw.paths[k] = f
	}
	nw.changedLocked()
}

// Path returns the faults on traffic from -> to.
func (nw *Network) Path(from, to netip.Addr) PathFaults {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.paths[pair{from, to}]
}

// PathRule is one faulty path, as listed by Paths.
type PathRule struct {
	From, To netip.Addr
	PathFaults
}

// Paths lists every path with faults, sorted.
func (nw *Network) Paths() []PathRule {
	nw.mu.Lock()
	out := make([]PathRule, 0, len(nw.paths))
	for k, f := range nw.paths {
		out = append(out, PathRule{k.from, k.to, f})
	}
	nw.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].From.Compare(out[j].From); c != 0 {
			return c < 0
		}
		return out[i].To.Less(out[j].To)
	})
	return out
}

// ClearPaths removes every path fault. Host states (crashed, paused) stay.
func (nw *Network) ClearPaths() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	clear(nw.paths)
	nw.changedLocked()
}

// Close closes every socket of every host; blocked calls return errors.
func (nw *Network) Close() error {
	nw.mu.Lock()
	if nw.closed {
		nw.mu.Unlock()
		return nil
	}
	nw.closed = true
	close(nw.done)
	var ls []*listener
	for _, l := range nw.listeners {
		ls = append(ls, l)
	}
	var ps []*packetConn
	for _, p := range nw.packets {
		ps = append(ps, p)
	}
	var cs []*conn
	for c := range nw.conns {
		cs = append(cs, c)
	}
	nw.changedLocked()
	nw.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	for _, p := range ps {
		p.Close()
	}
	for _, c := range cs {
		c.Close()
	}
	return nil
}

// Stats are the network's traffic counters.
type Stats struct {
	PacketsSent      uint64 // datagrams handed to WriteTo by a live host
	PacketsDelivered uint64 // datagrams queued at their destination
	DroppedCut       uint64 // datagrams lost to a cut path
	DroppedRate      uint64 // datagrams lost to a drop rate
	DroppedFull      uint64 // datagrams lost to a full receive queue
	DroppedDown      uint64 // datagrams from or to a crashed host, or from a paused one
	NoSocket         uint64 // datagrams to an address nobody listens on
	Dials            uint64 // connections opened
	Refused          uint64 // connections refused
}

// Stats returns the current counters.
func (nw *Network) Stats() Stats {
	s := &nw.stats
	return Stats{
		PacketsSent: s.packetsSent.Load(), PacketsDelivered: s.packetsDelivered.Load(),
		DroppedCut: s.droppedCut.Load(), DroppedRate: s.droppedRate.Load(), DroppedFull: s.droppedFull.Load(),
		DroppedDown: s.droppedDown.Load(), NoSocket: s.noSocket.Load(),
		Dials: s.dials.Load(), Refused: s.refused.Load(),
	}
}

// changedLocked wakes every call waiting for the network to change.
func (nw *Network) changedLocked() {
	close(nw.changed)
	nw.changed = make(chan struct{})
}

// watch returns a channel closed at the next change; take it before
// checking the state it guards, so no change is missed.
func (nw *Network) watch() <-chan struct{} {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.changed
}

// flows reports whether bytes written by an end on host from (in life fl)
// reach an end on host to (in life tl) now.
func (nw *Network) flows(from netip.Addr, fl *life, to netip.Addr, tl *life) bool {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return fl.state == lifeUp && tl.state == lifeUp && !nw.paths[pair{from, to}].Cut
}

// draw decides the fate of one datagram or stream write from -> to: its
// delay, and for datagrams whether it is lost. It takes the random draws
// from the pair's own stream, a fixed number per decision given the faults,
// and logs every decision that used randomness.
func (nw *Network) draw(from, to netip.Addr, kind Kind) (delay time.Duration, drop bool, cut bool) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	f := nw.paths[pair{from, to}]
	if f.Cut {
		return 0, false, true
	}
	delay = f.Delay
	random := f.Jitter > 0 || (kind == KindPacket && f.Drop > 0)
	if !random {
		return delay, false, false
	}
	k := rngKey{pair{from, to}, kind}
	pr := nw.rngs[k]
	if pr == nil {
		pr = &pairRand{r: rand.New(rand.NewPCG(nw.seed, pairSeed(from, to, kind)))}
		nw.rngs[k] = pr
	}
	if kind == KindPacket && f.Drop > 0 {
		drop = pr.r.Float64() < f.Drop
	}
	if f.Jitter > 0 {
		delay += time.Duration(pr.r.Int64N(int64(f.Jitter) + 1))
	}
	pr.n++
	nw.log.add(Decision{From: from, To: to, Kind: kind, N: pr.n, Drop: drop, Delay: delay})
	return delay, drop, false
}

func pairSeed(from, to netip.Addr, kind Kind) uint64 {
	h := fnv.New64a()
	b, _ := from.MarshalBinary()
	h.Write(b)
	h.Write([]byte{'>'})
	b, _ = to.MarshalBinary()
	h.Write(b)
	h.Write([]byte(kind))
	return h.Sum64()
}

// Decision is one random decision the network took.
type Decision struct {
	From, To netip.Addr
	Kind     Kind
	N        uint64        // the n-th random decision on this pair and kind, from 1
	Drop     bool          // the datagram was lost
	Delay    time.Duration // delay including jitter
}

func (d Decision) String() string {
	s := fmt.Sprintf("%s %s->%s #%d delay=%s", d.Kind, d.From, d.To, d.N, d.Delay)
	if d.Drop {
		s += " drop"
	}
	return s
}

// Decisions returns the most recent random decisions (up to 4096), oldest
// first. For a given seed, pair and kind, the n-th decision is always the
// same: it depends on the seed and the faults in force, not on timing.
// Which message it fell on does depend on timing.
func (nw *Network) Decisions() []Decision {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.log.list()
}

type decisionLog struct {
	max   int
	buf   []Decision
	start int
}

func (l *decisionLog) add(d Decision) {
	if len(l.buf) < l.max {
		l.buf = append(l.buf, d)
		return
	}
	l.buf[l.start] = d
	l.start = (l.start + 1) % l.max
}

func (l *decisionLog) list() []Decision {
	out := make([]Decision, 0, len(l.buf))
	out = append(out, l.buf[l.start:]...)
	return append(out, l.buf[:l.start]...)
}

// ---- hosts ----

// Host is one machine on a Network, with one IP address. It implements
// transport.Net: pass it as node.Config.Net. A host can crash, be paused
// and resumed, and be revived after a crash; faults are set on the
// Network per pair of addresses and outlive crashes.
type Host struct {
	nw            *Network
	ip            netip.Addr
	life          *life // guarded by nw.mu; replaced by Revive
	nextPort      uint16
	nextEphemeral uint16
}

// life is one run of a host, from boot (or Revive) to crash. Sockets keep
// the life they were opened in, so a crash stays with the old sockets.
type life struct {
	state lifeState // guarded by Network.mu
}

type lifeState uint8

const (
	lifeUp lifeState = iota
	lifePaused
	lifeCrashed
)

var _ transport.Net = (*Host)(nil)

// IP returns the host's address.
func (h *Host) IP() netip.Addr { return h.ip }

func (h *Host) current() *life {
	h.nw.mu.Lock()
	defer h.nw.mu.Unlock()
	return h.life
}

func (h *Host) state(l *life) lifeState {
	h.nw.mu.Lock()
	defer h.nw.mu.Unlock()
	return l.state
}

// Crash pulls the plug: from now on nothing reaches or leaves the host's
// current sockets. Peers of its stream connections see them reset (when the
// path from the host to them is not cut; otherwise they stall until their
// own timeouts), and connections to it are refused. The sockets stay open
// for their owner to Close; calls on them block or fail, and nothing they
// send gets out. Revive starts a new life.
func (h *Host) Crash() {
	nw := h.nw
	nw.mu.Lock()
	l := h.life
	l.state = lifeCrashed
	var resets []*conn
	for c := range nw.conns {
		if c.life == l {
			resets = append(resets, c)
		}
	}
	// Decide before the change is published who sees the reset.
	type peerReset struct {
		c    *conn
		seen bool
	}
	var prs []peerReset
	for _, c := range resets {
		prs = append(prs, peerReset{c, !nw.paths[pair{h.ip, c.remote.Addr()}].Cut})
	}
	nw.changedLocked()
	nw.mu.Unlock()
	for _, pr := range prs {
		pr.c.reset(pr.seen)
	}
}

// Revive starts a new life after Crash (a reboot, or the node's process
// started again): new sockets work normally. Sockets of the crashed life
// stay dead.
func (h *Host) Revive() {
	h.nw.mu.Lock()
	defer h.nw.mu.Unlock()
	if h.life.state != lifeUp {
		h.life = &life{}
		h.nw.changedLocked()
	}
}

// Pause freezes the host's traffic, as SIGSTOP freezes a process: its
// reads and accepts block, its datagrams are dropped, its stream writes
// are held, dials from it wait, and traffic to it queues (datagrams up to
// the receive queue's bound, then dropped) until Resume. Its goroutines
// keep running: see the package doc.
func (h *Host) Pause() {
	h.nw.mu.Lock()
	defer h.nw.mu.Unlock()
	if h.life.state == lifeUp {
		h.life.state = lifePaused
		h.nw.changedLocked()
	}
}

// Resume undoes Pause; held traffic flows.
func (h *Host) Resume() {
	h.nw.mu.Lock()
	defer h.nw.mu.Unlock()
	if h.life.state == lifePaused {
		h.life.state = lifeUp
		h.nw.changedLocked()
	}
}

// Paused reports whether the host is paused.
func (h *Host) Paused() bool { return h.state(h.current()) == lifePaused }

// Crashed reports whether the host has crashed and not been revived.
func (h *Host) Crashed() bool { return h.state(h.current()) == lifeCrashed }

// parse reads ip:port; an empty host is this host, and so is an
// unspecified one when binding (not when dialling).
func (h *Host) parse(addr string, dial bool) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	var ip netip.Addr
	if host == "" {
		ip = h.ip
	} else if ip, err = netip.ParseAddr(host); err != nil {
		return netip.AddrPort{}, fmt.Errorf("sim: %q: host must be an IP address", addr)
	}
	if ip.IsUnspecified() && !dial {
		ip = h.ip
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("sim: %q: bad port", addr)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(p)), nil
}

// bindAddr checks a Listen address and picks a port for port 0. Called
// with nw.mu held.
func (h *Host) bindAddr(addr string, taken func(netip.AddrPort) bool) (netip.AddrPort, error) {
	ap, err := h.parse(addr, false)
	if err != nil {
		return ap, err
	}
	if ap.Addr() != h.ip {
		return ap, &net.OpError{Op: "listen", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: syscall.EADDRNOTAVAIL}
	}
	if ap.Port() == 0 {
		for range 1 << 16 {
			p := h.nextPort
			h.nextPort++
			if h.nextPort < 30000 {
				h.nextPort = 30000
			}
			if cand := netip.AddrPortFrom(h.ip, p); !taken(cand) {
				return cand, nil
			}
		}
		return ap, syscall.EADDRINUSE
	}
	if taken(ap) {
		return ap, &net.OpError{Op: "listen", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: syscall.EADDRINUSE}
	}
	return ap, nil
}

// Listen implements transport.Net: a stream listener on the host's IP
// (or an unspecified one, meaning the host's IP) and a port (0 picks one).
func (h *Host) Listen(addr string) (net.Listener, error) {
	nw := h.nw
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.closed {
		return nil, net.ErrClosed
	}
	ap, err := h.bindAddr(addr, func(a netip.AddrPort) bool { return nw.listeners[a] != nil })
	if err != nil {
		return nil, err
	}
	l := &listener{nw: nw, h: h, life: h.life, addr: ap, backlog: make(chan *conn, 128), done: make(chan struct{})}
	nw.listeners[ap] = l
	return l, nil
}

// ListenPacket implements transport.Net: a datagram socket.
func (h *Host) ListenPacket(addr string) (net.PacketConn, error) {
	nw := h.nw
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.closed {
		return nil, net.ErrClosed
	}
	ap, err := h.bindAddr(addr, func(a netip.AddrPort) bool { return nw.packets[a] != nil })
	if err != nil {
		return nil, err
	}
	p := newPacketConn(nw, h, h.life, ap)
	nw.packets[ap] = p
	return p, nil
}

// Dial implements transport.Net: a stream connection to a Listen address.
// It fails at once when nobody listens there, the listener's host crashed,
// or a Refuse fault applies; it waits while the path is cut either way or
// this host is paused (the SYN is lost and retried), until ctx ends.
func (h *Host) Dial(ctx context.Context, addr string) (net.Conn, error) {
	nw := h.nw
	ap, err := h.parse(addr, true)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	to := net.TCPAddrFromAddrPort(ap)
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Source: &net.TCPAddr{IP: h.ip.AsSlice()}, Addr: to, Err: err}
	}
	refused := func() (net.Conn, error) {
		nw.stats.refused.Add(1)
		return nil, opErr(syscall.ECONNREFUSED)
	}
	for {
		nw.mu.Lock()
		if nw.closed {
			nw.mu.Unlock()
			return nil, opErr(net.ErrClosed)
		}
		changed := nw.changed
		src := h.life
		l := nw.listeners[ap]
		out, back := nw.paths[pair{h.ip, ap.Addr()}], nw.paths[pair{ap.Addr(), h.ip}]
		state := src.state
		var dstState lifeState
		if l != nil {
			dstState = l.life.state
		}
		nw.mu.Unlock()
		switch {
		case state == lifeCrashed:
			return nil, opErr(syscall.ENETDOWN)
		case state == lifePaused || out.Cut || back.Cut:
			// Wait for the path to open (or the dialler to give up).
		case out.Refuse || l == nil || l.isClosed() || dstState == lifeCrashed:
			return refused()
		default:
			// Connect takes a round trip.
			if rtt := out.Delay + back.Delay; rtt > 0 {
				t := time.NewTimer(rtt)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return nil, opErr(ctx.Err())
				case <-nw.done:
					t.Stop()
					return nil, opErr(net.ErrClosed)
				}
			}
			c, err := l.connect(h, src)
			if err != nil {
				return refused()
			}
			nw.stats.dials.Add(1)
			return c, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, opErr(ctx.Err())
		}
	}
}

// ephemeral picks a source port for a dial.
func (h *Host) ephemeral() uint16 {
	h.nw.mu.Lock()
	defer h.nw.mu.Unlock()
	p := h.nextEphemeral
	h.nextEphemeral++
	if h.nextEphemeral < 49152 {
		h.nextEphemeral = 49152
	}
	return p
}

// ---- errors ----

var (
	errReset = syscall.ECONNRESET
	errPipe  = syscall.EPIPE
)

func opError(op string, local, remote net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: local, Addr: remote, Err: err}
}
