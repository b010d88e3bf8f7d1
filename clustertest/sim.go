package clustertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal"
	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/control"
	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/sim"
)

// SimCluster runs a Harness test body on the simulator (package sim):
// complete nodes in this process over an in-memory network. It has the
// same faults, waits, History and diagnostics as the real *Cluster; the
// differences are sim's (see its package doc): Pause freezes a node's
// network, not its processes, and Options.Order and Args do not apply.
type SimCluster struct {
	t    testing.TB
	c    *sim.Cluster
	hist *History
	prof cluster.ProfileSettings

	opts   Options
	app    arsenal.App
	mu     sync.Mutex
	svcs   map[int]*arsenal.Node    // the composed node on each running node
	delays map[[2]int]time.Duration // delay + jitter in force per pair
	stops  []func()                 // end the membership subscriptions
	wg     sync.WaitGroup
}

// StartSim starts n simulated nodes and, unless opts.NoWait, waits until
// they have converged. The cluster closes when the test ends.
func StartSim(t testing.TB, n int, opts Options) *SimCluster {
	t.Helper()
	if opts.Profile == "" {
		opts.Profile = "fast"
	}
	prof, err := cluster.ParseProfile(opts.Profile)
	if err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	start := time.Now()
	s := &SimCluster{t: t, hist: newHistory(start), prof: prof.Settings(), opts: opts, svcs: map[int]*arsenal.Node{}}
	s.app = arsenal.App{Name: "arsenal", Kinds: []arsenal.Kind{{Name: "echo", New: newEcho}}}
	if opts.App != nil {
		s.app = *opts.App
	}
	cfg, err := simConfig(t, s.app, opts.Args)
	if err != nil {
		t.Fatalf("clustertest: simulator: Options.Args %q: %v", opts.Args, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(sim.StartTimeout))
	defer cancel()
	c, err := sim.New(ctx, sim.Options{Nodes: n, Seed: opts.Seed, Profile: prof, ExpectedSize: opts.ExpectedSize, NoWait: true,
		Services: func(i int, nn *node.Node) (sim.Services, error) {
			an, err := arsenal.Attach(context.Background(), nn, nil, arsenal.Config{
				Node: node.Config{Logger: nn.Config().Logger}, Placement: cfg.Placement, App: s.app,
			})
			if err != nil {
				return nil, err
			}
			s.mu.Lock()
			s.svcs[i] = an
			s.mu.Unlock()
			return an, nil
		}})
	if err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	s.c = c
	s.hist.ready = time.Since(start)
	t.Cleanup(s.cleanup)
	for i := 0; i < n; i++ {
		s.watch(i)
	}
	s.hist.Note("simulated cluster: %d nodes, seed %d", n, c.Seed())
	if !opts.NoWait {
		s.WaitConverged(30 * time.Second)
		s.hist.mu.Lock()
		s.hist.formed = time.Since(start)
		s.hist.mu.Unlock()
		s.hist.Note("formed: every node sees %d alive, %s after Start", n, time.Since(start).Round(time.Millisecond))
	}
	return s
}

// newEcho makes the "echo" kind the simulator's nodes have when the test
// names no App (the built-in helper that 'arsenal node' also places).
func newEcho([]byte) (process.Behaviour, error) { return control.Echo{}, nil }

// simConfig reads the settings of opts.Args as a node would, for the
// parts the simulator uses (placement, and the App's own flags).
func simConfig(t testing.TB, app arsenal.App, args []string) (arsenal.Config, error) {
	f := filepath.Join(t.TempDir(), "sim-secret")
	if err := os.WriteFile(f, []byte("simulated-cluster-secret"), 0o600); err != nil {
		return arsenal.Config{}, err
	}
	all := append([]string{"--secret-file", f, "--http-addr", "off"}, args...)
	return arsenal.ParseConfig(app, all, io.Discard, io.Discard)
}

// composed returns the composed node running as node i.
func (s *SimCluster) composed(i int) (*arsenal.Node, error) {
	n, err := s.node(i)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	an := s.svcs[i]
	s.mu.Unlock()
	if an == nil || an.Node != n {
		return nil, fmt.Errorf("%s: %w", s.c.Name(i), errDown)
	}
	return an, nil
}

// Sim returns the simulated cluster, for what only the simulator can do
// (drop rates, its network's counters and decisions).
func (s *SimCluster) Sim() *sim.Cluster { return s.c }

// watch records node i's membership changes in the History.
func (s *SimCluster) watch(i int) {
	n := s.c.Node(i)
	if n == nil {
		return
	}
	events, stop := n.Cluster().Subscribe(4096)
	s.mu.Lock()
	s.stops = append(s.stops, stop)
	s.mu.Unlock()
	name := n.Name()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for ev := range events {
			s.hist.add(Entry{Kind: KindMember, Node: name, Member: control.MemberEvent{
				Seq: ev.Seq, Type: string(ev.Type), Node: ev.Node,
				OldStatus: string(ev.OldStatus), NewStatus: string(ev.NewStatus),
				Incarnation: ev.Member.Incarnation, Restarted: ev.Restarted,
				Partition: string(ev.Partition.State), Mode: string(ev.Mode),
			}})
		}
	}()
}

