package placement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/cluster/crdt"
	"github.com/arsenal-go/arsenal/codec"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/registry"
)

// ReplicaName is the name of the placement state in the cluster's
// replicated state.
const ReplicaName = "placement"

// Strategy picks the node a new child starts on.
type Strategy string

const (
	// Rendezvous (the default): the live member with the highest
	// rendezvous hash of the child's ID. Failover always uses it, so that
	// every survivor picks the same node without talking.
	Rendezvous Strategy = "rendezvous"
	// RoundRobin: the live members in name order, in turn (per node).
	RoundRobin Strategy = "round_robin"
	// LeastLoaded: the live member with the fewest children (by this
	// node's replica), ties by rendezvous hash.
	LeastLoaded Strategy = "least_loaded"
	// Local: the node that was asked.
	Local Strategy = "local"
)

// Strategies lists the placement strategies.
func Strategies() []Strategy { return []Strategy{Rendezvous, RoundRobin, LeastLoaded, Local} }

// ParseStrategy accepts a strategy name with '-' or '_'; "" is Rendezvous.
func ParseStrategy(s string) (Strategy, error) {
	if s == "" {
		return Rendezvous, nil
	}
	st := Strategy(strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", "_"))
	if slices.Contains(Strategies(), st) {
		return st, nil
	}
	return "", fmt.Errorf("placement: unknown strategy %q (want rendezvous, round_robin, least_loaded or local)", s)
}

// Restart types of a child (as the supervisor package's).
const (
	Permanent = "permanent" // always restarted
	Transient = "transient" // restarted after an abnormal exit
	Temporary = "temporary" // never restarted
)

// Config configures a node's placement. Zero values take the defaults.
type Config struct {
	// Strategy for new children; default Rendezvous.
	Strategy Strategy
	// SplitBrain policy; default KeepMajority.
	SplitBrain Policy
	// Quorum is StaticQuorum's minimum side size.
	Quorum int
	// KeepOldestAlone: with KeepOldest, an oldest member cut off alone
	// keeps running and the rest down (Akka's down-if-alone = off).
	KeepOldestAlone bool
	// StableAfter: the split-brain decision is taken only when the
	// membership has not changed for this long. Default by profile: fast
	// 1 s, local 3 s, lan 7 s, wan 20 s.
	StableAfter time.Duration
	// RemovalMargin: a child of a lost node is restarted elsewhere only
	// StableAfter + RemovalMargin after the loss, so that the losing side
	// has stopped it first (its lease, LeaseTimeout, is derived from this
	// wait by default). Default: the profile's upper estimate of crash
	// detection (cluster.ProfileSettings.CrashDetection), at least
	// StableAfter: 1.5 s on fast, about 29 s on lan with 5 nodes. See
	// doc.go for the guarantee.
	RemovalMargin time.Duration
	// LeaseTimeout: a node runs its children only while it holds a lease,
	// which it renews by reaching, over its own node links, a side that
	// its split-brain policy keeps up; a renewal round sent at s that
	// succeeds holds the lease until s + LeaseTimeout. A node cut off stops
	// its children when the lease runs out, whatever memberlist says.
	// Default: half of the earliest time after a cut at which the other
	// side can restart a child (EarliestTakeover). See doc.go for the
	// guarantee and the clock assumptions.
	LeaseTimeout time.Duration
	// LeaseRenew is how often the lease is renewed, and the timeout of one
	// round. Default LeaseTimeout / 4.
	LeaseRenew time.Duration
	// ReconcileInterval is how often the node compares what runs with the
	// state even when nothing happened. Default 200 ms.
	ReconcileInterval time.Duration
	// ShutdownTimeout is how long a child gets to stop before it is
	// killed. Default 5 s.
	ShutdownTimeout time.Duration
	// MaxRestarts in RestartPeriod (default 3 in 5 s): beyond that, a
	// crashing child waits RestartPeriod before its next restart.
	MaxRestarts   int
	RestartPeriod time.Duration
	// Registry registers children that have a Name. Optional.
	Registry *registry.Registry
	Logger   *slog.Logger
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Strategy != "" && !slices.Contains(Strategies(), c.Strategy) {
		errs = append(errs, fmt.Errorf("placement: unknown strategy %q", c.Strategy))
	}
	if c.SplitBrain != "" && !slices.Contains(Policies(), c.SplitBrain) {
		errs = append(errs, fmt.Errorf("placement: unknown split-brain policy %q", c.SplitBrain))
	}
	if c.SplitBrain == StaticQuorum && c.Quorum < 1 {
		errs = append(errs, errors.New("placement: static_quorum needs Quorum >= 1"))
	}
	if c.LeaseTimeout < 0 || c.LeaseRenew < 0 || c.LeaseRenew > 0 && c.LeaseTimeout > 0 && c.LeaseRenew >= c.LeaseTimeout {
		errs = append(errs, errors.New("placement: LeaseRenew must be shorter than LeaseTimeout, and neither negative"))
	}
	if c.StableAfter < 0 || c.RemovalMargin < 0 || c.ReconcileInterval < 0 || c.ShutdownTimeout < 0 || c.RestartPeriod < 0 || c.MaxRestarts < 0 {
		errs = append(errs, errors.New("placement: negative duration or count"))
	}
	return errors.Join(errs...)
}

// DefaultStableAfter is the StableAfter of a membership profile.
func DefaultStableAfter(p cluster.Profile) time.Duration {
	switch p {
	case cluster.ProfileFast:
		return time.Second
	case cluster.ProfileLocal:
		return 3 * time.Second
	case cluster.ProfileWAN:
		return 20 * time.Second
	}
	return 7 * time.Second
}

// DefaultRemovalMargin is the RemovalMargin for a profile and cluster
// size: the profile's upper estimate of crash detection (every prober
// visits the member last, no Lifeguard confirmations), at least
// stableAfter. The two sides of a split notice it within that bound of
// each other, unless the machines are overloaded or a node is paused.
func DefaultRemovalMargin(s cluster.ProfileSettings, size int, stableAfter time.Duration) time.Duration {
	_, upper := s.CrashDetection(max(size, 3))
	return max(upper, stableAfter)
}

// EarliestTakeover is the shortest time after a cut (or a crash) at
// which a node on the other side can restart a child of the node cut off:
// memberlist cannot declare it dead sooner than
// cluster.ProfileSettings.MinDetection, and the survivor then waits
// StableAfter + RemovalMargin.
func EarliestTakeover(s cluster.ProfileSettings, stableAfter, removalMargin time.Duration) time.Duration {
	return s.MinDetection() + stableAfter + removalMargin
}

// fence is how long a child whose lease ran out gets to stop before it is
// killed: a tenth of EarliestTakeover, at most ShutdownTimeout.
func (c Config) fence(s cluster.ProfileSettings) time.Duration {
	return min(c.ShutdownTimeout, EarliestTakeover(s, c.StableAfter, c.RemovalMargin)/10)
}

// SafetyMargin is how much earlier than EarliestTakeover a node cut off
// has stopped its children: EarliestTakeover − (LeaseTimeout + the fence
// for a child to stop). With the defaults it is 0.4 × EarliestTakeover.
func (c Config) SafetyMargin(s cluster.ProfileSettings) time.Duration {
	return EarliestTakeover(s, c.StableAfter, c.RemovalMargin) - c.LeaseTimeout - c.fence(s)
}

func (c Config) withDefaults(cl *cluster.Cluster) Config {
	return c.withProfile(cl.Settings(), max(cl.Partition().Expected, 5))
}

// withProfile fills the defaults for a profile and a cluster size.
func (c Config) withProfile(s cluster.ProfileSettings, size int) Config {
	if c.Strategy == "" {
		c.Strategy = Rendezvous
	}
	if c.SplitBrain == "" {
		c.SplitBrain = KeepMajority
	}
	if c.StableAfter == 0 {
		c.StableAfter = DefaultStableAfter(s.Profile)
	}
	if c.RemovalMargin == 0 {
		c.RemovalMargin = DefaultRemovalMargin(s, size, c.StableAfter)
	}
	if c.LeaseTimeout == 0 {
		c.LeaseTimeout = EarliestTakeover(s, c.StableAfter, c.RemovalMargin) / 2
	}
	if c.LeaseRenew == 0 {
		c.LeaseRenew = c.LeaseTimeout / 4
	}
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = 200 * time.Millisecond
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 5 * time.Second
	}
	if c.MaxRestarts == 0 && c.RestartPeriod == 0 {
		c.MaxRestarts, c.RestartPeriod = 3, 5*time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// ChildSpec describes a child of the distributed supervisor. It is data:
// the behaviour comes from the factory registered for Kind, on whichever
// node runs the child.
type ChildSpec struct {
	// ID is unique in the cluster (1 to 255 bytes).
	ID   string `cbor:"1,keyasint" json:"id"`
	Kind string `cbor:"2,keyasint" json:"kind"`
	Args []byte `cbor:"3,keyasint,omitempty" json:"args,omitempty"`
	// Name, if set, registers the child under this cluster-wide name
	// (needs Config.Registry), with metadata placement_id = ID.
	Name string `cbor:"4,keyasint,omitempty" json:"name,omitempty"`
	// Restart is Permanent when empty.
	Restart string `cbor:"5,keyasint,omitempty" json:"restart,omitempty"`
	// Strategy overrides the node's for this start.
	Strategy Strategy `cbor:"6,keyasint,omitempty" json:"strategy,omitempty"`
}

// Validate checks a spec on this node (its kind must be registered here).
func (s ChildSpec) Validate() error {
	if s.ID == "" || len(s.ID) > 255 {
		return codedf(CodeBadRequest, "child id %q: want 1 to 255 bytes", s.ID)
	}
	if _, ok := lookupKind(s.Kind); !ok {
		return codedf(CodeBadRequest, "unknown kind %q (registered: %s)", s.Kind, strings.Join(Kinds(), ", "))
	}
	switch s.Restart {
	case "", Permanent, Transient, Temporary:
	default:
		return codedf(CodeBadRequest, "restart %q: want permanent, transient or temporary", s.Restart)
	}
	if s.Strategy != "" && !slices.Contains(Strategies(), s.Strategy) {
		return codedf(CodeBadRequest, "unknown strategy %q", s.Strategy)
	}
	if len(s.Name) > 255 {
		return codedf(CodeBadRequest, "name longer than 255 bytes")
	}
	return nil
}

// Error codes (the operations layer maps them to HTTP statuses).
const (
	CodeUnavailable = "unavailable" // 503: this side is down by the split-brain policy
	CodeConflict    = "conflict"    // 409: the child already runs
	CodeNotFound    = "not_found"   // 404
	CodeBadRequest  = "bad_request" // 400
)

// Error is an error with a code that travels between nodes.
type Error struct {
	code, msg string
}

func (e *Error) Error() string { return e.msg }

// Code implements node.Coded.
func (e *Error) Code() string { return e.code }

func codedf(code, format string, args ...any) error {
	return &Error{code: code, msg: fmt.Sprintf(format, args...)}
}

// ErrUnavailable is matched (errors.Is) by the error of a start refused
// because this side of a partition is down.
var ErrUnavailable = &Error{code: CodeUnavailable, msg: "placement: this side of the cluster is down by its split-brain policy"}

// Is makes errors.Is(err, ErrUnavailable) hold for every refusal of an
// unavailable side.
func (e *Error) Is(target error) bool { return target == ErrUnavailable && e.code == CodeUnavailable }

// Child is a child as a listing shows it.
type Child struct {
	ID      string      `json:"id"`
	Kind    string      `json:"kind"`
	Name    string      `json:"name,omitempty"`
	Restart string      `json:"restart"`
	Node    string      `json:"node"`
	PID     process.PID `json:"pid,omitzero"`
	// Status as this node sees it: running (its node is up and started
	// it), starting (assigned, not started yet), orphaned (its node is
	// lost; it will be restarted elsewhere), stopped (locally, by the
	// split-brain policy).
	Status   string `json:"status"`
	Gen      uint64 `json:"gen"`
	Restarts uint64 `json:"starts"`
}

// Status is a node's placement state.
type Status struct {
	Node          string                  `json:"node"`
	Policy        Policy                  `json:"policy"`
	Strategy      Strategy                `json:"strategy"`
	Up            bool                    `json:"up"` // this side runs children
	Reason        string                  `json:"reason"`
	Pending       *Decision               `json:"pending,omitempty"` // what the policy says now, until the view is stable
	DecidedAt     time.Time               `json:"decided_at"`
	StableFor     time.Duration           `json:"stable_for_ns"`
	StableAfter   time.Duration           `json:"stable_after_ns"`
	RemovalMargin time.Duration           `json:"removal_margin_ns"`
	Partition     cluster.PartitionStatus `json:"partition"`
	LocalChildren int                     `json:"local_children"`
	Leaving       bool                    `json:"leaving,omitempty"`
	// Leased: this node holds its lease (see Config.LeaseTimeout) until
	// LeaseUntil; without it, it runs nothing.
	Leased       bool          `json:"leased"`
	LeaseUntil   time.Time     `json:"lease_until,omitzero"`
	LeaseTimeout time.Duration `json:"lease_timeout_ns"`
	// SafetyMargin: how much earlier than the other side can restart them
	// a node cut off has stopped its children (Config.SafetyMargin).
	SafetyMargin time.Duration `json:"safety_margin_ns"`
}

// Placement is one node's part of the distributed supervisor.
type Placement struct {
	n    *node.Node
	rt   *process.Runtime
	cl   *cluster.Cluster
	reg  *registry.Registry
	self string
	inc  uint64
	cfg  Config
	log  *slog.Logger

	runMu sync.Mutex // serialises reconcile passes and API starts and stops

	mu         sync.Mutex
	state      State
	local      map[string]*localChild
	clock      crdt.Clock
	decision   Decision
	decidedAt  time.Time // when the decision last changed (or Start)
	lastChange time.Time
	unknown    map[string]time.Time // nodes named by records but not members: first seen
	rr         int
	leaving    bool
	stopped    bool
	leaseUntil time.Time            // the lease holds until then
	heard      map[string]time.Time // peer → when it last asked this node to renew its lease
	leaseTimer *time.Timer          // pokes reconcile when the lease runs out

	// The merge gate's pull (see reconcile), under mu: one at a time, in
	// its own goroutine, so that the loop keeps stopping what must stop.
	syncing     bool
	syncStarted time.Time       // when the last successful pull started
	syncPeers   map[string]bool // whom it pulled from
	syncFailed  time.Time       // when a pull last failed

	// For the removal gate, which the cluster calls under its own lock
	// (so it must not take mu): since when the decision is up (unix ns,
	// 0 while down), and when the membership last changed.
	upSince   atomic.Int64
	changedAt atomic.Int64
	// The last lease round: whether the policy kept this side up on the
	// view of the members that answered over their links, and its start;
	// and the whole outcome, for the admission gate.
	roundUp atomic.Bool
	roundAt atomic.Int64
	round   atomic.Pointer[leaseRound]

	leaseMu   sync.Mutex // one renewal round at a time
	leaseKick chan struct{}

	feed  feed
	kick  chan struct{}
	stop  chan struct{}
	wg    sync.WaitGroup
	unsub func()
}

type localChild struct {
	rec      *Record // the assignment it runs under
	pid      process.PID
	stopping bool
	named    bool
	starts   []time.Time // recent starts, for the restart intensity
	notUntil time.Time   // no restart before
	failed   string      // why the last start failed
}

// Request names on the node protocol.
const (
	reqStart  = "placement.start"
	reqStop   = "placement.stop"
	reqMerge  = "placement.merge"
	reqStatus = "placement.status"
	reqLease  = "placement.lease"
	reqSync   = "placement.sync"
	reqRebal  = "placement.rebalance"
)

// Start starts the placement of node n.
func Start(n *node.Node, cfg Config) (*Placement, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cl := n.Cluster()
	cfg = cfg.withDefaults(cl)
	if cfg.LeaseRenew >= cfg.LeaseTimeout {
		return nil, fmt.Errorf("placement: LeaseRenew %s must be shorter than LeaseTimeout %s", cfg.LeaseRenew, cfg.LeaseTimeout)
	}
	p := &Placement{
		n: n, rt: n.Runtime(), cl: cl, reg: cfg.Registry, self: n.Name(), inc: n.Incarnation(), cfg: cfg,
		log:        cfg.Logger.With("component", "placement"),
		state:      State{},
		local:      map[string]*localChild{},
		unknown:    map[string]time.Time{},
		heard:      map[string]time.Time{},
		lastChange: time.Now(),
		kick:       make(chan struct{}, 1),
		leaseKick:  make(chan struct{}, 1),
		stop:       make(chan struct{}),
	}
	p.decision = Decide(cfg.SplitBrain, cfg.Quorum, cfg.KeepOldestAlone, p.view())
	p.decidedAt = time.Now()
	p.changedAt.Store(p.lastChange.UnixNano())
	if p.decision.Up {
		p.upSince.Store(p.decidedAt.UnixNano())
	}
	events, unsub := cl.Subscribe(1024)
	p.unsub = unsub
	if err := cl.AddReplica(ReplicaName, (*replica)(p)); err != nil {
		unsub()
		return nil, err
	}
	n.HandleRequest(reqStart, p.handleStart)
	n.HandleRequest(reqStop, p.handleStop)
	n.HandleRequest(reqMerge, p.handleMerge)
	n.HandleRequest(reqStatus, func(context.Context, string, []byte) (any, error) { return p.Status(), nil })
	n.HandleRequest(reqLease, p.handleLease)
	n.HandleRequest(reqRebal, func(ctx context.Context, _ string, _ []byte) (any, error) { return p.Rebalance(ctx) })
	n.HandleRequest(reqSync, func(context.Context, string, []byte) (any, error) { return (*replica)(p).LocalState(), nil })
	// Only the side this policy keeps up removes dead members from the
	// cluster's decisions (cluster.RemovalGate), and only a side that has
	// been up by its stable decision for RemovalMargin, on a view that has
	// been stable for StableAfter (removalGate).
	cl.SetRemovalGate(p.removalGate)
	// A member is admitted by this node only on a full lease round that
	// reached it (admissionGate).
	cl.SetAdmissionGate(p.admissionGate)
	p.renewLease(context.Background())
	up := p.decision.Up // read before the loop may change it
	p.wg.Add(2)
	go p.loop(events)
	go p.leaseLoop()
	s := cl.Settings()
	p.log.Info("placement: started", "policy", string(cfg.SplitBrain), "strategy", string(cfg.Strategy),
		"stable_after", cfg.StableAfter, "removal_margin", cfg.RemovalMargin, "lease", cfg.LeaseTimeout,
		"earliest_takeover", EarliestTakeover(s, cfg.StableAfter, cfg.RemovalMargin), "safety_margin", cfg.SafetyMargin(s), "up", up)
	if cfg.SafetyMargin(s) <= 0 {
		p.log.Error("placement: the lease is too long for the takeover wait: a node cut off may still run a child when the other side restarts it",
			"lease", cfg.LeaseTimeout, "earliest_takeover", EarliestTakeover(s, cfg.StableAfter, cfg.RemovalMargin))
	}
	return p, nil
}

// Subscribe returns this node's placement events from now on.
func (p *Placement) Subscribe(buffer int) (<-chan Event, func()) { return p.feed.subscribe(buffer) }

func (p *Placement) view() View {
	return View{Self: p.self, Members: p.cl.Members(), Partition: p.cl.Partition()}
}

func (p *Placement) tick() uint64 { return p.clock.Tick() }

func (p *Placement) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// ---- the API ----

// StartChild starts a child somewhere in the cluster, on the node its
// strategy picks, and returns where it runs. It fails with ErrUnavailable
// (503) on a side that is down by the split-brain policy, and with a
// conflict (409) if a child with this ID runs.
func (p *Placement) StartChild(ctx context.Context, spec ChildSpec) (Child, error) {
	if err := spec.Validate(); err != nil {
		return Child{}, err
	}
	p.ready(ctx)
	p.mu.Lock()
	if err := p.refuseLocked(); err != nil {
		p.mu.Unlock()
		return Child{}, err
	}
	if cur := p.state[spec.ID]; cur != nil && !cur.Deleted {
		p.mu.Unlock()
		return Child{}, codedf(CodeConflict, "child %q already runs on %s", spec.ID, cur.Node)
	}
	strategy := spec.Strategy
	if strategy == "" {
		strategy = p.cfg.Strategy
	}
	target := p.pickLocked(spec.ID, strategy, p.upNodes(p.cl.Members(), ""))
	p.mu.Unlock()
	if target == "" || target == p.self {
		return p.startHere(spec)
	}
	var reply startReply
	if err := p.n.Request(ctx, target, reqStart, spec, &reply); err != nil {
		return Child{}, err
	}
	// Know the new record here at once, so that a second start of the
	// same ID from this node is refused without waiting for gossip.
	p.merge(reply.Record, false)
	return reply.Child, nil
}

// startReply answers a start request: the child and its record.
type startReply struct {
	Child  Child  `cbor:"1,keyasint"`
	Record []byte `cbor:"2,keyasint"`
}

func (p *Placement) refuseLocked() error {
	switch {
	case p.stopped || p.leaving:
		return codedf(CodeUnavailable, "placement: node %s is leaving", p.self)
	case !p.decision.Up:
		return &Error{code: CodeUnavailable, msg: fmt.Sprintf("placement: this side of the cluster is down by its split-brain policy (%s): %s", p.cfg.SplitBrain, p.decision.Reason)}
	case !time.Now().Before(p.leaseUntil):
		return &Error{code: CodeUnavailable, msg: fmt.Sprintf("placement: node %s holds no lease: it cannot reach a side its split-brain policy (%s) keeps up", p.self, p.cfg.SplitBrain)}
	}
	return nil
}

// ready prepares an API start: a decision still taken while forming is
// replaced by the current view's (the first full view needs no
// StableAfter: nothing ran before it), and a lease that ran out is renewed
// now rather than at the next round.
func (p *Placement) ready(ctx context.Context) {
	v := p.view()
	p.mu.Lock()
	if p.decision.Forming {
		d := Decide(p.cfg.SplitBrain, p.cfg.Quorum, p.cfg.KeepOldestAlone, v)
		p.setDecisionLocked(d, time.Now())
	}
	leased := time.Now().Before(p.leaseUntil)
	p.mu.Unlock()
	if !leased {
		p.renewLease(ctx)
	}
}

// setDecisionLocked installs a decision, with its event and log when the
// side changes.
func (p *Placement) setDecisionLocked(d Decision, now time.Time) {
	if d.Up != p.decision.Up {
		p.log.Warn("placement: split-brain decision changed", "up", d.Up, "reason", d.Reason, "policy", string(p.cfg.SplitBrain))
		p.feed.publish(Event{Type: SideChanged, Node: p.self, Up: d.Up, Reason: d.Reason})
		p.decidedAt = now
		if d.Up {
			p.upSince.Store(now.UnixNano())
		} else {
			p.upSince.Store(0)
		}
	}
	p.decision = d
}

// upNodes lists the names of the members up in ms that count (admitted:
// cluster.Member.Counted), without except.
func (p *Placement) upNodes(ms []cluster.Member, except string) []string {
	var out []string
	for _, m := range ms {
		if m.Status.Up() && m.Counted() && m.Name != except {
			out = append(out, m.Name)
		}
	}
	slices.Sort(out)
	return out
}

func (p *Placement) pickLocked(id string, s Strategy, up []string) string {
	if len(up) == 0 {
		return p.self
	}
	switch s {
	case Local:
		return p.self
	case RoundRobin:
		p.rr++
		return up[p.rr%len(up)]
	case LeastLoaded:
		load := map[string]int{}
		for _, r := range p.state {
			if !r.Deleted {
				load[r.Node]++
			}
		}
		best := ""
		for _, n := range up {
			if best == "" || load[n] < load[best] || load[n] == load[best] && score(id, n) > score(id, best) {
				best = n
			}
		}
		return best
	}
	return RendezvousChoice(id, up)
}

// startHere starts a new child on this node and records it.
func (p *Placement) startHere(spec ChildSpec) (Child, error) {
	if err := spec.Validate(); err != nil {
		return Child{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.LeaseRenew)
	p.ready(ctx)
	cancel()
	p.runMu.Lock()
	defer p.runMu.Unlock()
	p.mu.Lock()
	if err := p.refuseLocked(); err != nil {
		p.mu.Unlock()
		return Child{}, err
	}
	gen := uint64(1)
	if cur := p.state[spec.ID]; cur != nil {
		if !cur.Deleted {
			p.mu.Unlock()
			return Child{}, codedf(CodeConflict, "child %q already runs on %s", spec.ID, cur.Node)
		}
		gen = cur.Gen + 1
	}
	restart := spec.Restart
	if restart == "" {
		restart = Permanent
	}
	rec := &Record{ID: spec.ID, Kind: spec.Kind, Args: spec.Args, Name: spec.Name, Restart: restart,
		Gen: gen, TS: p.tick(), Node: p.self, Inc: p.inc}
	p.mu.Unlock()
	c, err := p.startLocal(rec)
	if err != nil {
		return Child{}, err
	}
	p.tellSuccessor(spec.ID)
	return c, nil
}

// tellSuccessor sends a new child's record straight to the node that would
// take it over if this one crashed (its rendezvous choice among the
// others), before the start is acknowledged. Gossip would tell it within a
// few gossip intervals; a crash in between would lose the child.
func (p *Placement) tellSuccessor(id string) {
	p.mu.Lock()
	r := p.state[id]
	p.mu.Unlock()
	if r == nil {
		return
	}
	succ := RendezvousChoice(id, p.upNodes(p.cl.Members(), p.self))
	if succ == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := p.n.Request(ctx, succ, reqMerge, crdt.Encode([]*Record{r}), nil); err != nil {
		p.log.Debug("placement: successor not told of a new child", "id", id, "successor", succ, "err", err)
	}
}

// StopChild stops a child wherever it runs and forgets it.
func (p *Placement) StopChild(ctx context.Context, id string) error {
	p.mu.Lock()
	cur := p.state[id]
	if cur == nil || cur.Deleted {
		p.mu.Unlock()
		return codedf(CodeNotFound, "no child %q", id)
	}
	owner := cur.Node
	p.mu.Unlock()
	if owner == p.self {
		return p.stopHere(id)
	}
	if p.memberUp(owner) {
		return p.n.Request(ctx, owner, reqStop, id, nil)
	}
	// The owner is unreachable: delete the child here; its node stops it
	// when the news reaches it.
	p.mu.Lock()
	cur = p.state[id]
	var out []*Record
	if cur != nil && !cur.Deleted {
		t := p.tombstone(cur, "stopped")
		if p.state.Merge(t) {
			out = append(out, t)
		}
	}
	p.mu.Unlock()
	p.broadcast(out)
	p.poke()
	return nil
}

func (p *Placement) memberUp(name string) bool {
	for _, m := range p.cl.Members() {
		if m.Name == name {
			return m.Status.Up()
		}
	}
	return false
}

func (p *Placement) stopHere(id string) error {
	p.runMu.Lock()
	defer p.runMu.Unlock()
	p.mu.Lock()
	cur := p.state[id]
	if cur == nil || cur.Deleted {
		p.mu.Unlock()
		return codedf(CodeNotFound, "no child %q", id)
	}
	t := p.tombstone(cur, "stopped")
	p.state.Merge(t)
	p.mu.Unlock()
	p.broadcast([]*Record{t})
	p.stopLocal(id, "stopped")
	return nil
}

func (p *Placement) tombstone(r *Record, reason string) *Record {
	t := *r
	t.Deleted, t.DelTS, t.DelBy, t.Reason = true, p.tick(), p.self, reason
	return &t
}

// Whereis returns the PID of a child, as this node's replica knows it.
func (p *Placement) Whereis(id string) (process.PID, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r := p.state[id]; r != nil && !r.Deleted && !r.PID.IsZero() {
		return r.PID, true
	}
	return process.PID{}, false
}

// Children lists the children this node knows of, sorted by ID.
func (p *Placement) Children() []Child {
	ms := p.cl.Members()
	up := map[string]uint64{}
	for _, m := range ms {
		if m.Status.Up() {
			up[m.Name] = m.Incarnation
		}
	}
	p.mu.Lock()
	out := make([]Child, 0, len(p.state))
	for _, r := range p.state {
		if r.Deleted {
			continue
		}
		c := Child{ID: r.ID, Kind: r.Kind, Name: r.Name, Restart: r.Restart, Node: r.Node, PID: r.PID, Gen: r.Gen, Restarts: r.Seq}
		inc, isUp := up[r.Node]
		switch {
		case r.Node == p.self && p.local[r.ID] == nil && (!p.decision.Up || !time.Now().Before(p.leaseUntil)):
			c.Status = "stopped"
		case !isUp || inc != r.Inc:
			c.Status = "orphaned"
		case r.PID.IsZero():
			c.Status = "starting"
		default:
			c.Status = "running"
		}
		out = append(out, c)
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Child) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Records returns a copy of the replicated state (tombstones included).
func (p *Placement) Records() []Record {
	p.mu.Lock()
	out := make([]Record, 0, len(p.state))
	for _, r := range p.state {
		out = append(out, *r)
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// LocalPIDs returns the children running on this node: ID → PID.
func (p *Placement) LocalPIDs() map[string]process.PID {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]process.PID{}
	for id, lc := range p.local {
		if !lc.pid.IsZero() && !lc.stopping {
			out[id] = lc.pid
		}
	}
	return out
}

// Status returns this node's placement state.
func (p *Placement) Status() Status {
	v := p.view()
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Status{
		Node: p.self, Policy: p.cfg.SplitBrain, Strategy: p.cfg.Strategy, Up: p.decision.Up, Reason: p.decision.Reason,
		DecidedAt: p.decidedAt, StableFor: time.Since(p.lastChange), StableAfter: p.cfg.StableAfter,
		RemovalMargin: p.cfg.RemovalMargin, Partition: v.Partition, Leaving: p.leaving,
		Leased: time.Now().Before(p.leaseUntil), LeaseUntil: p.leaseUntil, LeaseTimeout: p.cfg.LeaseTimeout,
		SafetyMargin: p.cfg.SafetyMargin(p.cl.Settings()),
	}
	for _, lc := range p.local {
		if !lc.pid.IsZero() {
			s.LocalChildren++
		}
	}
	if now := Decide(p.cfg.SplitBrain, p.cfg.Quorum, p.cfg.KeepOldestAlone, v); now != p.decision {
		s.Pending = &now
	}
	return s
}

// ---- running children ----

// startLocal starts the child of rec here and records the start (Seq+1,
// PID). rec is the assignment to run; it may not be in the state yet.
func (p *Placement) startLocal(rec *Record) (Child, error) {
	f, ok := lookupKind(rec.Kind)
	if !ok {
		return Child{}, codedf(CodeBadRequest, "unknown kind %q on %s", rec.Kind, p.self)
	}
	b, err := f(rec.Args)
	if err == nil && b == nil {
		err = process.ErrNilBehaviour
	}
	var pid process.PID
	if err == nil {
		pid, err = p.rt.Spawn(b, process.WithLabel(rec.Kind))
	}
	if err != nil {
		p.mu.Lock()
		lc := p.local[rec.ID]
		if lc == nil {
			lc = &localChild{rec: rec}
		}
		lc.failed = err.Error()
		lc.notUntil = time.Now().Add(p.cfg.RestartPeriod)
		if sameAssignment(lc.rec, rec) && p.state[rec.ID] != nil {
			p.local[rec.ID] = lc
		}
		p.mu.Unlock()
		p.log.Warn("placement: child did not start", "id", rec.ID, "kind", rec.Kind, "err", err)
		return Child{}, fmt.Errorf("placement: start %q: %w", rec.ID, err)
	}
	p.mu.Lock()
	cur := p.state[rec.ID]
	base := rec
	if cur != nil && sameAssignment(cur, rec) && !cur.Deleted {
		base = cur
	}
	next := *base
	next.Seq++
	next.PID = pid
	if !p.state.Merge(&next) || p.state[rec.ID] != &next {
		// Another assignment won meanwhile: this start is void.
		p.mu.Unlock()
		p.rt.Exit(pid, process.Kill)
		return Child{}, codedf(CodeConflict, "child %q was assigned elsewhere while it started", rec.ID)
	}
	lc := p.local[rec.ID]
	if lc == nil || !sameAssignment(lc.rec, &next) {
		lc = &localChild{}
		p.local[rec.ID] = lc
	}
	lc.rec, lc.pid, lc.stopping, lc.named, lc.failed = &next, pid, false, false, ""
	lc.starts = append(lc.starts, time.Now())
	p.feed.publish(Event{Type: Started, ID: rec.ID, PID: pid, Node: p.self})
	p.mu.Unlock()
	id := rec.ID
	p.rt.Watch(pid, func(d process.DownMsg) { p.childExited(id, pid, d.Reason) })
	p.broadcast([]*Record{&next})
	p.nameChild(id)
	p.log.Info("placement: child started", "id", id, "pid", pid, "gen", next.Gen, "seq", next.Seq)
	return Child{ID: id, Kind: next.Kind, Name: next.Name, Restart: next.Restart, Node: p.self, PID: pid, Status: "running", Gen: next.Gen, Restarts: next.Seq}, nil
}

// nameChild registers a local child under its name, if it has one and is
// not registered yet. A name held by another live process stays there;
// the next reconcile pass tries again.
func (p *Placement) nameChild(id string) {
	if p.reg == nil {
		return
	}
	p.mu.Lock()
	lc := p.local[id]
	if lc == nil || lc.named || lc.stopping || lc.pid.IsZero() || lc.rec.Name == "" {
		p.mu.Unlock()
		return
	}
	name, pid := lc.rec.Name, lc.pid
	p.mu.Unlock()
	err := p.reg.Register(name, pid, map[string]string{"placement_id": id})
	if err != nil {
		if cur, ok := p.reg.Whereis(name); !ok || cur != pid {
			p.log.Debug("placement: child name not registered yet", "id", id, "name", name, "err", err)
			return
		}
	}
	p.mu.Lock()
	if lc := p.local[id]; lc != nil && lc.pid == pid {
		lc.named = true
	}
	p.mu.Unlock()
}

// stopLocal stops the local child id, if any, and waits for it to exit.
func (p *Placement) stopLocal(id, reason string) {
	p.stopLocalWithin(id, reason, p.cfg.ShutdownTimeout)
}

// stopLocalWithin is stopLocal with the time the child gets before it is
// killed.
func (p *Placement) stopLocalWithin(id, reason string, timeout time.Duration) {
	p.mu.Lock()
	lc := p.local[id]
	if lc == nil || lc.pid.IsZero() || lc.stopping {
		if lc != nil && lc.pid.IsZero() {
			delete(p.local, id)
		}
		p.mu.Unlock()
		return
	}
	lc.stopping = true
	pid := lc.pid
	p.mu.Unlock()
	gone := make(chan struct{})
	cancel := p.rt.Watch(pid, func(process.DownMsg) { close(gone) })
	defer cancel()
	p.rt.Exit(pid, process.Shutdown)
	t := time.NewTimer(timeout)
	select {
	case <-gone:
	case <-t.C:
		_ = p.rt.Kill(pid)
		<-gone
	}
	t.Stop()
	p.mu.Lock()
	if cur := p.local[id]; cur == lc {
		delete(p.local, id)
	}
	p.feed.publish(Event{Type: Stopped, ID: id, PID: pid, Node: p.self, Reason: reason})
	p.mu.Unlock()
	p.log.Info("placement: child stopped", "id", id, "pid", pid, "reason", reason)
}

// childExited handles the exit of a local child that was not stopped on
// purpose: a restart by its restart type, or its end.
func (p *Placement) childExited(id string, pid process.PID, reason process.Reason) {
	p.mu.Lock()
	lc := p.local[id]
	if lc == nil || lc.pid != pid || lc.stopping {
		p.mu.Unlock()
		return
	}
	lc.pid = process.PID{}
	p.feed.publish(Event{Type: Exited, ID: id, PID: pid, Node: p.self, Reason: reasonText(reason)})
	var out []*Record
	cur := p.state[id]
	restart := lc.rec.Restart
	done := restart == Temporary || restart == Transient && process.IsShutdown(reason)
	if done {
		delete(p.local, id)
		if cur != nil && !cur.Deleted && sameAssignment(cur, lc.rec) {
			t := p.tombstone(cur, "exited")
			p.state.Merge(t)
			out = append(out, t)
		}
	} else {
		// Restart intensity: beyond MaxRestarts in RestartPeriod, wait.
		cutoff := time.Now().Add(-p.cfg.RestartPeriod)
		lc.starts = slices.DeleteFunc(lc.starts, func(t time.Time) bool { return t.Before(cutoff) })
		if len(lc.starts) > p.cfg.MaxRestarts {
			lc.notUntil = time.Now().Add(p.cfg.RestartPeriod)
			p.log.Warn("placement: child restarts too often; waiting", "id", id, "for", p.cfg.RestartPeriod)
		}
	}
	p.mu.Unlock()
	p.broadcast(out)
	p.log.Info("placement: child exited", "id", id, "pid", pid, "reason", reasonText(reason), "restart", !done)
	p.poke()
}

func reasonText(r process.Reason) string {
	if r == nil {
		return "normal"
	}
	return r.Error()
}

// ---- reconciliation ----

func (p *Placement) loop(events <-chan cluster.Event) {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.ReconcileInterval)
	defer t.Stop()
	lastGC := time.Now()
	for {
		if time.Since(lastGC) > time.Minute {
			p.gc()
			lastGC = time.Now()
		}
		select {
		case <-p.stop:
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if membershipChange(ev) {
				p.mu.Lock()
				p.lastChange = time.Now()
				p.changedAt.Store(p.lastChange.UnixNano())
				p.mu.Unlock()
			}
			if membershipChange(ev) || ev.Type == cluster.NodeAdmitted || ev.Type == cluster.NodeRemoved {
				select {
				case p.leaseKick <- struct{}{}:
				default:
				}
			}
		case <-p.kick:
		case <-t.C:
		}
		p.reconcile()
	}
}

// removalGate is the cluster's removal gate (cluster.RemovalGate): this
// side may stop counting members dead past the removal margin only if
//
//   - its split-brain decision, which is taken on stable views only, has
//     been up for RemovalMargin: the dead time that counts is the time
//     this side was up (as for a takeover), not the time it spent on the
//     losing side of a partition, seeing the other side dead, or a brief
//     heal in between;
//   - the membership has not changed for StableAfter: a side whose
//     members are still going dead one after another (a partition being
//     detected) is not the side that keeps running yet; and
//   - the policy keeps this side up on the view that still counts them,
//     and kept it up in the last lease round (started within two
//     LeaseRenew), on the view of the members that answered over their
//     own links: memberlist on this side may not have seen the other
//     side go dead yet (under load one side detected a 2|2 split 1.7 s
//     after the other, and keep-oldest then counted a member still
//     "alive" but unreachable as its own: both sides removed the other);
//     and no member memberlist holds dead answered that round (the
//     removal is replicated: the member would learn it and stop).
//
// Without the first two, each side of two quick partitions removed a
// different set of members and both ended up with a majority of their
// own denominator (TestSplitBrainChurnBriefHeal). The cluster calls
// it under its lock: it reads only atomics.
func (p *Placement) removalGate(ms []cluster.Member, ps cluster.PartitionStatus) bool {
	now := time.Now()
	up := p.upSince.Load()
	if up == 0 || now.Sub(time.Unix(0, up)) < p.cfg.RemovalMargin {
		return false
	}
	if now.Sub(time.Unix(0, p.changedAt.Load())) < p.cfg.StableAfter {
		return false
	}
	if !p.roundUp.Load() || now.Sub(time.Unix(0, p.roundAt.Load())) > 2*p.cfg.LeaseRenew {
		return false
	}
	// A member that memberlist holds dead but that answered the last
	// round over its link is not gone (its gossip is cut, or slow):
	// removing it would stop what it runs, and it asks for its lease, so
	// nobody would take its children over.
	if r := p.round.Load(); r != nil {
		for _, m := range ms {
			if inc, ok := r.reached[m.Name]; ok && m.Status == cluster.StatusDead && !m.Removed && inc == m.Incarnation {
				return false
			}
		}
	}
	return Decide(p.cfg.SplitBrain, p.cfg.Quorum, p.cfg.KeepOldestAlone, View{Self: p.self, Members: ms, Partition: ps}).Up
}

// membershipChange reports whether an event resets the stable-after
// timer: a member up, down or left. A suspicion and its refutation do not:
// one lost probe must not hold back a decision. Nor does the removal of a
// dead member, or the partition status change it causes (every other
// partition change comes with a member event): the side that removes is
// up and stays up, and resetting the timer there would delay the takeover
// of the removed node's children by StableAfter (the cluster removes at
// its removal margin, the same time placement's margin ends).
func membershipChange(ev cluster.Event) bool {
	switch ev.Type {
	case cluster.NodeDown, cluster.NodeLeft:
		return true
	case cluster.NodeUp:
		return ev.OldStatus != cluster.StatusSuspect
	}
	return false
}

type action struct {
	id     string
	rec    *Record
	reason string
	from   string
}

// plan is what one reconcile pass does.
type plan struct {
	stops, starts, takeovers []action
	out                      []*Record // records to broadcast (takeovers)
	// gated counts the starts and takeovers held back until this node has
	// merged the state of every member it sees up (see reconcile).
	gated int
	peers []string // the members up, this node excluded
}

// reconcile compares what runs here with the state and acts: it stops
// what must not run here, starts what must, and takes over the children
// of lost nodes that this node is the rendezvous choice for.
//
// A child this node does not run (a fresh start of a child assigned to
// it, as after it regained its side or its lease, or a takeover) starts
// only after a merge gate: this node pulls the replicated state of every
// member it sees up (placement.sync; in its own goroutine, so that the
// loop keeps stopping what must stop), merges it, and plans again from
// the merged state, within LeaseRenew + ReconcileInterval of the pull's
// start. If any of them does not answer, nothing new starts until a pull
// succeeds (retried every ReconcileInterval). So a node never acts on an
// assignment that a
// member it can reach has already replaced (a takeover during a
// partition, or one whose gossip this node missed), however late gossip
// or push-pull would bring it. Restarts of a child that ran here under
// the same assignment are not gated.
func (p *Placement) reconcile() {
	p.runMu.Lock()
	defer p.runMu.Unlock()
	pl := p.plan(false)
	if pl == nil {
		return
	}
	p.execute(pl)
	if pl.gated == 0 {
		return
	}
	if p.synced(pl.peers) {
		if pl = p.plan(true); pl != nil {
			p.execute(pl)
		}
		return
	}
	p.startSync(pl.peers, pl.gated)
}

// synced reports whether a pull of the state of every one of peers
// started recently enough (within LeaseRenew + ReconcileInterval: the
// pull that the pass before asked for) and succeeded.
func (p *Placement) synced(peers []string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.syncStarted.IsZero() || time.Since(p.syncStarted) > p.cfg.LeaseRenew+p.cfg.ReconcileInterval {
		return false
	}
	for _, n := range peers {
		if !p.syncPeers[n] {
			return false
		}
	}
	return true
}

// startSync starts the merge gate's pull from peers, unless one runs or
// the last failed within ReconcileInterval. It pokes reconcile when done.
func (p *Placement) startSync(peers []string, held int) {
	p.mu.Lock()
	if p.syncing || time.Since(p.syncFailed) < p.cfg.ReconcileInterval || p.stopped {
		p.mu.Unlock()
		return
	}
	p.syncing = true
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		started := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.LeaseRenew)
		ok, missing := p.syncFrom(ctx, peers)
		cancel()
		p.mu.Lock()
		p.syncing = false
		if ok {
			p.syncStarted, p.syncPeers = started, map[string]bool{}
			for _, n := range peers {
				p.syncPeers[n] = true
			}
		} else {
			p.syncFailed = time.Now()
		}
		p.mu.Unlock()
		if !ok {
			p.log.Debug("placement: merge gate: not every member up answered; nothing new starts yet",
				"held_back", held, "missing", missing)
			return
		}
		p.poke()
	}()
}

// plan decides one pass. With synced false, the starts and takeovers of
// children this node does not run are only counted (plan.gated); with
// synced true (the merge gate just passed) they are planned, and the
// takeover records merged into the state.
func (p *Placement) plan(synced bool) *plan {
	v := p.view()
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	stableFor := now.Sub(p.lastChange)
	stable := stableFor >= p.cfg.StableAfter
	if d := Decide(p.cfg.SplitBrain, p.cfg.Quorum, p.cfg.KeepOldestAlone, v); stable || p.decision.Forming || d.Forming {
		// The first decision after forming (or after this node was
		// admitted) needs no stable view: nothing ran before it. A node
		// that stops counting itself (removed) is down at once.
		p.setDecisionLocked(d, now)
	}
	leased := now.Before(p.leaseUntil)
	up := p.decision.Up && !p.leaving && leased
	members := map[string]cluster.Member{}
	for _, m := range v.Members {
		members[m.Name] = m
	}
	upNames := p.upNodes(v.Members, "")
	pl := &plan{peers: p.upNodes(v.Members, p.self)}
	quiet := p.quietLocked(v.Members, now, p.cfg.LeaseTimeout+p.cfg.fence(p.cl.Settings()))
	for id, r := range p.state {
		if r.Deleted {
			if p.local[id] != nil {
				pl.stops = append(pl.stops, action{id: id, reason: "stopped"})
			}
			continue
		}
		mine := r.Node == p.self && r.Inc == p.inc
		lc := p.local[id]
		switch {
		case mine && !up:
			if lc != nil && !lc.pid.IsZero() {
				reason := "split_brain"
				switch {
				case p.leaving:
					reason = "shutdown"
				case !leased:
					reason = "lease_expired"
				}
				pl.stops = append(pl.stops, action{id: id, reason: reason})
			}
		case mine:
			if lc != nil && !lc.pid.IsZero() {
				if sameAssignment(lc.rec, r) {
					if !lc.named && r.Name != "" {
						pl.starts = append(pl.starts, action{id: id}) // only the name
					}
					continue
				}
				// It runs under an older assignment: restart it under this one.
				pl.stops = append(pl.stops, action{id: id, reason: "reassigned"})
			} else if lc != nil && sameAssignment(lc.rec, r) && now.Before(lc.notUntil) {
				continue // restarting too often, or its last start failed: wait
			}
			// A restart of what ran here under this assignment needs no
			// gate. Anything else (nothing runs here: the node was down,
			// lost its lease, or just got the assignment) may be an
			// assignment that a member this node cannot see replaced
			// while it was cut off: it waits until those members are
			// quiet (quietLocked), then passes the merge gate.
			if lc == nil || len(lc.starts) == 0 {
				if !quiet {
					continue
				}
				if !synced {
					pl.gated++
					continue
				}
			}
			pl.starts = append(pl.starts, action{id: id, rec: r})
		default:
			if lc != nil {
				pl.stops = append(pl.stops, action{id: id, reason: "reassigned"})
			}
			if !up || !stable {
				continue
			}
			lost, certain, since := p.lostLocked(r, members, now)
			if !lost {
				continue
			}
			// Count the loss from when this side was up to see it: a node
			// that just came back from the losing side of a partition sees
			// the rest of the cluster dead for a moment before the heal
			// completes, though it ran all along.
			if p.decidedAt.After(since) {
				since = p.decidedAt
			}
			wait := p.cfg.StableAfter
			if !certain {
				wait += p.cfg.RemovalMargin
			}
			if now.Sub(since) < wait || RendezvousChoice(id, upNames) != p.self {
				continue
			}
			// The grantor's side of the lease: a renewal this node answered
			// at h may hold the owner's lease until h + LeaseTimeout, and its
			// child may take the fence to stop.
			if h, ok := p.heard[r.Node]; ok && !certain && now.Sub(h) < p.cfg.LeaseTimeout+p.cfg.fence(p.cl.Settings()) {
				continue
			}
			// The record names r.Node, but a member this node cannot see
			// may have taken the child over since, under an assignment
			// this node never received: wait until every member it cannot
			// see has been out of its view as long as a takeover waits
			// (quietLocked).
			if !quiet {
				continue
			}
			if !synced {
				pl.gated++
				continue
			}
			next := *r
			next.Gen, next.TS, next.Node, next.Inc, next.Seq, next.PID = r.Gen+1, p.tick(), p.self, p.inc, 0, process.PID{}
			p.state.Merge(&next)
			pl.out = append(pl.out, &next)
			pl.takeovers = append(pl.takeovers, action{id: id, rec: &next, from: r.Node})
		}
	}
	for id, lc := range p.local {
		if _, ok := p.state[id]; !ok && !lc.pid.IsZero() {
			pl.stops = append(pl.stops, action{id: id, reason: "stopped"})
		}
	}
	return pl
}

// quietLocked reports whether every member that this node does not see up
// (dead, or named by a record but unknown) has been out of its view,
// counted from when this side was up, for StableAfter + RemovalMargin,
// and has not asked this node to renew its lease for grace (LeaseTimeout
// + the fence). Such a member may run a child under an assignment this node has
// not received (it took the child over while this node was cut off from
// it); by then, by the lease (doc.go), it has stopped it. Members that
// left, or that came back with a new incarnation, run nothing of their
// old assignments and do not count.
func (p *Placement) quietLocked(ms []cluster.Member, now time.Time, grace time.Duration) bool {
	wait := p.cfg.StableAfter + p.cfg.RemovalMargin
	known := map[string]bool{}
	check := func(name string, since time.Time) bool {
		if p.decidedAt.After(since) {
			since = p.decidedAt
		}
		if now.Sub(since) < wait {
			return false
		}
		if h, ok := p.heard[name]; ok && now.Sub(h) < grace {
			return false
		}
		return true
	}
	for _, m := range ms {
		known[m.Name] = true
		if m.Name == p.self || m.Status != cluster.StatusDead {
			continue
		}
		if !check(m.Name, m.Since) {
			return false
		}
	}
	for name, first := range p.unknown {
		if !known[name] && !check(name, first) {
			return false
		}
	}
	return true
}

// execute carries out a plan: stops first (in parallel), then takeovers
// and starts.
func (p *Placement) execute(pl *plan) {
	p.broadcast(pl.out)
	// Stop in parallel: a side that loses must stop every child within one
	// shutdown timeout, not one after another.
	var wg sync.WaitGroup
	fence := p.cfg.fence(p.cl.Settings())
	for _, a := range pl.stops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a.reason == "lease_expired" || a.reason == "split_brain" {
				p.stopLocalWithin(a.id, a.reason, fence)
				return
			}
			p.stopLocal(a.id, a.reason)
		}()
	}
	wg.Wait()
	for _, a := range pl.takeovers {
		p.mu.Lock()
		p.feed.publish(Event{Type: TakenOver, ID: a.id, Node: p.self, From: a.from})
		p.mu.Unlock()
		p.log.Warn("placement: taking over a child of a lost node", "id", a.id, "from", a.from)
		_, _ = p.startLocal(a.rec)
	}
	for _, a := range pl.starts {
		if a.rec == nil {
			p.nameChild(a.id)
			continue
		}
		_, _ = p.startLocal(a.rec)
	}
}

