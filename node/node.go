package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/transport"
)

// Node is one member of an Arsenal cluster: a process runtime, the
// authenticated links to the other nodes, and the membership that finds
// them. Processes on different nodes talk through PIDs as if they were
// local; the node routes their signals over the links.
type Node struct {
	cfg     Config
	log     *slog.Logger
	rt      *process.Runtime
	net     *transport.Network
	cl      *cluster.Cluster
	clReady atomic.Bool // n.cl is set; frames may arrive before that
	started time.Time

	peers    sync.Map    // node name → *peer; never removed (one per name seen)
	here     atomic.Bool // counted in nodesHere
	nextRef  atomic.Uint64
	maxFrame int

	handlersMu sync.RWMutex
	handlers   map[string]RequestHandler

	facts *factsCollector

	stats Counters

	stopOnce sync.Once
	stopCh   chan struct{}
	wg       sync.WaitGroup
}

// Counters are the node's traffic counters.
type Counters struct {
	FramesSent     atomic.Uint64
	FramesReceived atomic.Uint64
	BadFrames      atomic.Uint64
	// Dropped counts frames not delivered: for a node that cannot be
	// connected, queued on a connection when it was lost, over the queue
	// bound, too large, or that did not encode. Each belongs to a
	// connection whose watchers were told (doc.go), or failed its sender.
	Dropped       atomic.Uint64
	LateFrames    atomic.Uint64 // frames of a lost connection that arrived late, discarded
	LinksUp       atomic.Uint64
	Undeliverable atomic.Uint64 // messages received of a type not registered here (the link stays up)
	// ConnectionsUp counts connections established (their first link up);
	// ConnectionsLost, established ones lost (each fired its links and
	// monitors); DialsFailed, connections lost to a failed dial before any
	// link; Overloads, connections lost because a peer did not keep up.
	ConnectionsUp   atomic.Uint64
	ConnectionsLost atomic.Uint64
	DialsFailed     atomic.Uint64
	Overloads       atomic.Uint64
	// MembershipGaps counts membership events the node missed (a gap in
	// their Seq); the lossless subscription makes it 0.
	MembershipGaps atomic.Uint64
}

// pendingCall is a call or node request waiting for its answer on the
// connection c that carried it.
type pendingCall struct {
	ch chan callResult
	c  *conn // set under the peer's mu
	// timer times a process call (remote.CallWithin); nil for a request.
	timer *time.Timer
	// wake, if set, is a pipe the answer's sender writes a byte to after
	// its send on ch (callPipe).
	wake *callPipe
}

// callPipe lets a waiting process call be woken through the runtime's
// poller instead of a channel (remote.CallWithin, docs/ARCHITECTURE.md,
// fourth pass). A goroutine readied from a channel makes the runtime wake
// a second thread for the idle P, which on a two-core machine takes the
// core from the peer process's round trip; a goroutine waiting on a pipe
// is found by the thread that ran the reader, in its poll once the reader
// parks, and no thread is woken. At most maxPipes pipes exist in the
// process (two descriptors each), kept in a free list when idle
// (sync.Pool would drop them without closing them); a call that finds
// none waits on its channel alone, as do all calls once a pipe could not
// take a read deadline (not pollable on this platform).
type callPipe struct {
	r, w *os.File
}

const maxPipes = 64

var (
	freePipes = make(chan *callPipe, maxPipes)
	pipes     atomic.Int32 // pipes open, in use or free
	pipesOff  atomic.Bool
)

func getCallPipe() *callPipe {
	select {
	case cp := <-freePipes:
		return cp
	default:
	}
	if pipesOff.Load() {
		return nil
	}
	if pipes.Add(1) > maxPipes {
		pipes.Add(-1)
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		pipes.Add(-1)
		return nil
	}
	return &callPipe{r: r, w: w}
}

func putCallPipe(cp *callPipe) {
	select {
	case freePipes <- cp:
	default:
		cp.close()
	}
}

