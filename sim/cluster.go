package sim

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/node"
)

// Port is the node-traffic port of every simulated node.
const Port = 7946

// DefaultSecret is the cluster secret when Options.Secret is empty. The
// simulated network is private to the process, so a fixed secret is fine.
var DefaultSecret = []byte("arsenal-simulator-cluster-secret")

// Options configure a simulated cluster.
type Options struct {
	// Nodes is the number of nodes (at least 1, at most 65 000).
	Nodes int
	// Seed seeds every random decision of the network (jitter, drops)
	// and Rand. 0 picks a random seed; Seed() reports it, and the
	// timeline's first line records it, so a run can be replayed.
	Seed uint64
	// Profile is the failure-detection profile; default cluster.ProfileFast.
	Profile cluster.Profile
	// ClusterName defaults to "sim".
	ClusterName string
	// Secret defaults to DefaultSecret.
	Secret []byte
	// ExpectedSize is every node's expected cluster size for the
	// partition status; default Nodes. Negative means none: the nodes
	// count the live members (node.Config.ExpectedSize 0), as a cluster
	// that grows with Add and shrinks with crashes would be run.
	ExpectedSize int
	// LogLevel is the level of the per-node logs kept for diagnostics
	// (Logs, Diagnostics); default slog.LevelInfo.
	LogLevel slog.Level
	// Logger, if set, also receives every node's logs, with a "node"
	// attribute.
	Logger *slog.Logger
	// Configure, if set, has the last word on each node's configuration
	// (index i, from 0), on every start including restarts. Changing Net,
	// Name or BindAddr breaks the simulator's bookkeeping.
	Configure func(i int, cfg *node.Config)
	// Services, if set, starts what runs on node i besides the node (such
	// as package arsenal's composed node, with Attach), after every start
	// and restart, before the node counts as running. Stop stops them
	// before the node leaves; Kill and Close crash them after the node's
	// network is gone.
	Services func(i int, n *node.Node) (Services, error)
	// NoWait makes New return without waiting for the cluster to converge.
	NoWait bool
	// Synctest says the cluster runs inside a testing/synctest bubble.
	// Close then sleeps a while of virtual time (free in a bubble), so
	// that goroutines memberlist leaves running after its Shutdown (a
	// probe waiting for its timeout) end before the bubble does; without
	// it synctest.Test reports them as a deadlock.
	Synctest bool
}

func (o *Options) defaults() error {
	if o.Nodes < 1 || o.Nodes > 65000 {
		return fmt.Errorf("sim: Nodes = %d, want 1..65000", o.Nodes)
	}
	if o.Seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		o.Seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	if o.Profile == "" {
		o.Profile = cluster.ProfileFast
	}
	if o.ClusterName == "" {
		o.ClusterName = "sim"
	}
	if len(o.Secret) == 0 {
		o.Secret = DefaultSecret
	}
	if o.ExpectedSize == 0 {
		o.ExpectedSize = o.Nodes
	}
	// Negative: none (node.Config.ExpectedSize 0, the live members).
	return nil
}

// NodeState is a simulated node's life-cycle state.
type NodeState string

const (
	Running NodeState = "running"
	Paused  NodeState = "paused"
	Killed  NodeState = "killed"  // crashed (Kill): no leave
	Stopped NodeState = "stopped" // left gracefully (Stop)
)

// Cluster is an in-process cluster of complete nodes on a simulated
// network. Nodes are numbered from 0; node i is named "n<i+1>@10.0.x.y"
// (or the name given to Add) and listens on 10.0.x.y:7946, the same name
// and address on every start. Add grows the cluster by one node.
//
// Fault methods take node indexes and panic on an index out of range or an
// invalid spec, as a slice index would: those are bugs in the test.
type Cluster struct {
	opts    Options
	nw      *Network
	started time.Time
	rng     *mrand.Rand

	addMu    sync.Mutex // serialises Add
	mu       sync.Mutex
	nodes    []*simNode
	timeline []string
	closed   bool
	closing  sync.WaitGroup // nodes being closed by Kill or Stop
}

// Services are what Options.Services started on one node.
type Services interface {
	// Stop stops them gracefully, before the node leaves (it may stop
	// the node too).
	Stop(ctx context.Context) error
	// Crash stops them as a crash would, after the node is closed.
	Crash()
}