// syncFrom is the merge gate's pull: it asks every named member, in
// parallel, for its replicated state (placement.sync) and merges what
// comes back. It reports whether every one answered (a node of an older
// version, without the handler, counts: gossip carries its state), and
// the names of those that did not.
func (p *Placement) syncFrom(ctx context.Context, names []string) (bool, []string) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var missing []string
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b []byte
			if err := p.n.Request(ctx, name, reqSync, nil, &b); err != nil {
				var re *node.RequestError
				if errors.As(err, &re) && re.Code == node.CodeUnknownOp {
					return
				}
				mu.Lock()
				missing = append(missing, name)
				mu.Unlock()
				return
			}
			p.merge(b, false)
		}()
	}
	wg.Wait()
	slices.Sort(missing)
	return len(missing) == 0, missing
}

// lostLocked says whether the node a record is assigned to is lost, whether
// for certain (it left, or restarted: it runs nothing of the old
// assignment), and since when.
func (p *Placement) lostLocked(r *Record, members map[string]cluster.Member, now time.Time) (lost, certain bool, since time.Time) {
	if r.Node == p.self {
		if r.Inc < p.inc {
			return true, true, p.decidedAt
		}
		return false, false, time.Time{}
	}
	m, ok := members[r.Node]
	if !ok {
		first, seen := p.unknown[r.Node]
		if !seen {
			first = now
			p.unknown[r.Node] = now
		}
		return true, false, first
	}
	delete(p.unknown, r.Node)
	switch {
	case m.Incarnation > r.Inc:
		return true, true, m.Since
	case m.Incarnation < r.Inc:
		return false, false, time.Time{}
	case m.Status == cluster.StatusLeft:
		return true, true, m.Since
	case m.Status == cluster.StatusDead:
		return true, false, m.Since
	}
	return false, false, time.Time{}
}

