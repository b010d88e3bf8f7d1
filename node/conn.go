package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/transport"
)

// This file is the connection layer: rule 1 to 5 of "A connection is a
// unit of fate" (doc.go).
//
// Locks. peer.mu guards the peer's current connection and everything
// registered on it; it is held only for memory work (never across network
// I/O or a wait: Link.Send only queues). peer.applyMu orders the frames a
// connection delivers against its loss: a frame is applied with it held
// shared, and a connection is lost with it held exclusively, so that every
// frame applied on a connection is applied before the connection's links
// and monitors fire. Order: applyMu, then mu, then runtime locks. Losing a
// connection fires its signals with mu held, through runtime methods that
// never call back into the node (process.Runtime.RemoteLinkLost and its
// siblings), so that no frame of the next connection can be sent before
// the last signal of the old one has fired.

// Dial backoff after a failed dial: while it runs, the node cannot be
// connected, and what needs a connection fails at once (rule 5). An
// inbound link from the node, or membership seeing it (again) up, ends it.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// peer is this node's side of its connections to one other node.
type peer struct {
	n    *Node
	name string
	// validName: name is a valid node name, so PIDs on it need no check
	// per frame (this node's own name was checked by Config).
	validName bool

	applyMu sync.RWMutex

	mu      sync.Mutex
	cur     *conn // the current connection, nil if none
	epochs  uint64
	retryAt time.Time // no dial before this
	backoff time.Duration
}

// conn is one connection to the peer: the unit of fate.
type conn struct {
	epoch   uint64
	out     *transport.Link // dialled by this node; nil while dialling
	in      *transport.Link // dialled by the peer; nil until it sends on it
	inc     uint64          // the peer's incarnation on the links, 0 until known
	started time.Time
	// theirs is the peer's epoch for this connection, from its hello.
	theirs uint64

	// Frames waiting for the dial, copied, at most Config.SendQueueBytes.
	pending      [][]byte
	pendingBytes int
	// dialling: a dial for out is under way.
	dialling bool
	// overloaded: past the bound while dialling; being lost.
	overloaded bool
	// dead is set once, with applyMu held exclusively and mu held, so a
	// frame handler (applyMu shared) reads it without mu.
	dead  bool
	cause error

	// What was set up over this connection, and fires when it is lost.
	links    map[linkKey]struct{}    // local process ↔ process there
	watching map[uint64]monitorEntry // local watcher → target there, by our ref ID
	watched  map[uint64]monitorEntry // watcher there → local target, by its ref ID
	calls    map[uint64]*pendingCall // calls and node requests waiting here
}

type linkKey struct{ local, remote process.PID }

type monitorEntry struct{ watcher, target process.PID }

// ConnectionLostError says why a connection was lost. It wraps
// process.NoConnection, so errors.Is(err, process.NoConnection) holds for
// calls and requests that failed with it.
type ConnectionLostError struct {
	Node  string
	Epoch uint64
	Cause error
}

func (e *ConnectionLostError) Error() string {
	if e.Cause == nil {
		return fmt.Sprintf("noconnection: no connection to %s", e.Node)
	}
	if e.Epoch == 0 {
		return fmt.Sprintf("noconnection: no connection to %s: %v", e.Node, e.Cause)
	}
	return fmt.Sprintf("noconnection: connection %d to %s lost: %v", e.Epoch, e.Node, e.Cause)
}

func (e *ConnectionLostError) Unwrap() []error {
	if e.Cause == nil {
		return []error{process.NoConnection}
	}
	return []error{process.NoConnection, e.Cause}
}

// Causes of a lost connection that are not a link's own error.
var (
	errNewConnection = errors.New("the peer started a new connection")
	errIncarnation   = errors.New("the peer's links lead to different incarnations")
	errNoAddress     = errors.New("no address to dial")
	errStopping      = errors.New("this node is stopping")
	errNotMember     = errors.New("not an up member, and no link from it")
	errBackoff       = errors.New("a dial failed less than a backoff ago")
)

