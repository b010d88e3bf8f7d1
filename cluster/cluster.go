package cluster

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/arsenal-go/arsenal/cluster/crdt"
)

// ErrClosed is returned by calls on a Cluster after Shutdown.
var ErrClosed = errors.New("cluster: shut down")

// discoverTimeout bounds one Discover call, so a hung DNS server cannot
// stall the healing loop.
const discoverTimeout = 5 * time.Second

// Cluster is this node's membership: a memberlist instance, the view built
// from its events, the healing loop and the event feed.
type Cluster struct {
	cfg        Config
	settings   ProfileSettings
	log        *slog.Logger
	ml         *memberlist.Memberlist
	gossipAddr string
	meta       atomic.Pointer[[]byte]
	feed       *feed
	reps       replicas // state replicated over gossip (replica.go)

	mu           sync.Mutex
	members      map[string]*Member
	leaveIntents map[string]uint64 // name → incarnation that announced its leave
	conflicts    map[string]string // name → address of a rival claim, retried by the rejoin loop
	partition    PartitionStatus
	mode         Mode
	simulated    bool
	startedAt    time.Time
	formedAt     time.Time
	leaving      bool
	closed       bool
	initialDone  bool
	discovered   int // peers found by the latest successful discovery; -1 unknown
	discoverErr  bool
	changed      chan struct{} // closed and replaced on every change of the view
	seq          uint64
	rounds       uint64                 // rejoin rounds run, for tests and diagnostics
	joining      map[string][]time.Time // address → start of each join in flight (heal.go)

	// Also under mu: live members and removal (view.go, partition.go),
	// held deaths (view.go), the profile's fit (fit.go).
	formed        bool // had its first full view (see PartitionOf)
	settled       bool // the settle rounds after the start are over
	gate          RemovalGate
	admit         AdmissionGate
	fullViewAt    time.Time   // when formed became true
	standing      standingMap // the replicated membership records (standing.go)
	stClock       crdt.Clock
	fit           profileFit
	pendingDown   map[string]*pendingDown // deaths learned from others, held for DeathGrace
	refutedDeaths uint64                  // held deaths a refutation cancelled

	lifeMu sync.Mutex // serialises Leave, UpdateMeta and Shutdown
	ctx    context.Context
	cancel context.CancelFunc
	stop   chan struct{}
	loops  sync.WaitGroup // rejoin and sweep loops
	work   sync.WaitGroup // joins and sends started by the loops or the API

	raising atomic.Bool // an incarnation raise is queued (heal.go)
	// updateSem (capacity 1) serialises memberlist's UpdateNode, which is
	// not safe to call concurrently (two raises, or a raise and a meta
	// update: the race detector caught aliveNode writing what another
	// UpdateNode read). A channel, not a sync.Mutex: UpdateNode waits on a
	// timer while it is held, and a goroutine blocked on a mutex is not
	// "durably blocked" for testing/synctest, so the simulator's fake
	// clock could never reach that timer (a deadlock seen in sim's tests).
	updateSem chan struct{}
	raises    atomic.Uint64 // incarnation raises run
	verifies  atomic.Uint64 // held deaths checked with the accused (heal.go)
	stDirty   atomic.Bool   // the records changed here: broadcast them (standing.go)
}