// ---- leaving ----

// Stop hands this node's children off to the other members (each stops
// here, then starts on its rendezvous choice among them), then ends the
// placement. Call it before the node leaves the cluster. Without other
// members the children are only stopped.
func (p *Placement) Stop(ctx context.Context) error {
	p.mu.Lock()
	if p.stopped || p.leaving {
		p.mu.Unlock()
		return nil
	}
	p.leaving = true
	p.mu.Unlock()
	err := p.handOff(ctx, func(string, []string) bool { return true })
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	close(p.stop)
	p.wg.Wait()
	p.unsub()
	p.cl.RemoveReplica(ReplicaName)
	p.cl.SetRemovalGate(nil)
	p.cl.SetAdmissionGate(nil)
	// Whatever is left (no member to hand off to) stops here.
	for id := range p.LocalPIDs() {
		p.stopLocal(id, "shutdown")
	}
	p.feed.close()
	return err
}

// Close ends the placement without handing anything off: children keep
// running until the runtime stops them. For a crash-like stop in tests, or
// after the node is gone.
func (p *Placement) Close() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	p.mu.Unlock()
	close(p.stop)
	p.wg.Wait()
	p.unsub()
	p.cl.RemoveReplica(ReplicaName)
	p.cl.SetRemovalGate(nil)
	p.cl.SetAdmissionGate(nil)
	p.feed.close()
}