// peer returns the peer for node, creating it if create is set.
func (n *Node) peer(node string, create bool) *peer {
	if v, ok := n.peers.Load(node); ok {
		return v.(*peer)
	}
	if !create {
		return nil
	}
	v, _ := n.peers.LoadOrStore(node, &peer{n: n, name: node, validName: process.ValidateNodeName(node) == nil})
	return v.(*peer)
}

// connectLocked returns the connection a new frame goes on: the current
// one, or a new one being dialled. It returns nil and why when the node
// cannot be connected now (rule 5). The caller has checked that the node
// is an up member.
func (p *peer) connectLocked() (*conn, error) {
	if c := p.cur; c != nil {
		return c, nil
	}
	select {
	case <-p.n.stopCh:
		return nil, errStopping
	default:
	}
	if time.Now().Before(p.retryAt) {
		return nil, errBackoff
	}
	return p.newConnLocked(), nil
}

func (p *peer) newConnLocked() *conn {
	p.epochs++
	c := &conn{
		epoch:    p.epochs,
		started:  time.Now(),
		links:    map[linkKey]struct{}{},
		watching: map[uint64]monitorEntry{},
		watched:  map[uint64]monitorEntry{},
		calls:    map[uint64]*pendingCall{},
	}
	p.cur = c
	return c
}

// queueLocked puts frame on c: on its link, or in the dial queue. It never
// blocks. A frame that would take the queue past the bound loses the
// connection (the one overload policy); a frame on a lost link is dropped,
// and that link's loss is being handled.
func (p *peer) queueLocked(c *conn, frame []byte) {
	n := p.n
	if c.overloaded {
		n.stats.Dropped.Add(1)
		return
	}
	if c.out != nil {
		if err := c.out.Send(frame); err != nil {
			n.stats.Dropped.Add(1)
			if errors.Is(err, transport.ErrOverload) {
				n.stats.Overloads.Add(1)
			}
			return
		}
		n.stats.FramesSent.Add(1)
		return
	}
	if !c.dialling {
		// A new connection, or one the peer opened: dial our half.
		c.dialling = true
		n.wg.Add(1)
		go p.dial(c)
	}
	if c.pendingBytes > 0 && c.pendingBytes+len(frame) > n.cfg.SendQueueBytes {
		c.overloaded = true
		n.stats.Overloads.Add(1)
		n.stats.Dropped.Add(1)
		err := fmt.Errorf("%w: %d bytes waiting for the dial to %s, limit %d",
			transport.ErrOverload, c.pendingBytes+len(frame), p.name, n.cfg.SendQueueBytes)
		// Not here: the caller may be applying a frame (applyMu shared).
		n.wg.Add(1)
		go func() { defer n.wg.Done(); p.lose(c, err) }()
		return
	}
	c.pending = append(c.pending, bytes.Clone(frame)) // the caller reuses frame
	c.pendingBytes += len(frame)
}

