package placement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/registry"
	"github.com/arsenal-go/arsenal/transport"
)

const wait = 20 * time.Second

// worker is the test kind: an idle server that answers calls with its
// argument.
type worker struct {
	process.Server
	arg string
}

func (w *worker) HandleCall(_ *process.Proc, _ process.From, _ any) (any, error) { return w.arg, nil }

func init() {
	RegisterKind("test-worker", func(args []byte) (process.Behaviour, error) { return &worker{arg: string(args)}, nil })
	RegisterKind("test-broken", func([]byte) (process.Behaviour, error) { return nil, errors.New("bad args") })
}

// member is one in-process node with its registry and placement.
type member struct {
	n      *node.Node
	faults *transport.Faults
	reg    *registry.Registry
	pl     *Placement
	closed bool

	mu     sync.Mutex
	events []Event
}

func (m *member) history() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Event(nil), m.events...)
}

var testSecret = []byte("0123456789abcdef-placement-test")

type testCluster struct {
	t       testing.TB
	members []*member
}

func startCluster(t testing.TB, size int, cfg Config) *testCluster {
	t.Helper()
	name := fmt.Sprintf("pl%d", time.Now().UnixNano())
	tc := &testCluster{t: t}
	var seed string
	for i := range size {
		f := transport.NewFaults()
		ncfg := node.Config{
			Name: fmt.Sprintf("n%d@127.0.0.1", i+1), Cluster: name, Secret: testSecret, Profile: cluster.ProfileFast,
			ExpectedSize: size, Faults: f, FactsInterval: time.Second, Logger: slog.New(slog.DiscardHandler),
		}
		if seed != "" {
			ncfg.Discovery = cluster.StaticSeeds(seed)
		}
		n, err := node.Start(context.Background(), ncfg)
		if err != nil {
			t.Fatal(err)
		}
		if seed == "" {
			seed = n.Addr()
		}
		tc.members = append(tc.members, &member{n: n, faults: f})
	}
	t.Cleanup(tc.close)
	for _, m := range tc.members {
		testutil.Eventually(t, wait, func() bool { return m.n.Cluster().Topology().Alive == size }, "%s did not see %d members", m.n.Name(), size)
	}
	for _, m := range tc.members {
		reg, err := registry.Start(m.n.Runtime(), m.n.Cluster(), registry.Config{SweepInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		m.reg = reg
		c := cfg
		c.Registry = reg
		pl, err := Start(m.n, c)
		if err != nil {
			t.Fatal(err)
		}
		m.pl = pl
		events, _ := pl.Subscribe(4096)
		go func() {
			for e := range events {
				m.mu.Lock()
				m.events = append(m.events, e)
				m.mu.Unlock()
			}
		}()
	}
	for _, m := range tc.members {
		testutil.Eventually(t, wait, func() bool { return m.pl.Status().Up }, "%s never decided up", m.n.Name())
	}
	return tc
}

func (tc *testCluster) close() {
	for _, m := range tc.members {
		tc.crash(m)
	}
}

// crash stops a member as a crash would: no hand-off, no leave.
func (tc *testCluster) crash(m *member) {
	if m.closed {
		return
	}
	m.closed = true
	m.pl.Close()
	m.reg.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = m.n.Close(ctx)
}

func (tc *testCluster) partition(groups ...[]int) {
	for gi, g := range groups {
		for gj, h := range groups {
			if gi == gj {
				continue
			}
			for _, i := range g {
				for _, j := range h {
					a, b := tc.members[i], tc.members[j]
					a.faults.Block(b.n.Name(), transport.Both)
					a.faults.Block(b.n.Addr(), transport.Both)
				}
			}
		}
	}
}

func (tc *testCluster) heal() {
	for _, m := range tc.members {
		if !m.closed {
			m.faults.ClearAll()
		}
	}
}

func (tc *testCluster) live() []*member {
	var out []*member
	for _, m := range tc.members {
		if !m.closed {
			out = append(out, m)
		}
	}
	return out
}

// converged reports whether every live member holds the same records and
// sees every child running on a live member, with its name registered.
func (tc *testCluster) converged(ids []string) bool {
	live := tc.live()
	liveNames := map[string]bool{}
	for _, m := range live {
		liveNames[m.n.Name()] = true
	}
	ref := live[0].pl.Children()
	if len(ref) != len(ids) {
		return false
	}
	for _, c := range ref {
		if c.Status != "running" || !liveNames[c.Node] {
			return false
		}
	}
	for _, m := range live[1:] {
		cs := m.pl.Children()
		if len(cs) != len(ref) {
			return false
		}
		for i := range cs {
			if cs[i].ID != ref[i].ID || cs[i].PID != ref[i].PID {
				return false
			}
		}
	}
	for _, c := range ref {
		if c.Name == "" {
			continue
		}
		for _, m := range live {
			if pid, ok := m.reg.Whereis(c.Name); !ok || pid != c.PID {
				return false
			}
		}
	}
	return true
}

// interval is one copy of a child: from its start to its end (zero: still
// running, or until its node crashed).
type interval struct {
	id         string
	pid        process.PID
	node       string
	start, end time.Time
}

// copies builds every copy's lifetime from the members' events; crashed
// gives the crash time of members that were crashed.
func copies(tc *testCluster, crashed map[string]time.Time) []interval {
	var out []interval
	for _, m := range tc.members {
		open := map[process.PID]int{}
		for _, e := range m.history() {
			switch e.Type {
			case Started:
				open[e.PID] = len(out)
				out = append(out, interval{id: e.ID, pid: e.PID, node: e.Node, start: e.Time})
			case Stopped, Exited:
				if i, ok := open[e.PID]; ok {
					out[i].end = e.Time
					delete(open, e.PID)
				}
			}
		}
		if at, ok := crashed[m.n.Name()]; ok {
			for _, i := range open {
				out[i].end = at
			}
		}
	}
	return out
}

// overlaps is the checker: two copies of one child alive at the same time.
func overlaps(cs []interval) []string {
	var bad []string
	byID := map[string][]interval{}
	for _, c := range cs {
		byID[c.id] = append(byID[c.id], c)
	}
	for id, list := range byID {
		sort.Slice(list, func(i, j int) bool { return list[i].start.Before(list[j].start) })
		for i := 1; i < len(list); i++ {
			prev := list[i-1]
			if prev.end.IsZero() || prev.end.After(list[i].start) {
				bad = append(bad, fmt.Sprintf("%s: %s on %s (%s–%s) overlaps %s on %s from %s", id, prev.pid, prev.node,
					prev.start.Format("15:04:05.000"), prev.end.Format("15:04:05.000"), list[i].pid, list[i].node, list[i].start.Format("15:04:05.000")))
			}
		}
	}
	sort.Strings(bad)
	return bad
}

// startLocalChildren starts n children with the Local strategy on m, with
// ids prefix-0 … prefix-(n-1), and waits until every member sees them
// converged.
func startLocalChildren(t *testing.T, tc *testCluster, m *member, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := m.pl.StartChild(context.Background(), ChildSpec{ID: id, Kind: "test-worker", Strategy: Local}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	testutil.Eventually(t, wait, func() bool { return tc.converged(ids) }, "children never converged")
	return ids
}

func startChildren(t *testing.T, m *member, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("child-%02d", i)
		c, err := m.pl.StartChild(context.Background(), ChildSpec{ID: id, Kind: "test-worker", Args: []byte(id), Name: "svc-" + id})
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		if c.PID.IsZero() || c.Node == "" {
			t.Fatalf("start %s: %+v", id, c)
		}
		ids = append(ids, id)
	}
	return ids
}

var fastCfg = Config{StableAfter: 300 * time.Millisecond, RemovalMargin: 1500 * time.Millisecond, ReconcileInterval: 50 * time.Millisecond}

func TestStartCallStopAndCrashFailover(t *testing.T) {
	tc := startCluster(t, 3, fastCfg)
	a := tc.members[0]
	ids := startChildren(t, a, 9)
	testutil.Eventually(t, wait, func() bool { return tc.converged(ids) }, "children never converged")
	// Every node can call a child by name; the answer is its argument.
	for _, m := range tc.members {
		got, err := m.reg.Call(context.Background(), "svc-child-03", "hello")
		if err != nil || got != "child-03" {
			t.Fatalf("%s: call by name = %v, %v", m.n.Name(), got, err)
		}
	}
	// The spread uses every node.
	on := map[string]int{}
	for _, c := range a.pl.Children() {
		on[c.Node]++
	}
	if len(on) != 3 {
		t.Fatalf("rendezvous used %d nodes: %v", len(on), on)
	}
	// Errors: a duplicate, an unknown kind, a failing factory.
	if _, err := a.pl.StartChild(context.Background(), ChildSpec{ID: ids[0], Kind: "test-worker"}); err == nil {
		t.Fatal("a second start of one ID succeeded")
	}
	if _, err := a.pl.StartChild(context.Background(), ChildSpec{ID: "x", Kind: "nope"}); err == nil {
		t.Fatal("unknown kind accepted")
	}
	if _, err := a.pl.StartChild(context.Background(), ChildSpec{ID: "x", Kind: "test-broken", Strategy: Local}); err == nil {
		t.Fatal("a failing factory started")
	}
	// Stop one from a node that does not run it.
	var remote Child
	for _, c := range a.pl.Children() {
		if c.Node != a.n.Name() {
			remote = c
			break
		}
	}
	if err := a.pl.StopChild(context.Background(), remote.ID); err != nil {
		t.Fatal(err)
	}
	ids = deleteID(ids, remote.ID)
	testutil.Eventually(t, wait, func() bool { return tc.converged(ids) }, "stopped child still listed")

	// Crash the node with the most children; each of its children must be
	// started exactly once more, on a survivor.
	victim := tc.members[2]
	var lost []string
	for _, c := range a.pl.Children() {
		if c.Node == victim.n.Name() {
			lost = append(lost, c.ID)
		}
	}
	if len(lost) == 0 {
		t.Skip("rendezvous put nothing on the victim")
	}
	crashAt := time.Now()
	tc.crash(victim)
	testutil.Eventually(t, wait, func() bool { return tc.converged(ids) }, "children of the crashed node not restarted")
	starts := map[string]int{}
	for _, m := range tc.live() {
		for _, e := range m.history() {
			if e.Type == Started && e.Time.After(crashAt) {
				starts[e.ID]++
			}
		}
	}
	for _, id := range ids {
		want := 0
		for _, l := range lost {
			if l == id {
				want = 1
			}
		}
		if starts[id] != want {
			t.Fatalf("after the crash %s was started %d times, want %d (all: %v)", id, starts[id], want, starts)
		}
	}
	if bad := overlaps(copies(tc, map[string]time.Time{victim.n.Name(): crashAt})); len(bad) > 0 {
		t.Fatalf("two copies at once:\n%v", bad)
	}
}

func deleteID(ids []string, id string) []string {
	var out []string
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

// A 2|1 split under keep-majority: the minority stops its children and
// refuses new ones; the majority restarts them after the margin; no two
// copies ever overlap; after the heal one copy of each runs.
func TestPartitionKeepMajority(t *testing.T) {
	tc := startCluster(t, 3, fastCfg)
	ids := startChildren(t, tc.members[0], 9)
	testutil.Eventually(t, wait, func() bool { return tc.converged(ids) }, "children never converged")
	minority := tc.members[2]
	tc.partition([]int{0, 1}, []int{2})
	testutil.Eventually(t, wait, func() bool { return !minority.pl.Status().Up }, "the minority never went down")
	_, err := minority.pl.StartChild(context.Background(), ChildSpec{ID: "late", Kind: "test-worker", Strategy: Local})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a start on the minority: %v", err)
	}
	testutil.Eventually(t, wait, func() bool {
		if len(minority.pl.LocalPIDs()) != 0 {
			return false
		}
		for _, c := range tc.members[0].pl.Children() {
			if c.Status != "running" || c.Node == minority.n.Name() {
				return false
			}
		}
		return true
	}, "the majority did not take over")
	tc.heal()
	testutil.Eventually(t, wait, func() bool {
		return minority.pl.Status().Up && minority.n.Cluster().Topology().Alive == 3 && tc.converged(ids)
	}, "no single owner per child after the heal")
	if bad := overlaps(copies(tc, nil)); len(bad) > 0 {
		t.Fatalf("two copies at once:\n%v", bad)
	}
}

// A graceful stop hands the children off: each starts once elsewhere.
func TestHandOffOnStop(t *testing.T) {
	tc := startCluster(t, 3, fastCfg)
	leaver := tc.members[1]
	ids := startLocalChildren(t, tc, leaver, "h", 4)
	stopAt := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := leaver.pl.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if len(leaver.pl.LocalPIDs()) != 0 {
		t.Fatal("children left running after the hand-off")
	}
	leaver.reg.Stop()
	_ = leaver.n.Stop(ctx)
	leaver.closed = true
	testutil.Eventually(t, wait, func() bool { return tc.converged(ids) }, "handed-off children not running")
	for _, m := range tc.live() {
		for _, e := range m.history() {
			if e.Type == Started && e.Time.After(stopAt) {
				ids = deleteID(ids, e.ID)
			}
		}
	}
	if len(ids) != 0 {
		t.Fatalf("not restarted after the hand-off: %v", ids)
	}
	if bad := overlaps(copies(tc, nil)); len(bad) > 0 {
		t.Fatalf("two copies at once:\n%v", bad)
	}
}

// A child that crashes is restarted where it is; a transient one that
// exits normally is forgotten.
func TestLocalRestarts(t *testing.T) {
	tc := startCluster(t, 2, fastCfg)
	a := tc.members[0]
	c, err := a.pl.StartChild(context.Background(), ChildSpec{ID: "p", Kind: "test-worker", Strategy: Local})
	if err != nil {
		t.Fatal(err)
	}
	_ = a.n.Runtime().Kill(c.PID)
	testutil.Eventually(t, wait, func() bool {
		pid, ok := a.pl.Whereis("p")
		return ok && pid != c.PID && a.n.Runtime().Alive(pid)
	}, "permanent child not restarted")
	tr, err := a.pl.StartChild(context.Background(), ChildSpec{ID: "t", Kind: "test-worker", Strategy: Local, Restart: Transient})
	if err != nil {
		t.Fatal(err)
	}
	a.n.Runtime().Exit(tr.PID, process.Shutdown)
	testutil.Eventually(t, wait, func() bool {
		for _, m := range tc.members {
			for _, c := range m.pl.Children() {
				if c.ID == "t" {
					return false
				}
			}
		}
		return true
	}, "transient child that shut down is still listed")
}