// Rebalance hands off every local child whose rendezvous choice among the
// live members is another node, and returns how many moved.
func (p *Placement) Rebalance(ctx context.Context) (int, error) {
	moved := 0
	err := p.handOff(ctx, func(id string, up []string) bool {
		if RendezvousChoice(id, up) != p.self {
			moved++
			return true
		}
		return false
	})
	return moved, err
}

// RebalanceCluster asks every up member (this node included), in
// parallel, to rebalance (Rebalance): afterwards every child runs where
// rendezvous would place it among the live members. Each child is stopped
// on its node before it is assigned to the next, so no child runs twice.
// It returns how many children each node moved, and the nodes that did
// not answer with why.
func (p *Placement) RebalanceCluster(ctx context.Context) (moved map[string]int, failed map[string]string) {
	moved, failed = map[string]int{}, map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range p.upNodes(p.cl.Members(), "") {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var n int
			err := p.n.Request(ctx, name, reqRebal, nil, &n)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[name] = err.Error()
				return
			}
			moved[name] = n
		}()
	}
	wg.Wait()
	return moved, failed
}

// handOff stops the local children that move says should move and
// assigns each to its rendezvous choice among the other live members,
// telling that node directly (and everyone by gossip).
func (p *Placement) handOff(ctx context.Context, move func(id string, up []string) bool) error {
	p.runMu.Lock()
	defer p.runMu.Unlock()
	ms := p.cl.Members()
	incs := map[string]uint64{}
	for _, m := range ms {
		incs[m.Name] = m.Incarnation
	}
	all := p.upNodes(ms, "")
	others := p.upNodes(ms, p.self)
	if len(others) == 0 {
		return nil
	}
	p.mu.Lock()
	var ids []string
	for id, lc := range p.local {
		if !lc.pid.IsZero() && move(id, all) {
			ids = append(ids, id)
		}
	}
	p.mu.Unlock()
	slices.Sort(ids)
	byTarget := map[string][]*Record{}
	for _, id := range ids {
		p.stopLocal(id, "handoff")
		p.mu.Lock()
		cur := p.state[id]
		if cur == nil || cur.Deleted || cur.Node != p.self {
			p.mu.Unlock()
			continue
		}
		target := RendezvousChoice(id, others)
		next := *cur
		next.Gen, next.TS, next.Node, next.Inc, next.Seq, next.PID = cur.Gen+1, p.tick(), target, incs[target], 0, process.PID{}
		p.state.Merge(&next)
		p.mu.Unlock()
		byTarget[target] = append(byTarget[target], &next)
		p.log.Info("placement: child handed off", "id", id, "to", target)
	}
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for target, recs := range byTarget {
		p.broadcast(recs)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.n.Request(ctx, target, reqMerge, crdt.Encode(recs), nil); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("hand-off to %s: %w", target, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ---- the lease ----

// leaseLoop renews the lease every LeaseRenew, and at once after a
// membership change.
func (p *Placement) leaseLoop() {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.LeaseRenew)
	defer t.Stop()
	defer func() {
		p.mu.Lock()
		if p.leaseTimer != nil {
			p.leaseTimer.Stop()
		}
		p.mu.Unlock()
	}()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		case <-p.leaseKick:
		}
		p.renewLease(context.Background())
	}
}