type simNode struct {
	svc   Services // what Options.Services started on the current incarnation
	idx   int
	name  string
	addr  string
	ip    netip.Addr
	host  *Host
	logs  *logRing
	node  *node.Node // current incarnation; nil when down
	state NodeState
	incs  []uint64      // every incarnation, oldest first
	gone  chan struct{} // closed when the last incarnation has finished closing
}

// IP returns the address of node i's host: 10.0.x.y with x.y = i+1.
func IP(i int) netip.Addr {
	n := i + 1
	return netip.AddrFrom4([4]byte{10, 0, byte(n >> 8), byte(n)})
}

// New starts opts.Nodes nodes one after another, each joining those
// started before it, marks them simulated (cluster.SetSimulated), and
// unless opts.NoWait waits until every node sees every other alive. On any
// error it closes what it started.
func New(ctx context.Context, opts Options) (*Cluster, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	c := &Cluster{
		opts:    opts,
		nw:      NewNetwork(opts.Seed),
		started: time.Now(),
		// A stream of its own, so the test's choices do not shift the
		// network's decisions.
		rng: mrand.New(mrand.NewPCG(opts.Seed, 0x7e57)),
	}
	c.record("seed %d: %d nodes, profile %s", opts.Seed, opts.Nodes, opts.Profile)
	for i := range opts.Nodes {
		c.nodes = append(c.nodes, c.newSimNode(i, ""))
	}
	for i := range c.nodes {
		seeds := make([]string, 0, i)
		for _, o := range c.nodes[:i] {
			seeds = append(seeds, o.addr)
		}
		if err := c.start(ctx, i, seeds); err != nil {
			c.Close()
			return nil, err
		}
	}
	if !opts.NoWait {
		if err := c.WaitConverged(ctx); err != nil {
			c.Close()
			return nil, err
		}
		c.record("converged: %d nodes", opts.Nodes)
	}
	return c, nil
}

// at returns node i's bookkeeping (the list grows with Add, so it is read
// under the lock).
func (c *Cluster) at(i int) *simNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// list returns the nodes' bookkeeping, by index.
func (c *Cluster) list() []*simNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*simNode(nil), c.nodes...)
}

func (c *Cluster) newSimNode(i int, name string) *simNode {
	ip := IP(i)
	if name == "" {
		name = "n" + strconv.Itoa(i+1) + "@" + ip.String()
	}
	return &simNode{
		idx:   i,
		name:  name,
		addr:  netip.AddrPortFrom(ip, Port).String(),
		ip:    ip,
		host:  c.nw.Host(ip),
		logs:  newLogRing(500),
		state: Stopped,
		gone:  closedChan(),
	}
}

func (c *Cluster) start(ctx context.Context, i int, seeds []string) error {
	sn := c.at(i)
	var h slog.Handler = slog.NewTextHandler(sn.logs, &slog.HandlerOptions{Level: c.opts.LogLevel})
	if c.opts.Logger != nil {
		h = fanout{h, c.opts.Logger.Handler().WithAttrs([]slog.Attr{slog.String("node", sn.name)})}
	}
	cfg := node.Config{
		Name:         sn.name,
		Cluster:      c.opts.ClusterName,
		Secret:       c.opts.Secret,
		BindAddr:     sn.addr,
		Profile:      c.opts.Profile,
		ExpectedSize: max(c.opts.ExpectedSize, 0),
		Net:          sn.host,
		Logger:       slog.New(h),
	}
	if len(seeds) > 0 {
		cfg.Discovery = cluster.StaticSeeds(seeds...)
	}
	if c.opts.Configure != nil {
		c.opts.Configure(i, &cfg)
	}
	sn.host.Revive()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("sim: start %s: %w", sn.name, err)
	}
	n.Cluster().SetSimulated(true)
	var svc Services
	if c.opts.Services != nil {
		if svc, err = c.opts.Services(i, n); err != nil {
			cctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			_ = n.Close(cctx)
			return fmt.Errorf("sim: start %s: services: %w", sn.name, err)
		}
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		_ = n.Close(cctx)
		if svc != nil {
			svc.Crash()
		}
		return fmt.Errorf("sim: start %s: cluster closed", sn.name)
	}
	sn.node, sn.svc = n, svc
	sn.state = Running
	sn.incs = append(sn.incs, n.Incarnation())
	c.mu.Unlock()
	c.record("start %s at %s (incarnation %d)", sn.name, sn.addr, n.Incarnation())
	return nil
}