// dial connects c, once. A failure loses c (its frames and what was set up
// on it) and starts a backoff.
func (p *peer) dial(c *conn) {
	n := p.n
	defer n.wg.Done()
	p.mu.Lock()
	addr := ""
	if c.in != nil {
		addr = c.in.Peer().Addr // proven by the handshake, and current
	}
	p.mu.Unlock()
	if addr == "" {
		if m, ok := n.member(p.name); ok {
			addr = m.NodeAddr
		}
	}
	if addr == "" {
		p.dialFailed(c, errNoAddress)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*n.cfg.RequestTimeout)
	go func() {
		select {
		case <-n.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	l, err := n.net.Dial(ctx, addr)
	cancel()
	if err != nil {
		n.log.Warn("dial failed", "peer", p.name, "addr", addr, "epoch", c.epoch, "err", err)
		p.dialFailed(c, err)
		return
	}
	p.mu.Lock()
	switch {
	case c.dead:
		p.mu.Unlock()
		_ = l.Close()
		return
	case c.inc != 0 && c.inc != l.Peer().Incarnation:
		p.mu.Unlock()
		_ = l.Close()
		p.lose(c, errIncarnation)
		return
	}
	if c.in == nil {
		n.stats.ConnectionsUp.Add(1)
	}
	c.out, c.inc, c.dialling = l, l.Peer().Incarnation, false
	p.backoff = 0
	// The first frame names the connection; then the frames queued for
	// the dial, in order. Later frames wait for mu, so order holds.
	hello := encoder{b: make([]byte, 0, 16)}
	hello.byte1(frameHello)
	hello.uint(c.epoch)
	if l.Send(hello.b) != nil {
		n.stats.Dropped.Add(1)
	}
	for _, f := range c.pending {
		if l.Send(f) == nil {
			n.stats.FramesSent.Add(1)
		} else {
			n.stats.Dropped.Add(1)
		}
	}
	c.pending, c.pendingBytes = nil, 0
	p.mu.Unlock()
	l.SetHandler(func([]byte) {
		// The peer sends on the link it dialled, never on ours.
		n.stats.BadFrames.Add(1)
		n.log.Error("frame on this node's own link; closing it", "peer", p.name)
		_ = l.Close()
	})
	p.watch(c, l)
}

func (p *peer) dialFailed(c *conn, err error) {
	p.mu.Lock()
	p.backoff = min(max(2*p.backoff, minBackoff), maxBackoff)
	p.retryAt = time.Now().Add(p.backoff)
	p.mu.Unlock()
	p.lose(c, err)
}

// watch loses c when l closes (or the node stops).
func (p *peer) watch(c *conn, l *transport.Link) {
	n := p.n
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		select {
		case <-l.Done():
		case <-n.stopCh:
			_ = l.Close()
		}
		err := l.Err()
		dir := "this node's link"
		if !l.Outbound() {
			dir = "the peer's link"
		}
		p.lose(c, fmt.Errorf("%s closed: %w", dir, err))
	}()
}

// attachIn makes l, a link the peer dialled that has just carried its
// first frame, part of the current connection. A connection that already
// has an inbound link, or reaches another incarnation, is over: the peer
// started afresh (rule 2). It returns the connection l belongs to.
func (p *peer) attachIn(l *transport.Link) *conn {
	inc := l.Peer().Incarnation
	for {
		p.mu.Lock()
		c := p.cur
		if c == nil {
			c = p.newConnLocked()
		}
		if c.in == nil && (c.inc == 0 || c.inc == inc) {
			if c.out == nil {
				p.n.stats.ConnectionsUp.Add(1)
			}
			c.in, c.inc = l, inc
			p.retryAt, p.backoff = time.Time{}, 0
			p.mu.Unlock()
			p.watch(c, l)
			return c
		}
		p.mu.Unlock()
		cause := errNewConnection
		if c.inc != inc {
			cause = errIncarnation
		}
		p.lose(c, cause)
	}
}

// lose ends c (rule 3), once: closes its links, fires every link and
// monitor set up over it with NoConnection, forgets the peer's monitors
// of local processes, fails the calls waiting on it and drops its queued
// frames. It must not be called while applying a frame.
func (p *peer) lose(c *conn, cause error) {
	p.mu.Lock()
	dead := c.dead
	p.mu.Unlock()
	if dead {
		return
	}
	p.applyMu.Lock()
	p.mu.Lock()
	if c.dead {
		p.mu.Unlock()
		p.applyMu.Unlock()
		return
	}
	c.dead, c.cause = true, cause
	if p.cur == c {
		p.cur = nil
	}
	rt := p.n.rt
	for k := range c.links {
		rt.RemoteLinkLost(k.local, k.remote)
	}
	for id, m := range c.watching {
		rt.RemoteMonitorLost(m.watcher, process.Ref{Node: p.n.cfg.Name, ID: id}, m.target)
	}
	for id, m := range c.watched {
		rt.RemoteWatcherLost(process.Ref{Node: p.name, ID: id}, m.target)
	}
	calls := c.calls
	nl, nm := len(c.links), len(c.watching)
	dropped := len(c.pending)
	c.links, c.watching, c.watched, c.calls, c.pending, c.pendingBytes = nil, nil, nil, nil, nil, 0
	out, in := c.out, c.in
	p.mu.Unlock()
	p.applyMu.Unlock()

	n := p.n
	if out != nil || in != nil {
		n.stats.ConnectionsLost.Add(1)
	} else {
		n.stats.DialsFailed.Add(1)
	}
	n.stats.Dropped.Add(uint64(dropped))
	if out != nil {
		_ = out.Close()
	}
	if in != nil {
		_ = in.Close()
	}
	err := &ConnectionLostError{Node: p.name, Epoch: c.epoch, Cause: cause}
	for _, pc := range calls {
		cp := pc.wake
		pc.ch <- callResult{err: err}
		cp.wake()
	}
	n.log.Info("connection lost", "peer", p.name, "epoch", c.epoch, "cause", cause,
		"links", nl, "monitors", nm, "calls", len(calls), "queued_frames", dropped)
}

// ---- sending ----

// Registration kinds for send: what a frame sets up or takes down on the
// connection that carries it.
type regKind uint8

const (
	regNone regKind = iota
	regLink
	regUnlink
	regMonitor
	regDemonitor
	regWatched   // a process there monitors a local one
	regUnwatched // that monitor is done (DOWN sent, or demonitored)
	regCall
)

type reg struct {
	kind   regKind
	link   linkKey
	ref    uint64
	mon    monitorEntry
	call   *pendingCall
	callID uint64
}

// send queues frame for node on the current connection, or a new one,
// and registers r on that connection in the same step (rule 4: what a
// frame sets up belongs to the connection that carries it). It reports
// false, and why, when the node cannot be connected now (rule 5); the
// caller then fails what it was doing at once. It never blocks.
func (n *Node) send(node string, frame []byte, r reg) (bool, error) {
	if len(frame) > n.maxFrame {
		n.stats.Dropped.Add(1)
		return true, fmt.Errorf("%w: %d bytes, limit %d", transport.ErrFrameTooLarge, len(frame), n.maxFrame)
	}
	p := n.peer(node, false)
	if p != nil {
		// The fast path: a connection is up or being dialled. A node that
		// goes down loses it, so no membership check per frame.
		p.mu.Lock()
		if c := p.cur; c != nil {
			c.register(r)
			p.queueLocked(c, frame)
			p.mu.Unlock()
			return true, nil
		}
		p.mu.Unlock()
	}
	if !n.isUp(node) {
		n.stats.Dropped.Add(1)
		return false, errNotMember
	}
	if p == nil {
		p = n.peer(node, true)
	}
	p.mu.Lock()
	c, err := p.connectLocked()
	if c == nil {
		p.mu.Unlock()
		n.stats.Dropped.Add(1)
		return false, err
	}
	c.register(r)
	p.queueLocked(c, frame)
	p.mu.Unlock()
	return true, nil
}

// answer queues frame for node on the current connection only, and takes
// r off it: answers and take-downs (a reply, a DOWN, an exit of a link,
// an unlink, a demonitor) make sense only on the connection they belong
// to. With no connection, what they answer was already failed on both
// sides (rule 3), so they are dropped.
func (n *Node) answer(node string, frame []byte, r reg) {
	p := n.peer(node, false)
	if p == nil {
		n.stats.Dropped.Add(1)
		return
	}
	p.mu.Lock()
	c := p.cur
	if c == nil {
		p.mu.Unlock()
		n.stats.Dropped.Add(1)
		return
	}
	c.register(r)
	p.queueLocked(c, frame)
	p.mu.Unlock()
}

func (c *conn) register(r reg) {
	switch r.kind {
	case regLink:
		c.links[r.link] = struct{}{}
	case regUnlink:
		delete(c.links, r.link)
	case regMonitor:
		c.watching[r.ref] = r.mon
	case regDemonitor:
		delete(c.watching, r.ref)
	case regWatched:
		c.watched[r.ref] = r.mon
	case regUnwatched:
		delete(c.watched, r.ref)
	case regCall:
		r.call.c = c
		c.calls[r.callID] = r.call
	}
}

// registerIn registers what a frame received on c sets up or takes down.
// The caller applies the frame with applyMu held shared, so c is live.
func (p *peer) registerIn(c *conn, r reg) {
	p.mu.Lock()
	c.register(r)
	p.mu.Unlock()
}

// forgetCall takes a call that gave up (timeout, cancel) off its
// connection. It reports whether it did; false means the answer was
// already taken off (by completeCall or the connection's loss) and has
// been or is about to be sent on pc.ch.
func (p *peer) forgetCall(pc *pendingCall, ref uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pc.c != nil && pc.c.calls != nil && pc.c.calls[ref] == pc {
		delete(pc.c.calls, ref)
		return true
	}
	return false
}

// completeCall delivers an answer that arrived on c.
//
// It reports whether the caller was woken through its pipe (no goroutine
// was readied, so the link's reader need not yield).
func (p *peer) completeCall(c *conn, ref uint64, res callResult) (piped bool) {
	p.mu.Lock()
	pc, ok := c.calls[ref]
	if ok {
		delete(c.calls, ref)
	}
	p.mu.Unlock()
	if ok {
		cp := pc.wake // before the send: the caller may reuse pc after it
		pc.ch <- res
		cp.wake()
		return cp != nil
	}
	return false
}

// loseAll loses every connection (the node is stopping).
func (n *Node) loseAll(cause error) {
	n.peers.Range(func(_, v any) bool {
		p := v.(*peer)
		p.mu.Lock()
		c := p.cur
		p.mu.Unlock()
		if c != nil {
			p.lose(c, cause)
		}
		return true
	})
}

// reachable reports whether node is an up member or has linked to us on
// the current connection (right after a join, before membership shows it).
func (n *Node) reachable(node string) bool {
	if n.isUp(node) {
		return true
	}
	p := n.peer(node, false)
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur != nil && p.cur.in != nil
}

// QueuedBytes returns the bytes waiting to be sent to node: queued for the
// dial of its connection, or on its link. A bulk sender paces itself on it:
// past Config.SendQueueBytes the connection is lost (doc.go, Overload).
func (n *Node) QueuedBytes(node string) int {
	p := n.peer(node, false)
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.cur
	if c == nil {
		return 0
	}
	q := c.pendingBytes
	if c.out != nil {
		q += c.out.QueuedBytes()
	}
	return q
}

// LinkInfo describes this node's connection to a peer.
type LinkInfo struct {
	Node      string `json:"node"`
	Connected bool   `json:"connected"` // this node's link to the peer is up
	// Epoch numbers the connections to this peer (rule 4); 0: none now.
	Epoch       uint64        `json:"epoch,omitempty"`
	PeerEpoch   uint64        `json:"peer_epoch,omitempty"` // the peer's number for it
	Inbound     bool          `json:"inbound"`              // the peer's link to us is part of it
	Addr        string        `json:"addr,omitempty"`
	RTT         time.Duration `json:"rtt_ns,omitempty"`
	QueuedBytes int           `json:"queued_bytes"` // waiting for the dial or the link
	Links       int           `json:"links"`        // process links set up over it
	Monitors    int           `json:"monitors"`     // monitors set up over it, both ways
	Calls       int           `json:"calls"`        // calls and requests waiting on it
	Since       time.Time     `json:"since,omitzero"`
}

// Links lists this node's connections to other nodes.
func (n *Node) Links() []LinkInfo {
	var out []LinkInfo
	n.peers.Range(func(_, v any) bool {
		out = append(out, v.(*peer).info())
		return true
	})
	return out
}

func (p *peer) info() LinkInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	li := LinkInfo{Node: p.name}
	c := p.cur
	if c == nil {
		return li
	}
	li.Epoch, li.PeerEpoch, li.Since, li.Inbound = c.epoch, c.theirs, c.started, c.in != nil
	li.QueuedBytes = c.pendingBytes
	li.Links, li.Monitors, li.Calls = len(c.links), len(c.watching)+len(c.watched), len(c.calls)
	if c.out != nil {
		li.Connected = true
		li.Addr = c.out.Peer().Addr
		li.RTT = c.out.RTT()
		li.QueuedBytes += c.out.QueuedBytes()
	}
	return li
}