// renewLease runs one renewal round: it asks every live member (neither
// left nor removed, whatever memberlist says of it) over its node link,
// in parallel, within LeaseRenew, and applies the split-brain policy to
// the view of leaseView: the members that answered (with the incarnation
// the view has) are up, the others dead. If that side is up, the lease
// holds until the round's start + LeaseTimeout. Only this node's own
// links count: a node cut off loses its lease however late memberlist
// notices.
//
// Each request carries this node's membership records and each answer
// the peer's (cluster.StandingState): both sides merge them before the
// round is decided, so a member removed by a side that kept running
// learns it from the first answer of a member of that side, and a round
// is decided on what every member it reached knows. Members up in the
// view that do not count (joining, removed) are asked too: they learn the
// records, and the admission gate needs their answer.
func (p *Placement) renewLease(ctx context.Context) {
	p.leaseMu.Lock()
	defer p.leaseMu.Unlock()
	start := time.Now()
	ms := p.cl.Members()
	if p.cl.Partition().State == cluster.Forming {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.LeaseRenew)
	defer cancel()
	req := leaseRequest{Inc: p.inc, Standing: p.cl.StandingState()}
	var mu sync.Mutex
	answered := map[string]uint64{p.self: p.inc}
	var wg sync.WaitGroup
	for _, m := range ms {
		if m.Name == p.self || m.Status == cluster.StatusLeft || m.Removed && !m.Status.Up() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var raw cbor.RawMessage
			err := p.n.Request(ctx, m.Name, reqLease, req, &raw)
			if !reached(err) {
				return
			}
			inc := m.Incarnation // an older node answers true: take the view's
			var rep leaseReply
			if err == nil && codec.Unmarshal(raw, &rep) == nil {
				inc = rep.Inc
				if len(rep.Standing) > 0 {
					if err := p.cl.MergeStanding(rep.Standing); err != nil {
						p.log.Warn("placement: membership records in a lease answer refused", "from", m.Name, "err", err)
					}
				}
			}
			mu.Lock()
			answered[m.Name] = inc
			mu.Unlock()
		}()
	}
	wg.Wait()
	// Decide on the records as merged from every answer.
	ms = p.cl.Members()
	view, full := leaseView(p.self, ms, answered)
	d := Decide(p.cfg.SplitBrain, p.cfg.Quorum, p.cfg.KeepOldestAlone,
		View{Self: p.self, Members: view, Partition: cluster.PartitionOf(view, 0, false)})
	p.roundUp.Store(d.Up)
	p.roundAt.Store(start.UnixNano())
	p.round.Store(&leaseRound{at: start, up: d.Up, full: full, reached: answered})
	if full {
		p.cl.Review() // admissions wait for a full round (admissionGate)
	}
	reachedBy := make([]bool, len(ms))
	for i, m := range ms {
		_, reachedBy[i] = answered[m.Name]
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !d.Up {
		if time.Now().Before(p.leaseUntil) {
			p.log.Debug("placement: lease not renewed", "reason", d.Reason, "holds_until", p.leaseUntil)
		}
		return
	}
	until := start.Add(p.cfg.LeaseTimeout)
	if !until.After(p.leaseUntil) {
		return
	}
	was := time.Now().Before(p.leaseUntil)
	if !was {
		// Regaining the lease (at start, or after a cut): first take the
		// state of the members that answered, so that a child the other
		// side took over meanwhile is not started here again under its
		// old assignment before gossip brings the news.
		p.mu.Unlock()
		pctx, pcancel := context.WithTimeout(context.Background(), p.cfg.LeaseRenew)
		ok := p.pullState(pctx, ms, reachedBy)
		pcancel()
		p.mu.Lock()
		if !ok || !until.After(p.leaseUntil) {
			return
		}
		was = time.Now().Before(p.leaseUntil)
	}
	p.leaseUntil = until
	if p.leaseTimer != nil {
		p.leaseTimer.Stop()
	}
	p.leaseTimer = time.AfterFunc(time.Until(until), p.poke)
	if !was {
		p.log.Info("placement: lease held", "until", until, "reason", d.Reason)
		p.poke()
	}
}