// Start creates the memberlist, joins every peer discovery returns, and
// starts the healing loop. It returns once the first join round is over,
// joined or not: peers that are not up yet are retried every
// RejoinInterval. Only configuration, bind and ctx errors fail Start.
//
// Joining all discovered peers (not one seed) matters because
// memberlist.Join does a full push-pull state exchange, both ways, with
// every address it contacts (memberlist.go Join → pushPullNode(addr,
// join=true)); so after Start this node holds the union of its seeds'
// views, and they hold it, without waiting for gossip or the periodic
// anti-entropy.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	settings := cfg.Profile.Settings()
	settings.RejoinInterval = cfg.RejoinInterval

	c := &Cluster{
		updateSem:    make(chan struct{}, 1),
		cfg:          cfg,
		settings:     settings,
		log:          cfg.Logger.With("component", "cluster"),
		members:      make(map[string]*Member),
		leaveIntents: make(map[string]uint64),
		conflicts:    make(map[string]string),
		pendingDown:  make(map[string]*pendingDown),
		standing:     standingMap{},
		joining:      make(map[string][]time.Time),
		partition:    PartitionStatus{State: Healthy, Expected: max(cfg.ExpectedSize, 1), Up: 1},
		mode:         deriveMode(1, false),
		startedAt:    time.Now(),
		discovered:   -1,
		changed:      make(chan struct{}),
		stop:         make(chan struct{}),
	}
	if cfg.ExpectedSize > 1 {
		c.partition = PartitionStatus{State: Forming, Expected: cfg.ExpectedSize, Up: 1}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.feed = newFeed(c.log)
	_ = c.AddReplica(standingReplica, (*standingRepl)(c)) // the first replica: never taken
	mlLog := newMemberlistLogger(c.log, c.markSuspect)

	fail := func(err error) (*Cluster, error) {
		c.cancel()
		c.feed.close()
		return nil, err
	}

	transport := cfg.Transport
	owned := false
	if transport == nil {
		nt, err := newNetTransport(cfg.BindAddr, mlLog)
		if err != nil {
			return fail(err)
		}
		transport, owned = nt, true
	}
	advIP, advPort := "", 0
	if cfg.AdvertiseAddr != "" {
		advIP, advPort, _ = splitIPPort(cfg.AdvertiseAddr, false)
	}
	ip, port, err := transport.FinalAdvertiseAddr(advIP, advPort)
	if err != nil {
		if owned {
			_ = transport.Shutdown()
		}
		return fail(fmt.Errorf("cluster: advertise address: %w", err))
	}
	c.gossipAddr = joinHostPort(ip, port)
	if c.cfg.NodeAddr == "" {
		c.cfg.NodeAddr = c.gossipAddr
	}
	c.setMeta(cfg.Meta)

	mc := memberlist.DefaultLANConfig()
	settings.apply(mc)
	mc.Name = cfg.NodeName
	mc.Transport = transport
	mc.BindPort = port
	mc.AdvertiseAddr = ip.String()
	mc.AdvertisePort = port
	mc.Label = cfg.ClusterName
	mc.SecretKey = cfg.GossipKey
	d := &delegate{c: c}
	mc.Delegate = d
	mc.Events = d
	mc.Conflict = d
	mc.Merge = d
	mc.Alive = d
	mc.Ping = d
	mc.Logger = mlLog

	ml, err := memberlist.Create(mc)
	if err != nil {
		if owned {
			_ = transport.Shutdown()
		}
		return fail(fmt.Errorf("cluster: memberlist: %w", err))
	}
	c.ml = ml

	c.rejoinRound(ctx, true)
	if err := ctx.Err(); err != nil {
		_ = c.Shutdown()
		return nil, err
	}
	c.loops.Add(3)
	go c.rejoinLoop()
	go c.sweepLoop()
	go c.settleLoop()

	c.log.Info("cluster: started", "cluster", cfg.ClusterName, "gossip_addr", c.gossipAddr,
		"profile", string(cfg.Profile), "members", len(c.Members()))
	return c, nil
}

// newNetTransport binds memberlist's UDP+TCP transport. We create it
// ourselves (rather than let memberlist) so the port is known before the
// node's metadata is first published. With port 0 the kernel picks the TCP
// port and UDP may find it taken, so retry, as memberlist itself does.
func newNetTransport(bindAddr string, logger *log.Logger) (*memberlist.NetTransport, error) {
	host, port, err := splitIPPort(bindAddr, true)
	if err != nil {
		return nil, fmt.Errorf("cluster: BindAddr: %w", err)
	}
	nc := &memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port, Logger: logger}
	attempts := 1
	if port == 0 {
		attempts = 10
	}
	for range attempts {
		var nt *memberlist.NetTransport
		if nt, err = memberlist.NewNetTransport(nc); err == nil {
			return nt, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("cluster: bind %s: %w", bindAddr, err)
}

func (c *Cluster) setMeta(tags map[string]string) {
	b := encodeMeta(wireMeta{
		Cluster:     c.cfg.ClusterName,
		Incarnation: c.cfg.Incarnation,
		NodeAddr:    c.cfg.NodeAddr,
		HTTPAddr:    c.cfg.HTTPAddr,
		Tags:        tags,
	})
	c.meta.Store(&b)
}

// LocalName is this node's name.
func (c *Cluster) LocalName() string { return c.cfg.NodeName }

// GossipAddr is this node's memberlist address (host:port), the one peers
// join; with BindAddr port 0 it reports the port the kernel picked.
func (c *Cluster) GossipAddr() string { return c.gossipAddr }

// Incarnation is this node's incarnation as published.
func (c *Cluster) Incarnation() uint64 { return c.cfg.Incarnation }

// Settings are the effective timings (the profile's, with RejoinInterval
// from the config).
func (c *Cluster) Settings() ProfileSettings { return c.settings }

// Members returns every member this node knows, itself included, sorted by
// name. Dead and left members stay listed for Config.ReconnectTimeout.
func (c *Cluster) Members() []Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.membersLocked()
}