// CrashDetection is the profile's estimate of how long after a crash every
// survivor has marked the node dead (cluster.ProfileSettings.CrashDetection
// for this cluster's size). Windows for negative claims ("nobody is
// declared dead") should be a multiple of typical.
func (c *Cluster) CrashDetection() (typical, upper time.Duration) {
	return c.opts.Profile.Settings().CrashDetection(c.Size())
}

// Size returns the number of nodes, running or not.
func (c *Cluster) Size() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.nodes) }

// Seed returns the seed of this run.
func (c *Cluster) Seed() uint64 { return c.opts.Seed }

// Rand returns a random source derived from the seed (a stream separate
// from the network's), for a test's own choices, such as a random fault
// schedule that the seed replays. It is not safe for concurrent use.
func (c *Cluster) Rand() *mrand.Rand { return c.rng }

// Network returns the simulated network, for faults by address and its
// counters and decision log.
func (c *Cluster) Network() *Network { return c.nw }

// Nodes returns every node's current incarnation, by index; nil for a node
// that is down (killed or stopped).
func (c *Cluster) Nodes() []*node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*node.Node, len(c.nodes))
	for i, sn := range c.nodes {
		out[i] = sn.node
	}
	return out
}

// Node returns node i's current incarnation, or nil when it is down.
func (c *Cluster) Node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].node
}

// Name returns node i's name (the same on every start).
func (c *Cluster) Name(i int) string { return c.at(i).name }

// Addr returns node i's address (the same on every start).
func (c *Cluster) Addr(i int) string { return c.at(i).addr }

// Index returns the index of the node with the given name, or -1.
func (c *Cluster) Index(name string) int {
	for i, sn := range c.list() {
		if sn.name == name {
			return i
		}
	}
	return -1
}

// State returns node i's life-cycle state.
func (c *Cluster) State(i int) NodeState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].state
}

// Incarnations returns every incarnation node i has had, oldest first.
func (c *Cluster) Incarnations(i int) []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint64(nil), c.nodes[i].incs...)
}

// Logs returns the last lines (up to 500) of node i's logs, all
// incarnations.
func (c *Cluster) Logs(i int) string { return c.at(i).logs.String() }

// ---- node faults ----

// shutdownTimeout bounds the stop of one node's processes.
const shutdownTimeout = 10 * time.Second

// Kill crashes node i: its host is cut off at once (peers' connections to
// it are reset, nothing it sends gets out, no leave), and the node is
// closed in the background, its processes shut down unseen. Peers see it
// dead. No-op if the node is down. Restart waits for the close.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	sn := c.nodes[i]
	n := sn.node
	if n == nil {
		c.mu.Unlock()
		return
	}
	svc := sn.svc
	sn.node, sn.svc, sn.state = nil, nil, Killed
	gone := make(chan struct{})
	sn.gone = gone
	c.closing.Add(1)
	c.mu.Unlock()
	c.record("kill %s (crash, no leave)", sn.name)
	sn.host.Crash()
	go func() {
		defer c.closing.Done()
		defer close(gone)
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			c.record("kill %s: close: %v", sn.name, err)
		}
		if svc != nil {
			svc.Crash()
		}
	}()
}

func closedChan() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

// Stop stops node i gracefully: it leaves the cluster (peers see it left),
// stops its processes and closes. A paused node is resumed first.
func (c *Cluster) Stop(i int) error {
	c.mu.Lock()
	sn := c.nodes[i]
	n := sn.node
	if n == nil {
		c.mu.Unlock()
		return nil
	}
	svc := sn.svc
	sn.node, sn.svc, sn.state = nil, nil, Stopped
	c.closing.Add(1)
	defer c.closing.Done()
	c.mu.Unlock()
	sn.host.Resume()
	c.record("stop %s (graceful leave)", sn.name)
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if svc != nil {
		if err := svc.Stop(ctx); err != nil {
			c.record("stop %s: services: %v", sn.name, err)
		}
	}
	if err := n.Stop(ctx); err != nil {
		return fmt.Errorf("sim: stop %s: %w", sn.name, err)
	}
	return nil
}