// leaseRequest is a lease renewal: the asker's incarnation and its
// membership records. leaseReply is the answer: the answerer's.
type leaseRequest struct {
	Inc      uint64 `cbor:"1,keyasint"`
	Standing []byte `cbor:"2,keyasint,omitempty"`
}

type leaseReply struct {
	Inc      uint64 `cbor:"1,keyasint"`
	Standing []byte `cbor:"2,keyasint,omitempty"`
}

// leaseRound is the outcome of a lease round, for the admission gate.
type leaseRound struct {
	at      time.Time
	up      bool
	full    bool
	reached map[string]uint64 // member → the incarnation that answered (this node included)
}

// leaseView is the view a lease round decides on: ms as the cluster has
// it after merging the answers' records, answered the incarnation each
// member answered with. Members that left or were removed are kept as
// they are; every other member is alive if it answered with the
// incarnation the view has, dead otherwise. full reports a full round:
// every member that counts answered (a joining member whose earlier
// incarnation counts answered with its new one); in a full round such a
// member counts by its new incarnation (it stands for the old one, which
// is gone). This node keeps its own standing: if it does not count
// itself, Decide says down.
func leaseView(self string, ms []cluster.Member, answered map[string]uint64) (view []cluster.Member, full bool) {
	full = true
	for _, m := range ms {
		if m.Name == self || m.Status == cluster.StatusLeft || m.Removed {
			continue
		}
		if inc, ok := answered[m.Name]; !ok || inc != m.Incarnation {
			full = false
		}
	}
	view = make([]cluster.Member, len(ms))
	for i, m := range ms {
		if m.Status != cluster.StatusLeft && !m.Removed {
			if m.Name == self {
				m.Status = cluster.StatusAlive
			} else if inc, ok := answered[m.Name]; ok && inc == m.Incarnation && (!m.Joining || full) {
				m.Status, m.Joining = cluster.StatusAlive, false
			} else {
				m.Status = cluster.StatusDead
			}
		}
		view[i] = m
	}
	return view, full
}