func (s *SimCluster) cleanup() {
	failed := s.t.Failed()
	var report strings.Builder
	if failed {
		fmt.Fprintf(&report, "\n==== clustertest diagnostics (simulator) ====\n%s\n", s.c.Diagnostics())
		fmt.Fprintf(&report, "\n-- harness timeline (faults, undos, waits) --\n%s", s.hist.Timeline())
		fmt.Fprintf(&report, "\n-- fault life cycles --\n%s", s.hist.Summary())
		fmt.Fprintf(&report, "\n-- membership changes and signals --\n%s", s.hist.changes(300))
	}
	if failed {
		logs := map[string]string{}
		for i := range s.c.Size() {
			logs[s.c.Name(i)] = s.c.Logs(i)
		}
		if j, txt, err := writeReport(s.t.Name(), fmt.Sprintf("sim-%d", s.c.Seed()), BackendSim, s.hist, logs); err != nil {
			s.t.Logf("clustertest: failure report not written: %v", err)
		} else {
			s.t.Logf("clustertest: failure report: %s (and %s)", txt, j)
		}
	}
	s.c.Close()
	s.mu.Lock()
	stops := s.stops
	s.stops = nil
	s.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	s.wg.Wait()
	if failed {
		s.t.Log(report.String())
	} else if len(s.hist.Faults()) > 0 {
		s.t.Logf("clustertest: simulated cluster (seed %d) fault summary:\n%s", s.c.Seed(), s.hist.Summary())
	}
}

// ---- identity and views ----

func (s *SimCluster) T() testing.TB                    { return s.t }
func (s *SimCluster) Backend() string                  { return BackendSim }
func (s *SimCluster) Size() int                        { return s.c.Size() }
func (s *SimCluster) NodeName(i int) string            { return s.c.Name(i) }
func (s *SimCluster) Index(name string) int            { return s.c.Index(name) }
func (s *SimCluster) Profile() cluster.ProfileSettings { return s.prof }
func (s *SimCluster) History() *History                { return s.hist }

func (s *SimCluster) Running(i int) bool {
	st := s.c.State(i)
	return st == sim.Running || st == sim.Paused
}

func (s *SimCluster) Paused(i int) bool { return s.c.State(i) == sim.Paused }

func (s *SimCluster) Incarnation(i int) uint64 {
	if incs := s.c.Incarnations(i); len(incs) > 0 {
		return incs[len(incs)-1]
	}
	return 0
}

var errDown = errors.New("clustertest: node is down")

func (s *SimCluster) node(i int) (*node.Node, error) {
	n := s.c.Node(i)
	if n == nil {
		return nil, fmt.Errorf("%s: %w", s.c.Name(i), errDown)
	}
	return n, nil
}