// Pause freezes node i's network as SIGSTOP would freeze the process (see
// Host.Pause and the package doc for what differs). Resume undoes it.
func (c *Cluster) Pause(i int) {
	c.mu.Lock()
	sn := c.nodes[i]
	if sn.state != Running {
		c.mu.Unlock()
		return
	}
	sn.state = Paused
	c.mu.Unlock()
	sn.host.Pause()
	c.record("pause %s", sn.name)
}

// Resume continues a paused node.
func (c *Cluster) Resume(i int) {
	c.mu.Lock()
	sn := c.nodes[i]
	if sn.state != Paused {
		c.mu.Unlock()
		return
	}
	sn.state = Running
	c.mu.Unlock()
	sn.host.Resume()
	c.record("resume %s", sn.name)
}

// Restart starts node i again after Kill or Stop: same name and address, a
// new incarnation, joining every other node's address. Path faults set
// before stay in force.
func (c *Cluster) Restart(i int) (*node.Node, error) {
	c.mu.Lock()
	sn := c.nodes[i]
	down, gone, closed := sn.node == nil, sn.gone, c.closed
	c.mu.Unlock()
	switch {
	case closed:
		return nil, fmt.Errorf("sim: restart %s: cluster closed", sn.name)
	case !down:
		return nil, fmt.Errorf("sim: restart %s: still running; Kill or Stop it first", sn.name)
	}
	<-gone // the old incarnation has released its address
	var seeds []string
	for _, o := range c.list() {
		if o != sn {
			seeds = append(seeds, o.addr)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := c.start(ctx, i, seeds); err != nil {
		return nil, err
	}
	return c.Node(i), nil
}

// Add starts one more node: index Size(), host IP(index) on port Port,
// under name (empty: "n<index+1>@<its IP>"), joining every node that is
// up, with the cluster's configuration (Options.Configure and
// Options.Services included). It returns the new index. The name must be
// new: a name any node of this cluster had is refused, as is an Add after
// Close. If the node cannot start, the error says why and the cluster is
// as before (the index is not used).
func (c *Cluster) Add(ctx context.Context, name string) (int, error) {
	c.addMu.Lock() // one Add at a time: a failed one gives its index back
	defer c.addMu.Unlock()
	c.mu.Lock()
	i := len(c.nodes)
	switch {
	case c.closed:
		c.mu.Unlock()
		return -1, errors.New("sim: add a node: cluster closed")
	case i >= 65000:
		c.mu.Unlock()
		return -1, fmt.Errorf("sim: add a node: the cluster has %d nodes, the most the simulated network addresses", i)
	}
	sn := c.newSimNode(i, name)
	var seeds []string
	for _, o := range c.nodes {
		if o.name == sn.name {
			c.mu.Unlock()
			return -1, fmt.Errorf("sim: add node %q: the name is node %d's; a new node needs a new name", sn.name, o.idx)
		}
		if o.node != nil {
			seeds = append(seeds, o.addr)
		}
	}
	c.nodes = append(c.nodes, sn)
	c.mu.Unlock()
	if err := c.start(ctx, i, seeds); err != nil {
		c.mu.Lock()
		c.nodes = c.nodes[:i]
		c.mu.Unlock()
		return -1, err // "sim: start <name>: …"
	}
	c.record("added %s as node %d", sn.name, i)
	return i, nil
}

// ---- network faults ----

func (c *Cluster) check(i int) {
	if n := c.Size(); i < 0 || i >= n {
		panic(fmt.Sprintf("sim: node index %d out of range [0, %d)", i, n))
	}
}

func (c *Cluster) update(a, b int, fn func(*PathFaults)) {
	c.check(a)
	c.check(b)
	if a == b {
		panic(fmt.Sprintf("sim: fault from node %d to itself", a))
	}
	c.nw.UpdatePath(c.at(a).ip, c.at(b).ip, fn)
}

// Partition cuts the cluster into groups of node indexes: nothing crosses
// between groups, either way, gossip and links alike. Nodes in no group
// keep talking to everyone. Faults add up: call Heal to undo.
func (c *Cluster) Partition(groups ...[]int) {
	seen := map[int]bool{}
	size := c.Size()
	for _, g := range groups {
		for _, i := range g {
			if i < 0 || i >= size || seen[i] {
				panic(fmt.Sprintf("sim: bad partition spec %v: index %d out of range or repeated", groups, i))
			}
			seen[i] = true
		}
	}
	for gi, g := range groups {
		for gj, h := range groups {
			if gi == gj {
				continue
			}
			for _, i := range g {
				for _, j := range h {
					c.update(i, j, func(f *PathFaults) { f.Cut = true })
				}
			}
		}
	}
	c.record("partition %v", groups)
}

// Blackhole drops traffic from a to b: dir "out" (a -> b only), "in"
// (b -> a only) or "both", as clustertest's Blackhole.
func (c *Cluster) Blackhole(a, b int, dir string) {
	cut := func(f *PathFaults) { f.Cut = true }
	switch dir {
	case "out":
		c.update(a, b, cut)
	case "in":
		c.update(b, a, cut)
	case "both":
		c.update(a, b, cut)
		c.update(b, a, cut)
	default:
		panic(fmt.Sprintf("sim: blackhole direction %q: want out, in or both", dir))
	}
	c.record("blackhole %s -> %s (%s)", c.Name(a), c.Name(b), dir)
}

// Delay delays everything a sends to b by d plus a random extra in
// [0, jitter] (from the seeded source). Delay(a, b, 0, 0) removes it.
// For both directions, call it twice.
func (c *Cluster) Delay(a, b int, d, jitter time.Duration) {
	c.update(a, b, func(f *PathFaults) { f.Delay, f.Jitter = d, jitter })
	c.record("delay %s -> %s by %s ± %s", c.Name(a), c.Name(b), d, jitter)
}

// DropRate loses each datagram (gossip packet) a sends to b with
// probability p, decided by the seeded source. Streams (node links,
// memberlist's TCP) are reliable and are not affected. 0 removes it.
func (c *Cluster) DropRate(a, b int, p float64) {
	if p < 0 || p > 1 {
		panic(fmt.Sprintf("sim: drop rate %g out of [0, 1]", p))
	}
	c.update(a, b, func(f *PathFaults) { f.Drop = p })
	c.record("drop rate %s -> %s = %g", c.Name(a), c.Name(b), p)
}

// Refuse makes a's new connections to b fail at once (a firewall reject).
// Existing connections and datagrams are not affected.
func (c *Cluster) Refuse(a, b int) {
	c.update(a, b, func(f *PathFaults) { f.Refuse = true })
	c.record("refuse %s -> %s", c.Name(a), c.Name(b))
}

// ClearFaults removes every fault between a and b, both ways.
func (c *Cluster) ClearFaults(a, b int) {
	c.update(a, b, func(f *PathFaults) { *f = PathFaults{} })
	c.update(b, a, func(f *PathFaults) { *f = PathFaults{} })
	c.record("clear faults %s <-> %s", c.Name(a), c.Name(b))
}

// Heal removes every network fault (partitions, blackholes, delays, drop
// rates, refusals). Paused nodes stay paused and crashed ones down, as in
// clustertest: Resume and Restart are separate.
func (c *Cluster) Heal() {
	c.nw.ClearPaths()
	c.record("heal")
}

// Close stops every node (as a crash: no leave, which is fastest) and the
// network. It is safe to call more than once.
func (c *Cluster) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	var running []*node.Node
	var svcs []Services
	for _, sn := range c.nodes {
		if sn.node != nil {
			running = append(running, sn.node)
			if sn.svc != nil {
				svcs = append(svcs, sn.svc)
			}
			sn.node, sn.svc, sn.state = nil, nil, Killed
		}
	}
	c.mu.Unlock()
	// Crash all hosts first so that no node spends its shutdown talking
	// to the others, then close the nodes in parallel.
	for _, sn := range c.list() {
		sn.host.Crash()
	}
	var wg sync.WaitGroup
	for _, n := range running {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			_ = n.Close(ctx)
		})
	}
	wg.Wait()
	for _, svc := range svcs {
		wg.Go(svc.Crash)
	}
	wg.Wait()
	c.closing.Wait()
	_ = c.nw.Close()
	c.record("closed")
	if c.opts.Synctest {
		ps := c.opts.Profile.Settings()
		time.Sleep(2*(ps.TCPTimeout+ps.ProbeInterval+ps.ProbeTimeout) + time.Second)
	}
}