// admissionGate is the cluster's admission gate (cluster.AdmissionGate):
// this node admits member m only if its last lease round (started within
// two LeaseRenew) was full (every member it counts answered over its own
// link) and m answered it with the incarnation to admit. A full round is
// Akka's convergence: no member this node counts is on another side, so
// no other side can be up with them, and the member admitted has merged
// this node's records (the request carried them) before it counts. The
// side does not have to be up by its policy (a static quorum below its
// number admits the members that bring it back). The cluster calls it
// under its lock: it reads only atomics.
func (p *Placement) admissionGate(m cluster.Member, _ []cluster.Member, _ cluster.PartitionStatus) bool {
	r := p.round.Load()
	if r == nil || !r.full || time.Since(r.at) > 2*p.cfg.LeaseRenew {
		return false
	}
	inc, ok := r.reached[m.Name]
	return ok && inc == m.Incarnation
}

// reached says whether a request's outcome proves the peer was reached
// over the node link: an answer, or an error its handler (or its node)
// sent back. A node of an older version without the lease handler answers
// unknown_operation: it is reachable, which is all the lease asks.
func reached(err error) bool {
	var re *node.RequestError
	if err == nil {
		return true
	}
	if errors.As(err, &re) {
		return re.Code != node.CodeUnreachable && re.Code != node.CodeTimeout
	}
	return false
}