func (s *SimCluster) mustNode(i int) *node.Node {
	s.t.Helper()
	n, err := s.node(i)
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

func (s *SimCluster) Members(i int) ([]control.Member, error) {
	n, err := s.node(i)
	if err != nil {
		return nil, err
	}
	var out []control.Member
	for _, m := range n.Cluster().Members() {
		out = append(out, control.Member{Name: m.Name, Status: string(m.Status), Incarnation: m.Incarnation})
	}
	return out, nil
}

func (s *SimCluster) Topology(i int) (cluster.Topology, error) {
	n, err := s.node(i)
	if err != nil {
		return cluster.Topology{}, err
	}
	return n.Cluster().Topology(), nil
}

// ---- faults ----

func (s *SimCluster) Partition(groups ...[]int) {
	s.t.Helper()
	if err := validatePartition(s.c.Size(), groups); err != nil {
		s.t.Fatalf("clustertest: %v", err)
	}
	s.c.Partition(groups...)
	var all []int
	for _, g := range groups {
		all = append(all, g...)
	}
	s.hist.inject("partition", fmt.Sprintf("partition %v", groups), all...)
}

func (s *SimCluster) Blackhole(a, b int, dir string) {
	s.t.Helper()
	if err := checkDir(dir); err != nil {
		s.t.Fatalf("clustertest: blackhole: %v", err)
	}
	s.c.Blackhole(a, b, dir)
	s.hist.inject("blackhole", fmt.Sprintf("blackhole %s -> %s (%s)", s.c.Name(a), s.c.Name(b), dir), a, b)
}

func (s *SimCluster) Delay(a, b int, d, jitter time.Duration) {
	s.c.Delay(a, b, d, jitter)
	what := fmt.Sprintf("delay %s -> %s", s.c.Name(a), s.c.Name(b))
	s.mu.Lock()
	if s.delays == nil {
		s.delays = map[[2]int]time.Duration{}
	}
	if old := s.delays[[2]int{a, b}]; old > 0 {
		s.hist.delayRemoved(old) // replaced or removed: its traffic is in flight
	}
	s.delays[[2]int{a, b}] = d + jitter
	s.mu.Unlock()
	if d == 0 && jitter == 0 {
		s.hist.undo("remove "+what, func(f *Fault) bool { return f.Kind == "delay" && strings.HasPrefix(f.What, what+" ") })
		return
	}
	s.hist.inject("delay", fmt.Sprintf("%s by %s ± %s", what, d, jitter), a, b)
}

func (s *SimCluster) Heal() {
	s.c.Heal()
	s.mu.Lock()
	for _, d := range s.delays {
		s.hist.delayRemoved(d)
	}
	s.delays = nil
	s.mu.Unlock()
	s.hist.undo("heal", func(f *Fault) bool {
		return f.Kind == "partition" || f.Kind == "blackhole" || f.Kind == "delay"
	})
}

func (s *SimCluster) Kill(i int) {
	s.c.Kill(i)
	s.hist.inject("kill", fmt.Sprintf("kill %s (crash)", s.c.Name(i)), i)
}

func (s *SimCluster) Leave(i int) {
	s.t.Helper()
	if err := s.c.Stop(i); err != nil {
		s.t.Fatalf("clustertest: %v", err)
	}
	s.hist.inject("leave", fmt.Sprintf("stop %s (graceful leave)", s.c.Name(i)), i)
}

func (s *SimCluster) Pause(i int) {
	s.c.Pause(i)
	s.hist.inject("pause", fmt.Sprintf("pause %s", s.c.Name(i)), i)
}

func (s *SimCluster) Resume(i int) {
	if !s.Paused(i) {
		return
	}
	s.c.Resume(i)
	s.hist.undo(fmt.Sprintf("resume %s", s.c.Name(i)), func(f *Fault) bool { return f.Kind == "pause" && f.Nodes[0] == i })
}

func (s *SimCluster) Restart(i int) {
	s.t.Helper()
	if _, err := s.c.Restart(i); err != nil {
		s.t.Fatalf("clustertest: %v", err)
	}
	s.watch(i)
	s.hist.undo(fmt.Sprintf("restart %s (incarnation %d)", s.c.Name(i), s.Incarnation(i)), func(f *Fault) bool {
		return (f.Kind == "kill" || f.Kind == "leave") && f.Nodes[0] == i
	})
}

// AddNode starts one more simulated node (sim.Cluster.Add) running the
// App's services, and records its membership changes; see Harness.
func (s *SimCluster) AddNode(name string) int {
	s.t.Helper()
	i, err := s.TryAddNode(name)
	if err != nil {
		s.t.Fatalf("clustertest: %v", err)
	}
	return i
}

// TryAddNode is AddNode that returns the error (a name in use, a node
// that did not start).
func (s *SimCluster) TryAddNode(name string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(sim.StartTimeout))
	defer cancel()
	i, err := s.c.Add(ctx, name)
	if err != nil {
		return -1, err
	}
	s.watch(i)
	s.hist.Note("added node %s as node %d (incarnation %d)", s.c.Name(i), i, s.Incarnation(i))
	return i, nil
}

// ---- processes: the same behaviours as the node's control commands ----

type simEcho struct{ process.Server }

func (simEcho) HandleCall(_ *process.Proc, _ process.From, req any) (any, error) { return req, nil }

func (s *SimCluster) signal(node string, kind EntryKind, sig control.Signal) {
	s.hist.add(Entry{Kind: kind, Node: node, Signal: sig})
}