// ---- waits ----

// ErrNotMet is wrapped by the errors of the Wait methods when the
// condition did not hold in time.
var ErrNotMet = errors.New("sim: condition not met")

// Eventually polls cond until it holds or ctx ends. The error names what
// was awaited and carries the membership matrix and the fault timeline.
func (c *Cluster) Eventually(ctx context.Context, what string, cond func() bool) error {
	wait := time.Millisecond
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return c.notMet(what, ctx.Err())
		case <-t.C:
		}
		t.Reset(wait)
		wait = min(2*wait, 20*time.Millisecond)
	}
}

// Holds checks that cond stays true for d (for negative claims such as "no
// node is declared dead"). It fails as soon as cond is false, or if ctx
// ends before d has passed.
func (c *Cluster) Holds(ctx context.Context, d time.Duration, what string, cond func() bool) error {
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if !cond() {
			return c.notMet(what, errors.New("became false"))
		}
		select {
		case <-end.C:
			if !cond() {
				return c.notMet(what, errors.New("became false"))
			}
			return nil
		case <-ctx.Done():
			return c.notMet(what, ctx.Err())
		case <-tick.C:
		}
	}
}

func (c *Cluster) notMet(what string, why error) error {
	return fmt.Errorf("%w: %s (%v)\n%s\n%s", ErrNotMet, what, why, c.Matrix(), c.timelineText())
}