// pullState merges the replicated state of the members that answered. It
// reports whether it got at least one (or there was nobody to ask).
func (p *Placement) pullState(ctx context.Context, ms []cluster.Member, answered []bool) bool {
	var wg sync.WaitGroup
	asked := 0
	var got atomic.Int32
	for i, m := range ms {
		if !answered[i] || m.Name == p.self {
			continue
		}
		asked++
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b []byte
			if err := p.n.Request(ctx, m.Name, reqSync, nil, &b); err != nil {
				var re *node.RequestError
				if errors.As(err, &re) && re.Code == node.CodeUnknownOp {
					got.Add(1) // an older node: nothing to pull, gossip carries its state
					return
				}
				p.log.Debug("placement: state not pulled", "from", m.Name, "err", err)
				return
			}
			p.merge(b, false)
			got.Add(1)
		}()
	}
	wg.Wait()
	return asked == 0 || got.Load() > 0
}

// handleLease answers a peer's renewal and remembers when: this node
// restarts none of that peer's children until its lease has surely run
// out (see reconcile). It merges the membership records the request
// carries and answers with its own (see renewLease). An older node's
// request (its incarnation alone) carries none.
func (p *Placement) handleLease(_ context.Context, from string, body []byte) (any, error) {
	var req leaseRequest
	if codec.Unmarshal(body, &req) == nil && len(req.Standing) > 0 {
		if err := p.cl.MergeStanding(req.Standing); err != nil {
			p.log.Warn("placement: membership records in a lease request refused", "from", from, "err", err)
		}
	}
	p.mu.Lock()
	p.heard[from] = time.Now()
	p.mu.Unlock()
	return leaseReply{Inc: p.inc, Standing: p.cl.StandingState()}, nil
}

// ---- node requests ----

func (p *Placement) handleStart(_ context.Context, _ string, body []byte) (any, error) {
	var spec ChildSpec
	if err := decodeBody(body, &spec); err != nil {
		return nil, err
	}
	c, err := p.startHere(spec)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	var rec []byte
	if r := p.state[spec.ID]; r != nil {
		rec = crdt.Encode([]*Record{r})
	}
	p.mu.Unlock()
	return startReply{Child: c, Record: rec}, nil
}

func (p *Placement) handleStop(_ context.Context, _ string, body []byte) (any, error) {
	var id string
	if err := decodeBody(body, &id); err != nil {
		return nil, err
	}
	return true, p.stopHere(id)
}

func (p *Placement) handleMerge(_ context.Context, _ string, body []byte) (any, error) {
	var b []byte
	if err := decodeBody(body, &b); err != nil {
		return nil, err
	}
	p.merge(b, true)
	p.poke()
	return true, nil
}

// ---- replication ----

func (p *Placement) broadcast(rs []*Record) {
	for _, r := range rs {
		p.cl.BroadcastKey(ReplicaName, r.ID, crdt.Encode([]*Record{r}))
	}
}

type replica Placement

func (rp *replica) LocalState() []byte {
	p := (*Placement)(rp)
	p.mu.Lock()
	rs := p.state.Values()
	p.mu.Unlock()
	return crdt.Encode(rs)
}

func (rp *replica) MergeRemoteState(b []byte) { (*Placement)(rp).merge(b, false) }
func (rp *replica) NotifyMsg(b []byte)        { (*Placement)(rp).merge(b, true) }

func (p *Placement) merge(b []byte, rebroadcast bool) {
	rs, err := crdt.Decode[Record](b)
	if err != nil {
		p.log.Warn("placement: state from a peer refused", "err", err)
		return
	}
	var out []*Record
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	horizon := p.clock.Horizon(TombstoneTTL)
	for _, r := range rs {
		p.clock.Observe(r.Stamp())
		if p.state.Accept(r, horizon) && rebroadcast {
			out = append(out, r)
		}
	}
	changed := len(out) > 0 || !rebroadcast
	p.mu.Unlock()
	p.broadcast(out)
	if changed {
		p.poke()
	}
}

// TombstoneTTL: deleted children are forgotten after this long.
const TombstoneTTL = time.Hour

// gc forgets old tombstones.
func (p *Placement) gc() {
	p.mu.Lock()
	p.state.Retire(p.clock.Horizon(TombstoneTTL), func(r *Record) bool { return p.local[r.ID] != nil })
	p.mu.Unlock()
}

var _ node.Coded = (*Error)(nil)

func decodeBody(body []byte, v any) error {
	if err := codec.Unmarshal(body, v); err != nil {
		return codedf(CodeBadRequest, "malformed request: %v", err)
	}
	return nil
}