func (s *SimCluster) Spawn(i int, kind string) string {
	s.t.Helper()
	n := s.mustNode(i)
	rt := n.Runtime()
	var pid process.PID
	var err error
	switch kind {
	case "echo", "":
		pid, err = rt.Spawn(simEcho{})
	case "sink":
		pid, err = rt.SpawnFunc(func(p *process.Proc) error {
			for {
				m, err := p.Receive(context.Background())
				if err != nil {
					return err
				}
				s.signal(n.Name(), KindMessage, control.Signal{Watcher: p.Self().String(), Message: m})
			}
		})
	default:
		s.t.Fatalf("clustertest: spawn %q: the simulator backend has echo and sink", kind)
	}
	if err != nil {
		s.t.Fatalf("clustertest: spawn on %s: %v", n.Name(), err)
	}
	return pid.String()
}

func (s *SimCluster) watcher(i int, pid string, link bool) string {
	s.t.Helper()
	n := s.mustNode(i)
	target, err := process.ParsePID(pid)
	if err != nil {
		s.t.Fatal(err)
	}
	w, err := control.Watch(n.Runtime(), target, link, func(kind string, sig control.Signal) {
		s.signal(n.Name(), EntryKind(kind), sig) // "down" and "exit" are KindDown and KindExit
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return w.String()
}

func (s *SimCluster) Monitor(i int, pid string) string { s.t.Helper(); return s.watcher(i, pid, false) }
func (s *SimCluster) Link(i int, pid string) string    { s.t.Helper(); return s.watcher(i, pid, true) }

func (s *SimCluster) Send(i int, to, msg string) {
	s.t.Helper()
	pid, err := process.ParsePID(to)
	if err != nil {
		s.t.Fatal(err)
	}
	s.mustNode(i).Runtime().Send(pid, msg)
}

func (s *SimCluster) Sender(i int) string {
	s.t.Helper()
	pid, err := control.SpawnSender(s.mustNode(i).Runtime())
	if err != nil {
		s.t.Fatal(err)
	}
	return pid.String()
}

func (s *SimCluster) SendSeq(i int, sender, to, msg string, count int) int {
	s.t.Helper()
	from, err := process.ParsePID(sender)
	if err != nil {
		s.t.Fatal(err)
	}
	pid, err := process.ParsePID(to)
	if err != nil {
		s.t.Fatal(err)
	}
	n, err := control.SendBatch(s.mustNode(i).Runtime(), from, pid, msg, count, testutil.Scale(10*time.Second))
	if err != nil {
		s.t.Fatalf("clustertest: %v", err)
	}
	return n
}

func (s *SimCluster) Call(i int, to, msg string) (string, error) {
	n, err := s.node(i)
	if err != nil {
		return "", err
	}
	pid, err := process.ParsePID(to)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := n.Runtime().Call(ctx, pid, msg)
	if err != nil {
		return "", err
	}
	return fmt.Sprint(v), nil
}

// ---- waits ----

func (s *SimCluster) Eventually(within time.Duration, cond func() bool, msg string, args ...any) {
	s.t.Helper()
	poll(s, within, fmt.Sprintf(msg, args...), wrap(cond))
}

func (s *SimCluster) Consistently(d time.Duration, cond func() bool, msg string, args ...any) {
	s.t.Helper()
	consistently(s, d, fmt.Sprintf(msg, args...), wrap(cond))
}

func (s *SimCluster) WaitConverged(within time.Duration) { s.t.Helper(); waitConverged(s, within) }
func (s *SimCluster) WaitSees(observer, target int, status string, within time.Duration) {
	s.t.Helper()
	waitSees(s, observer, target, status, within)
}
func (s *SimCluster) WaitSettled(quiet, within time.Duration) {
	s.t.Helper()
	waitSettled(s, quiet, within)
}
func (s *SimCluster) WaitDead(i int, within time.Duration) { s.t.Helper(); waitDead(s, i, within) }
func (s *SimCluster) WaitPartitioned(within time.Duration, groups ...[]int) {
	s.t.Helper()
	waitPartitioned(s, within, groups...)
}
func (s *SimCluster) WaitSize(n int, within time.Duration) { s.t.Helper(); waitSize(s, n, within) }
func (s *SimCluster) WaitMode(i int, mode string, within time.Duration) {
	s.t.Helper()
	waitMode(s, i, mode, within)
}

var (
	_ Harness = (*Cluster)(nil)
	_ Harness = (*SimCluster)(nil)
)