// close closes a pipe that failed or is not kept; a late wake's write to
// it fails, harmlessly.
func (cp *callPipe) close() {
	cp.r.Close()
	cp.w.Close()
	pipes.Add(-1)
}

var wakeByte = []byte{1}

// wake tells the call waiting on cp (nil: none) that its answer is on
// its channel: called once, by the one sender, right after its send, with
// pc.wake read before that send (the caller may reuse pc once it has the
// answer).
func (cp *callPipe) wake() {
	if cp != nil {
		cp.w.Write(wakeByte)
	}
}

// pendingCalls reuses the waiting state of process calls (channel and
// timer) once nothing can send on it any more.
var pendingCalls = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &pendingCall{ch: make(chan callResult, 1), timer: t}
}}

func getPendingCall() *pendingCall { return pendingCalls.Get().(*pendingCall) }

// putPendingCall returns pc once its one answer, if any, was received.
func putPendingCall(pc *pendingCall) {
	pc.c = nil
	pc.wake = nil
	pendingCalls.Put(pc)
}

type callResult struct {
	val any
	err error
}

// Start starts a node: it binds the node address, starts membership and
// joins the peers that discovery returns.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.withDefaults()
	inc := process.NewIncarnation()
	rt, err := process.NewRuntime(process.Config{Node: cfg.Name, Incarnation: inc, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger, rt: rt, started: time.Now(),
		handlers: map[string]RequestHandler{},
		maxFrame: transport.DefaultMaxFrameSize,
		stopCh:   make(chan struct{}),
	}
	n.net, err = transport.Listen(transport.Config{
		ClusterName: cfg.Cluster, NodeName: cfg.Name, Incarnation: inc, Secret: cfg.Secret,
		BindAddr: cfg.BindAddr, AdvertiseAddr: cfg.AdvertiseAddr, TLS: cfg.TLS,
		Faults: cfg.Faults, Net: cfg.Net, Logger: cfg.Logger, OnLink: n.onLink,
		AcceptPeer:        n.acceptPeer,
		KeepaliveInterval: cfg.LinkTimeout / linkPings, KeepaliveMisses: linkPings,
		WriteTimeout: cfg.LinkTimeout, SendQueueBytes: cfg.SendQueueBytes, MaxFrameSize: transport.DefaultMaxFrameSize,
	})
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", cfg.Name, err)
	}
	rt.SetRemote(remote{n})
	n.facts = newFactsCollector(n)
	n.HandleRequest(RequestFacts, n.localFactsHandler)
	n.HandleRequest(requestWhereis, n.whereisHandler)
	discovery := cfg.Discovery
	var checked *checkedProvider
	if discovery != nil {
		checked = &checkedProvider{n: n, inner: discovery, logged: map[string]time.Time{}, ok: map[string]bool{}}
		discovery = checked
	}
	n.cl, err = cluster.Start(ctx, cluster.Config{
		ClusterName: cfg.Cluster, NodeName: cfg.Name, Incarnation: inc,
		NodeAddr: n.net.Addr(), HTTPAddr: cfg.HTTPAddr,
		GossipKey: transport.GossipKey(cfg.Secret, cfg.Cluster),
		Transport: n.net.Gossip(), Profile: cfg.Profile, Discovery: discovery,
		ExpectedSize: cfg.ExpectedSize, Logger: cfg.Logger,
	})
	if err != nil {
		_ = n.net.Close()
		return nil, fmt.Errorf("node %s: %w", cfg.Name, err)
	}
	n.clReady.Store(true)
	if err := checked.nameTakenErr(); err != nil {
		// Another live node already has this name: refuse to run rather
		// than join as a twin.
		_ = n.Close(ctx)
		return nil, fmt.Errorf("node %s: %w", cfg.Name, err)
	}
	events, cancel := n.cl.SubscribeAll()
	n.wg.Add(2)
	go func() { defer n.wg.Done(); defer cancel(); n.watchMembership(events) }()
	go func() { defer n.wg.Done(); n.facts.loop() }()
	n.log.Info("node started", "node", cfg.Name, "cluster", cfg.Cluster, "addr", n.net.Addr(),
		"incarnation", inc, "profile", cfg.Profile, "secret_fingerprint", transport.Fingerprint(cfg.Secret))
	v, _ := nodesHere.LoadOrStore(cfg.Name, new(atomic.Int32))
	v.(*atomic.Int32).Add(1)
	n.here.Store(true)
	return n, nil
}