func (c *Cluster) membersLocked() []Member {
	out := make([]Member, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, m.clone())
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Topology is a consistent snapshot of the cluster as this node sees it.
type Topology struct {
	ClusterName string   `json:"cluster_name"`
	Self        string   `json:"self"`
	Nodes       []Member `json:"nodes"` // sorted by name, this node included
	// StartedAt is when this node's membership started.
	StartedAt time.Time `json:"started_at"`
	// FormedAt is when this node first saw another member up next to
	// itself (it joined, or was joined). While it has always been alone it
	// equals StartedAt. It does not move when the node is later alone again.
	FormedAt  time.Time       `json:"formed_at"`
	Members   int             `json:"members"` // len(Nodes): alive, suspect, dead and left
	Alive     int             `json:"alive"`
	Suspect   int             `json:"suspect"`
	Up        int             `json:"up"` // Alive + Suspect: what partition status and mode count
	Partition PartitionStatus `json:"partition"`
	Mode      Mode            `json:"mode"`
	// Seq is the Seq of the last event this snapshot includes: subscribe
	// first, then take the snapshot, and skip events with Seq <= this.
	Seq uint64 `json:"seq"`
}

// Topology returns a snapshot of the view.
func (c *Cluster) Topology() Topology {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := Topology{
		ClusterName: c.cfg.ClusterName,
		Self:        c.cfg.NodeName,
		Nodes:       c.membersLocked(),
		StartedAt:   c.startedAt,
		FormedAt:    c.formedAt,
		Partition:   c.partition,
		Mode:        c.mode,
		Seq:         c.seq,
	}
	if t.FormedAt.IsZero() {
		t.FormedAt = c.startedAt
	}
	t.Members = len(t.Nodes)
	for _, m := range t.Nodes {
		switch m.Status {
		case StatusAlive:
			t.Alive++
		case StatusSuspect:
			t.Suspect++
		}
	}
	t.Up = t.Alive + t.Suspect
	return t
}

// Partition returns the current partition status (see doc.go for the rule).
func (c *Cluster) Partition() PartitionStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.partition
}

// Mode returns the current mode. It is recomputed under the same lock as
// every change of the view, so it is never behind Members.
func (c *Cluster) Mode() Mode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mode
}

// SetSimulated marks the node as running in the simulator (or not), which
// overrides the mode derived from membership.
func (c *Cluster) SetSimulated(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.simulated = on
	c.afterChangeLocked()
}

// Subscribe returns a feed of events from now on and a function that ends
// the subscription (and closes the channel). Delivery never blocks
// membership: when the channel's buffer is full the event is dropped for
// this subscriber and counted in DroppedEvents; the gap shows in Event.Seq.
// Shutdown closes every subscription's channel.
func (c *Cluster) Subscribe(buffer int) (<-chan Event, func()) {
	return c.feed.subscribe(buffer)
}

// SubscribeAll is Subscribe without loss, for consumers that must see every
// change (the node layer turns them into node-down signals): every event
// from now on arrives on the channel, in order, none dropped. The events
// wait in an unbounded queue for the reader, so membership is never
// blocked either; the reader must keep up on average. Shutdown closes the
// channel after what is queued has been read; the returned function ends
// the subscription at once.
func (c *Cluster) SubscribeAll() (<-chan Event, func()) {
	return c.feed.subscribeAll()
}

// DroppedEvents counts events dropped for slow subscribers, all together.
func (c *Cluster) DroppedEvents() uint64 { return c.feed.dropped.Load() }

// OnModeChange registers fn to run on every mode change, in order, from the
// feed's goroutine: it must return quickly. A panic in fn is logged.
func (c *Cluster) OnModeChange(fn func(old, new Mode)) { c.feed.onModeChange(fn) }