// WaitConverged waits until every node that is up (running or paused)
// sees exactly the up nodes as alive.
func (c *Cluster) WaitConverged(ctx context.Context) error {
	return c.Eventually(ctx, "cluster converged", c.Converged)
}

// Converged reports whether every up node sees exactly the up nodes alive.
func (c *Cluster) Converged() bool {
	up := map[string]*node.Node{}
	for _, n := range c.Nodes() {
		if n != nil {
			up[n.Name()] = n
		}
	}
	for _, n := range up {
		alive := 0
		for _, m := range n.Cluster().Members() {
			if m.Status == cluster.StatusAlive {
				if up[m.Name] == nil {
					return false
				}
				alive++
			}
		}
		if alive != len(up) {
			return false
		}
	}
	return true
}

// Status returns how node observer sees node target ("" when it does not
// know it, or the observer is down).
func (c *Cluster) Status(observer, target int) cluster.Status {
	c.check(target)
	n := c.Node(observer)
	if n == nil {
		return ""
	}
	for _, m := range n.Cluster().Members() {
		if m.Name == c.Name(target) {
			return m.Status
		}
	}
	return ""
}

// WaitStatus waits until node observer sees node target with status.
func (c *Cluster) WaitStatus(ctx context.Context, observer, target int, status cluster.Status) error {
	what := fmt.Sprintf("%s sees %s %s", c.Name(observer), c.Name(target), status)
	return c.Eventually(ctx, what, func() bool { return c.Status(observer, target) == status })
}

// WaitPartition waits until node i's partition status is state.
func (c *Cluster) WaitPartition(ctx context.Context, i int, state cluster.PartitionState) error {
	what := fmt.Sprintf("%s partition status %s", c.Name(i), state)
	return c.Eventually(ctx, what, func() bool {
		n := c.Node(i)
		return n != nil && n.Cluster().Partition().State == state
	})
}

// WaitSees waits until node i sees exactly the given nodes alive (itself
// included if listed).
func (c *Cluster) WaitSees(ctx context.Context, i int, alive ...int) error {
	want := map[string]bool{}
	for _, j := range alive {
		want[c.Name(j)] = true
	}
	what := fmt.Sprintf("%s sees exactly %v alive", c.Name(i), alive)
	return c.Eventually(ctx, what, func() bool {
		n := c.Node(i)
		if n == nil {
			return false
		}
		got := 0
		for _, m := range n.Cluster().Members() {
			if m.Status == cluster.StatusAlive {
				if !want[m.Name] {
					return false
				}
				got++
			}
		}
		return got == len(want)
	})
}