// nodesHere counts the running nodes of this OS process by name. A call
// to one of them waits on its channel, not on a pipe (callPipe): in one
// process the pipe's write usually wakes another thread of it waiting in
// the poller, so the pipe only adds syscalls (docs/ARCHITECTURE.md).
var nodesHere sync.Map // node name → *atomic.Int32

// pipesHereToo makes calls to nodes of this process take pipes too (tests
// of the pipe path, whose clusters run in one process).
var pipesHereToo atomic.Bool

func inThisProcess(name string) bool {
	if pipesHereToo.Load() {
		return false
	}
	v, ok := nodesHere.Load(name)
	return ok && v.(*atomic.Int32).Load() > 0
}

// acceptPeer refuses an inbound link from a node whose name belongs to
// another live member (a second node started with a name in use). A member
// that no longer answers is not live: a node restarted after a crash, on
// a new address, before the crash was detected, is accepted.
func (n *Node) acceptPeer(p transport.PeerInfo) error {
	if !n.clReady.Load() {
		return nil
	}
	m, ok := n.cl.Member(p.Name)
	if !ok || !m.Status.Up() || m.Incarnation == p.Incarnation || m.NodeAddr == "" || m.NodeAddr == p.Addr {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l, err := n.net.Dial(ctx, m.NodeAddr)
	if err != nil {
		return nil
	}
	holder := l.Peer()
	_ = l.Close()
	if holder.Name != p.Name {
		return nil
	}
	return fmt.Errorf("%w: %s is already the member at %s (incarnation %d)", transport.ErrNameTaken, p.Name, m.NodeAddr, holder.Incarnation)
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// ClusterName returns the cluster's name.
func (n *Node) ClusterName() string { return n.cfg.Cluster }

// Incarnation returns this start's incarnation.
func (n *Node) Incarnation() uint64 { return n.rt.Incarnation() }

// Addr returns the node-traffic address.
func (n *Node) Addr() string { return n.net.Addr() }

// Runtime returns the node's process runtime.
func (n *Node) Runtime() *process.Runtime { return n.rt }

// Cluster returns the node's membership.
func (n *Node) Cluster() *cluster.Cluster { return n.cl }

// StartedAt returns when the node started.
func (n *Node) StartedAt() time.Time { return n.started }

// Config returns the node's configuration (with defaults applied).
func (n *Node) Config() Config { return n.cfg }

// Faults returns the fault-injection rules this node's transport obeys
// (Config.Faults, or the transport's own set): tests cut, delay or refuse
// its traffic with them, or its node links only (transport.Faults.BlockLinks).
func (n *Node) Faults() *transport.Faults { return n.net.Faults() }

// Stats returns the node's counters.
func (n *Node) Stats() *Counters { return &n.stats }

// SecretFingerprint identifies the secret without revealing it.
func (n *Node) SecretFingerprint() string { return transport.Fingerprint(n.cfg.Secret) }

// Stop leaves the cluster gracefully (peers see the node as left), stops
// every process, and closes the network.
func (n *Node) Stop(ctx context.Context) error {
	var err error
	n.stopOnce.Do(func() {
		// Processes stop first, while the network is still up, so links and
		// monitors on other nodes learn the real exit reasons before the
		// peers hear that this node left; then the node goes.
		errRT := n.rt.Shutdown(ctx)
		leave := 3 * time.Second
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 2*leave {
			leave = time.Until(dl) / 2
		}
		if e := n.cl.Leave(leave); e != nil {
			n.log.Warn("leave", "err", e)
		}
		close(n.stopCh)
		err = errors.Join(errRT, n.closeNetwork())
	})
	return err
}

// Close stops the node as a crash would: the network goes first, without
// leaving, so peers see the node fail and their links and monitors fire
// with NoConnection. Tests use it to crash a node in-process.
func (n *Node) Close(ctx context.Context) error {
	var err error
	n.stopOnce.Do(func() {
		close(n.stopCh)
		errNet := n.closeNetwork()
		err = errors.Join(errNet, n.rt.Shutdown(ctx))
	})
	return err
}

func (n *Node) closeNetwork() error {
	if n.here.CompareAndSwap(true, false) {
		v, _ := nodesHere.Load(n.cfg.Name)
		v.(*atomic.Int32).Add(-1)
	}
	// Connections are lost now (their calls and requests fail), so that
	// nothing below waits out their timeouts.
	n.loseAll(errStopping)
	errCl := n.cl.Shutdown()
	errNet := n.net.Close()
	n.wg.Wait()
	n.log.Info("node stopped", "node", n.cfg.Name)
	return errors.Join(errCl, errNet)
}

// watchMembership turns membership changes into lost connections: links
// and monitors to processes there fire NoConnection. The subscription is
// lossless and ordered; a gap in Seq would be a bug, and is counted.
func (n *Node) watchMembership(events <-chan cluster.Event) {
	var last uint64
	for {
		select {
		case <-n.stopCh:
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if last != 0 && ev.Seq != last+1 {
				n.stats.MembershipGaps.Add(ev.Seq - last - 1)
				n.log.Error("membership events missed", "from", last+1, "to", ev.Seq-1)
			}
			last = ev.Seq
			switch ev.Type {
			case cluster.NodeDown, cluster.NodeLeft:
				if ev.Node == n.cfg.Name {
					continue
				}
				n.nodeLost(ev.Node, ev.Member.Incarnation, ev.Type)
			case cluster.NodeUp:
				if ev.Restarted {
					n.nodeLost(ev.Node, ev.OldIncarnation, cluster.NodeDown)
				}
				if p := n.peer(ev.Node, false); p != nil {
					p.mu.Lock()
					p.retryAt, p.backoff = time.Time{}, 0 // dial again at once
					p.mu.Unlock()
				}
				n.facts.trigger()
			}
		}
	}
}

// nodeLost handles the loss of incarnation inc of node name (0: every
// incarnation seen so far): its connection is lost (doc.go, rule 3),
// unless it already leads to a newer incarnation, which can happen when a
// restart is noticed late.
func (n *Node) nodeLost(name string, inc uint64, why cluster.EventType) {
	n.log.Info("node lost", "peer", name, "incarnation", inc, "event", why)
	if p := n.peer(name, false); p != nil {
		p.mu.Lock()
		c := p.cur
		keep := c != nil && inc != 0 && c.inc > inc
		p.retryAt, p.backoff = time.Time{}, 0
		p.mu.Unlock()
		if c != nil && !keep {
			p.lose(c, fmt.Errorf("membership: %s is %s", name, strings.TrimPrefix(string(why), "node_")))
		}
	}
	n.facts.forget(name)
	n.facts.trigger()
}

// member returns the member with name, and whether it is up (alive or
// suspect).
func (n *Node) member(name string) (cluster.Member, bool) {
	if !n.clReady.Load() {
		return cluster.Member{}, false
	}
	m, ok := n.cl.Member(name)
	return m, ok && m.Status.Up()
}

// isUp reports whether name is an up member, without copying it.
func (n *Node) isUp(name string) bool { return n.clReady.Load() && n.cl.IsUp(name) }