// WaitConverged waits until this node sees at least n members alive (itself
// included), ctx ends, or the cluster shuts down.
func (c *Cluster) WaitConverged(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		alive := 0
		for _, m := range c.members {
			if m.Status == StatusAlive {
				alive++
			}
		}
		ch, closed := c.changed, c.closed
		c.mu.Unlock()
		switch {
		case alive >= n:
			return nil
		case closed:
			return ErrClosed
		}
		select {
		case <-ch:
		case <-c.stop:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("cluster: %d of %d members alive: %w", alive, n, ctx.Err())
		}
	}
}

// Ready reports whether the node is where discovery says it should be: the
// first join round is over, and either another member is up next to it or
// discovery found no peers (alone by design). A node whose discovery
// failed, or whose discovered peers could not be joined yet, is not ready.
// It turns false after Leave and Shutdown.
func (c *Cluster) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.initialDone || c.leaving || c.closed {
		return false
	}
	return c.partition.Up > 1 || c.discovered == 0
}

// Join contacts the given addresses now (a push-pull with each, in
// parallel) and returns how many answered. The rejoin loop does this on its
// own; Join is for operators and tests.
func (c *Cluster) Join(ctx context.Context, addrs ...string) (int, error) {
	targets := make([]joinTarget, len(addrs))
	for i, a := range addrs {
		targets[i] = joinTarget{addr: a}
	}
	done := make(chan []error, 1)
	if !c.goWork(func() { done <- c.joinTargets(targets, 0) }) {
		return 0, ErrClosed
	}
	var errs []error
	select {
	case errs = <-done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	n := 0
	for _, err := range errs {
		if err == nil {
			n++
		}
	}
	if n == 0 && len(addrs) > 0 {
		return 0, fmt.Errorf("cluster: join: %w", errors.Join(errs...))
	}
	return n, nil
}

// UpdateMeta replaces the extra tags this node publishes and waits up to
// timeout for the update to be gossiped. Peers see NodeUpdated.
func (c *Cluster) UpdateMeta(meta map[string]string, timeout time.Duration) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	cfg := c.cfg
	cfg.Meta = meta
	if err := cfg.Validate(); err != nil {
		return err
	}
	c.mu.Lock()
	closed, leaving := c.closed, c.leaving
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if leaving {
		return errors.New("cluster: update meta: node has left")
	}
	c.cfg.Meta = maps.Clone(meta)
	c.setMeta(c.cfg.Meta)
	c.updateSem <- struct{}{}
	err := c.ml.UpdateNode(timeout)
	<-c.updateSem
	if err != nil {
		return fmt.Errorf("cluster: update meta: %w", err)
	}
	return nil
}

// Leave leaves the cluster gracefully, so peers mark this node left, not
// dead: first it tells every member directly (a reliable message over
// TCP, in parallel, using up to half the timeout), then it broadcasts
// memberlist's leave and waits for it to go out. The node keeps answering
// gossip until Shutdown, but stops healing. timeout <= 0 means the
// profile's TCPTimeout.
func (c *Cluster) Leave(timeout time.Duration) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	already := c.leaving
	c.leaving = true
	c.mu.Unlock()
	if already {
		return nil
	}
	if timeout <= 0 {
		timeout = c.settings.TCPTimeout
	}
	deadline := time.Now().Add(timeout)
	c.announceLeave(timeout / 2)
	remaining := max(time.Until(deadline), time.Millisecond)
	if err := c.ml.Leave(remaining); err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	c.log.Info("cluster: left")
	return nil
}

// Shutdown stops membership without leaving: peers will detect this node as
// dead. It stops the loops, the memberlist and the feed (closing subscriber
// channels) and waits for every goroutine this package started. Safe to
// call more than once.
func (c *Cluster) Shutdown() error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for _, pd := range c.pendingDown {
		pd.timer.Stop()
	}
	c.mu.Unlock()

	close(c.stop)
	c.cancel()
	// memberlist first, so joins and sends in flight fail fast.
	err := c.ml.Shutdown()
	c.loops.Wait()
	c.work.Wait()
	c.feed.close()
	c.log.Info("cluster: shut down")
	return err
}

func (c *Cluster) rejoinRounds() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rounds
}

// goWork runs f on a tracked goroutine unless the cluster is shut down.
func (c *Cluster) goWork(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.work.Add(1)
	go func() {
		defer c.work.Done()
		f()
	}()
	return true
}
