// Package clustertest starts clusters of real node processes on loopback
// inside `go test` — `arsenal node`, or the user's own binary built with
// arsenal.Main (Options.Build, Options.Binary) — injects faults between
// them, waits on conditions with deadlines, records what happened, and
// explains failures. Tests talk to the user's own kinds with the user's
// own message types (SpawnKind, SendTo, CallTo, CallName, Place…), and
// WaitServicesReady waits for the registry and the distributed
// supervisor.
//
// A binary is built once per test binary (see Main). Each
// cluster gets its own name and secret, so parallel tests never cross.
// Nodes bind port 0 and report their addresses over a control channel
// (their stdin and stdout), which is separate from the cluster network, so
// a partitioned node stays controllable. Children never outlive the test:
// each is in its own process group, has a parent-death signal, exits on
// stdin EOF, and is killed by t.Cleanup, which then checks that no child
// and no port was left behind.
//
// AddNode grows a running cluster by one node of the same binary (or, on
// the simulator, App) under a new name, joining the others: scale-out, or
// crashed nodes replaced under new names as a Kubernetes Deployment does;
// with Options.ExpectedSize = NoExpectedSize the nodes count only their
// live members, as such a cluster is run.
//
// Every fault has a life cycle (inject, in effect, undo, recovered) kept
// in the cluster's History next to every membership change the nodes
// report and every signal their watcher processes receive; scenarios check
// their invariants on it. The Harness interface is implemented by the
// real-process *Cluster and by the simulator's *SimCluster, so one test
// body runs on either (New, ARSENAL_CLUSTER=real|sim).
//
// When a test fails, the cleanup prints the membership matrix (who sees
// whom, with statuses), the timeline of faults and waits, the membership
// changes, each node's command line and each node's log with a node
// prefix, and writes a failure report file (see ReportDir). On success it
// logs only the fault summary (go test -v shows it).
// docs/TESTING.md is the user's guide.
package clustertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal"
	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/control"
	"github.com/arsenal-go/arsenal/internal/launch"
	"github.com/arsenal-go/arsenal/internal/testutil"
)

// builds are the binaries built in this test run, one per package.
var builds struct {
	mu  sync.Mutex
	m   map[string]*build
	dir string
}

type build struct {
	once sync.Once
	path string
	err  error
}

// Main runs the tests and removes the binaries they built. Call it from
// TestMain: os.Exit(clustertest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	builds.mu.Lock()
	if builds.dir != "" {
		_ = os.RemoveAll(builds.dir)
	}
	builds.mu.Unlock()
	return code
}

// Binary returns the path of the arsenal binary (`arsenal node`),
// building it on first use; ARSENAL_BINARY names a prebuilt one.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ARSENAL_BINARY"); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	return BuildBinary(t, filepath.Join(root, "cmd", "arsenal"))
}

// BuildBinary builds the main package pkg (a directory, relative to the
// test's working directory, which go test sets to the test's package
// directory, such as "./cmd/jobq" or "../cmd/jobq"; or an import path)
// once per test run, with the race detector unless ARSENAL_TEST_NORACE is
// set, and returns the binary's path. Options.Build calls it.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	builds.mu.Lock()
	if builds.m == nil {
		builds.m = map[string]*build{}
	}
	key := pkg
	if abs, err := filepath.Abs(pkg); err == nil && (strings.HasPrefix(pkg, ".") || filepath.IsAbs(pkg)) {
		key = abs
	}
	b := builds.m[key]
	if b == nil {
		b = &build{}
		builds.m[key] = b
	}
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "arsenal-clustertest-")
		if err != nil {
			builds.mu.Unlock()
			t.Fatal(err)
		}
		builds.dir = dir
	}
	dir := builds.dir
	builds.mu.Unlock()
	b.once.Do(func() {
		sub, err := os.MkdirTemp(dir, "bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(sub, filepath.Base(key))
		args := []string{"build", "-race", "-o", b.path, key}
		if os.Getenv("ARSENAL_TEST_NORACE") != "" {
			args = []string{"build", "-o", b.path, key}
		}
		cmd := exec.Command("go", args...)
		if filepath.IsAbs(key) {
			cmd.Dir = key // the package's own module, wherever it is
			cmd.Args[len(cmd.Args)-1] = "."
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("clustertest: go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// binary is the node binary of the cluster, and the arguments that go
// before its flags ("node" for the arsenal binary).
func (c *Cluster) binary() (string, []string) {
	c.t.Helper()
	switch {
	case c.opts.Binary != "":
		return c.opts.Binary, nil
	case c.opts.Build != "":
		return BuildBinary(c.t, c.opts.Build), nil
	}
	return Binary(c.t), []string{"node"}
}

// Options configure a cluster.
type Options struct {
	// Profile is the failure-detection profile (default "fast").
	Profile string
	// Args are extra flags for every node (real processes only).
	Args []string
	// ExpectedSize is passed as --expected-size (0: the cluster size
	// given to Start; NoExpectedSize: none, so the nodes count the live
	// members, as a cluster that grows with AddNode and loses crashed
	// nodes would run). Nodes added later get the same value.
	ExpectedSize int
	// NoWait skips waiting for full convergence after the start.
	NoWait bool
	// Order, if set, is the order in which the nodes start (a permutation
	// of 0..n-1): one after another, each joining every node started
	// before it. Without it node 0 starts alone and the others join it in
	// parallel. Real processes only; the simulator starts in index order.
	Order []int
	// Backend is the backend New starts: "real" or "sim" (default: the
	// ARSENAL_CLUSTER environment variable, else "real").
	Backend string
	// Seed seeds the simulator's network (0: random; logged). The real
	// backend has no randomness of its own.
	Seed uint64
	// Binary is a prebuilt node binary to run: a program whose main calls
	// arsenal.Main. Build is the main package of one, built once per test
	// run (see BuildBinary). Neither: arsenal's own 'arsenal node'.
	Binary string
	Build  string
	// App is the application the nodes run on the simulator backend,
	// which runs it in this process (the real backend runs Binary or
	// Build, which must run the same App). Nil: an App without kinds.
	App *arsenal.App
	// Attach names a running 'arsenal cluster' to use instead of starting
	// nodes (real backend; default: ARSENAL_ATTACH). See attach.go.
	Attach string
}

// NoExpectedSize, as Options.ExpectedSize, starts the nodes with no
// expected size (--expected-size 0): their split-brain decisions count
// the live members only, whatever size the cluster started with.
const NoExpectedSize = -1

// expectedSize is the --expected-size of every node of the cluster.
func (c *Cluster) expectedSize() string { return fmt.Sprint(max(c.opts.ExpectedSize, 0)) }

// Cluster is a set of real node processes. It implements Harness.
type Cluster struct {
	t       testing.TB
	Name    string
	secret  string
	token   string // operator token of the operations API
	tokens  string // the nodes' tokens file
	opts    Options
	started time.Time
	hist    *History
	profile cluster.ProfileSettings
	// attached: the nodes belong to a running 'arsenal cluster'
	attached bool

	addMu   sync.Mutex // serialises AddNode
	mu      sync.Mutex
	nodes   []*Node
	foreign []*Node
	rules   []rule // network faults in force, re-applied on restarts

	collectors sync.WaitGroup // event readers, one per node process
}

// rule is one network fault the harness set on node from about node to.
type rule struct {
	from, to      int
	action        string // block or delay
	dir           string
	delay, jitter time.Duration
}

// Node is one node process.
type Node struct {
	c     *Cluster
	Index int
	Name  string
	Args  []string
	bin   string // the binary's base name, for the diagnostics
	logs  *logBuffer
	mu    sync.Mutex
	child *launch.Child
	ready control.Ready
	// paused: SIGSTOPped; it cannot answer commands until Resume.
	paused bool
	// clearOnResume: Heal ran while the node was paused.
	clearOnResume bool
	// events carries the events of every incarnation but "member" (down,
	// exit and message are also in the History); full means dropped, as
	// in launch.
	events chan control.Line
	// every incarnation of this node, for the leak check
	children []*launch.Child
	// attached: a node of a running 'arsenal cluster' (Options.Attach),
	// whose log is logFile from logOffset on
	attached  bool
	logFile   string
	logOffset int64
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// Start starts n nodes and waits until every node sees all n alive.
func Start(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if name := attachName(opts); name != "" {
		return attachCluster(t, n, opts, name)
	}
	if opts.Profile == "" {
		opts.Profile = "fast"
	}
	if opts.ExpectedSize == 0 {
		opts.ExpectedSize = n
	}
	prof, err := cluster.ParseProfile(opts.Profile)
	if err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	if opts.Order != nil {
		if err := checkOrder(n, opts.Order); err != nil {
			t.Fatalf("clustertest: %v", err)
		}
	}
	if opts.App != nil {
		if opts.Build == "" && opts.Binary == "" {
			t.Fatalf("clustertest: Options.App %q is set, but neither Options.Build nor Options.Binary: the real backend would run 'arsenal node', which does not run your App", opts.App.Name)
		}
		if err := opts.App.Register(); err != nil {
			t.Fatalf("clustertest: Options.App: %v", err)
		}
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	now := time.Now()
	c := &Cluster{t: t, Name: "t-" + hex.EncodeToString(b[:4]), secret: hex.EncodeToString(b[:]) + "-clustertest",
		opts: opts, started: now, hist: newHistory(now), profile: prof.Settings()}
	var tb [16]byte
	_, _ = rand.Read(tb[:])
	c.token = hex.EncodeToString(tb[:])
	c.tokens = filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(c.tokens, []byte(c.token+" operator clustertest\n"+c.token+"-viewer viewer clustertest-viewer\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cleanup)
	for i := 0; i < n; i++ {
		c.nodes = append(c.nodes, &Node{c: c, Index: i, Name: fmt.Sprintf("n%d@127.0.0.1", i+1), logs: &logBuffer{},
			events: make(chan control.Line, 4096)})
	}
	errs := make([]error, n)
	if opts.Order != nil {
		for _, i := range opts.Order {
			if errs[i] = c.nodes[i].start(c.nodes[i].seeds()); errs[i] != nil {
				break
			}
		}
	} else {
		// The first node starts alone; the others join it in parallel.
		var wg sync.WaitGroup
		errs[0] = c.nodes[0].start("")
		if errs[0] == nil {
			for i := 1; i < n; i++ {
				wg.Add(1)
				go func() { defer wg.Done(); errs[i] = c.nodes[i].start(c.nodes[0].ready.NodeAddr) }()
			}
			wg.Wait()
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("clustertest: starting %s: %v", c.nodes[i].Name, err)
		}
	}
	c.hist.mu.Lock()
	c.hist.ready = time.Since(c.started)
	c.hist.mu.Unlock()
	if opts.Order != nil {
		c.record("started %d nodes in the order %v", n, opts.Order)
	} else {
		c.record("started %d nodes", n)
	}
	if !opts.NoWait {
		c.WaitConverged(30 * time.Second)
		c.hist.mu.Lock()
		c.hist.formed = time.Since(c.started)
		c.hist.mu.Unlock()
		c.record("formed: every node sees %d alive, %s after Start", n, time.Since(c.started).Round(time.Millisecond))
	}
	return c
}

func checkOrder(n int, order []int) error {
	seen := map[int]bool{}
	for _, i := range order {
		if i < 0 || i >= n || seen[i] {
			return fmt.Errorf("start order %v: want a permutation of 0..%d", order, n-1)
		}
		seen[i] = true
	}
	if len(order) != n {
		return fmt.Errorf("start order %v: want a permutation of 0..%d", order, n-1)
	}
	return nil
}

// seeds are the node addresses of every other running node.
func (n *Node) seeds() string {
	var s []string
	for _, o := range n.c.Nodes() {
		if o != n && o.Alive() {
			s = append(s, o.Ready().NodeAddr)
		}
	}
	return strings.Join(s, ",")
}

func (n *Node) start(seeds string) error {
	c := n.c
	bin, pre := c.binary()
	args := append(pre, "--control", "stdio", "--name", n.Name, "--cluster", c.Name,
		"--node-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--profile", c.opts.Profile,
		"--expected-size", c.expectedSize(), "--log-level", "debug", "--tokens-file", c.tokens)
	if seeds != "" {
		args = append(args, "--seeds", seeds)
	}
	args = append(args, c.opts.Args...)
	ch, err := launch.Start(context.Background(), launch.Spec{
		Binary: bin, Args: args, Env: []string{"ARSENAL_SECRET=" + c.secret}, Stderr: n.logs,
		StartTimeout: testutil.Scale(30 * time.Second),
	})
	n.mu.Lock()
	n.bin = filepath.Base(bin)
	n.mu.Unlock()
	if err != nil {
		n.mu.Lock()
		n.Args = args
		n.mu.Unlock()
		return fmt.Errorf("%w%s", err, lastLines(n.Logs(), 20))
	}
	n.mu.Lock()
	n.Args = args
	n.child, n.ready, n.paused = ch, ch.Ready, false
	n.children = append(n.children, ch)
	n.mu.Unlock()
	c.collectors.Add(1)
	go n.collect(ch)
	// Membership changes go to the History; a binary without the command
	// (ARSENAL_BINARY pointing at an old build) only loses them.
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(15*time.Second))
	defer cancel()
	if err := ch.Call(ctx, "watch_members", nil, nil); err != nil {
		c.record("%s: no membership events: %v", n.Name, err)
	}
	return nil
}

// collect reads one node process's events until it exits: member events
// into the History; the others onto Events, and signals also into the
// History.
func (n *Node) collect(ch *launch.Child) {
	defer n.c.collectors.Done()
	handle := func(l control.Line) {
		e := Entry{Node: n.Name}
		if l.Event == "member" {
			e.Kind = KindMember
			if json.Unmarshal(l.Data, &e.Member) == nil {
				n.c.hist.add(e)
			}
			return
		}
		select { // every other event kind, as launch delivered it
		case n.events <- l:
		default:
		}
		switch l.Event {
		case "down", "exit", "message":
			e.Kind = EntryKind(l.Event)
			if json.Unmarshal(l.Data, &e.Signal) == nil {
				n.c.hist.add(e)
			}
		}
	}
	for {
		select {
		case l := <-ch.Events():
			handle(l)
		case <-ch.Exited():
			for {
				select {
				case l := <-ch.Events():
					handle(l)
				default:
					return
				}
			}
		}
	}
}

// Nodes returns the cluster's nodes, by index (a copy of the list, which
// AddNode grows).
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Node(nil), c.nodes...)
}

// Node returns node i (0-based).
func (c *Cluster) Node(i int) *Node { return c.at(i) }

// at is node i (the list grows with AddNode, so it is read under the lock).
func (c *Cluster) at(i int) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

func (c *Cluster) record(format string, args ...any) { c.hist.Note(format, args...) }

// Ready returns what the node reported when it started (addresses,
// incarnation, OS pid).
func (n *Node) Ready() control.Ready {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ready
}

func (n *Node) current() *launch.Child {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.child
}

func (n *Node) isPaused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused
}

// ErrPaused is returned by commands to a paused node (it cannot answer
// until Resume).
var ErrPaused = errors.New("clustertest: node is paused (SIGSTOP)")

// Do runs a control command on the node and decodes its result into out.
func (n *Node) Do(cmd string, args, out any) error {
	if n.isPaused() {
		return fmt.Errorf("%s on %s: %w", cmd, n.Name, ErrPaused)
	}
	ch := n.current()
	if ch == nil {
		return fmt.Errorf("%s on %s: %w", cmd, n.Name, launch.ErrExited)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(15*time.Second))
	defer cancel()
	return ch.Call(ctx, cmd, args, out)
}

// MustDo is Do that fails the test on error.
func (n *Node) MustDo(cmd string, args, out any) {
	n.c.t.Helper()
	if err := n.Do(cmd, args, out); err != nil {
		n.c.t.Fatalf("clustertest: %s on %s: %v", cmd, n.Name, err)
	}
}

// Events delivers the node's events (down, exit, message…; not the
// "member" events, which only go to the History), of every incarnation.
// Down, exit and message are also in the History, which is easier to
// check.
func (n *Node) Events() <-chan control.Line { return n.events }

// Logs returns what the node has logged so far (all incarnations).
func (n *Node) Logs() string {
	if n.logFile != "" {
		return readFrom(n.logFile, n.logOffset)
	}
	return n.logs.String()
}

// Members returns the membership as this node sees it.
func (n *Node) Members() ([]control.Member, error) {
	var m []control.Member
	err := n.Do("members", nil, &m)
	return m, err
}

// Alive reports whether the node's process is running (paused included).
func (n *Node) Alive() bool {
	ch := n.current()
	if ch == nil {
		return false // never started
	}
	select {
	case <-ch.Exited():
		return false
	default:
		return true
	}
}

// Status returns how node `of` looks from n ("" if unknown).
func (n *Node) Status(of *Node) string {
	ms, err := n.Members()
	if err != nil {
		return ""
	}
	for _, m := range ms {
		if m.Name == of.Name {
			return m.Status
		}
	}
	return ""
}

// ---- Harness: identity and views ----

// T returns the test.
func (c *Cluster) T() testing.TB { return c.t }

// Backend returns "real".
func (c *Cluster) Backend() string { return BackendReal }

// Size returns the number of nodes.
func (c *Cluster) Size() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.nodes) }

// NodeName returns node i's name.
func (c *Cluster) NodeName(i int) string { return c.at(i).Name }

// Index returns the index of the node named name, or -1.
func (c *Cluster) Index(name string) int {
	for i, n := range c.Nodes() {
		if n.Name == name {
			return i
		}
	}
	return -1
}

// Running reports whether node i's process is running (paused included).
func (c *Cluster) Running(i int) bool { return c.at(i).Alive() }

// Paused reports whether node i is paused.
func (c *Cluster) Paused(i int) bool { return c.at(i).isPaused() }

// Incarnation returns node i's current incarnation.
func (c *Cluster) Incarnation(i int) uint64 { return c.at(i).Ready().Incarnation }

// Profile returns the settings of the cluster's failure-detection profile.
func (c *Cluster) Profile() cluster.ProfileSettings { return c.profile }

// History returns what happened so far.
func (c *Cluster) History() *History { return c.hist }

// Members returns the membership as node i sees it.
func (c *Cluster) Members(i int) ([]control.Member, error) { return c.at(i).Members() }

// Topology returns node i's view: counts, partition status and mode.
func (c *Cluster) Topology(i int) (cluster.Topology, error) {
	var top cluster.Topology
	err := c.at(i).Do("topology", nil, &top)
	return top, err
}

// ---- Harness: processes ----

// Spawn starts an "echo", "sink" or "supervisor" process on node i.
func (c *Cluster) Spawn(i int, kind string) string {
	c.t.Helper()
	var pid string
	c.at(i).MustDo("spawn", map[string]any{"kind": kind}, &pid)
	return pid
}

// Monitor starts a watcher on node i that monitors pid.
func (c *Cluster) Monitor(i int, pid string) string {
	c.t.Helper()
	var w string
	c.at(i).MustDo("monitor", map[string]any{"pid": pid}, &w)
	return w
}

// Link starts a watcher on node i that links to pid (trapping exits).
func (c *Cluster) Link(i int, pid string) string {
	c.t.Helper()
	var w string
	c.at(i).MustDo("link", map[string]any{"pid": pid}, &w)
	return w
}

// Send sends msg to pid from a fresh process on node i.
func (c *Cluster) Send(i int, to, msg string) {
	c.t.Helper()
	c.at(i).MustDo("send", map[string]any{"to": to, "msg": msg}, nil)
}

// Sender starts a long-lived sender process on node i.
func (c *Cluster) Sender(i int) string {
	c.t.Helper()
	var pid string
	c.at(i).MustDo("sender", nil, &pid)
	return pid
}

// SendSeq makes the sender on node i send the next count numbered
// messages to `to`; it returns the first number of the batch.
func (c *Cluster) SendSeq(i int, sender, to, msg string, count int) int {
	c.t.Helper()
	var first int
	c.at(i).MustDo("send_seq", control.SendSeq{Sender: sender, To: to, Msg: msg, Count: count}, &first)
	return first
}

// Call calls the echo server `to` from node i.
func (c *Cluster) Call(i int, to, msg string) (string, error) {
	var got string
	err := c.at(i).Do("call", map[string]any{"to": to, "msg": msg}, &got)
	return got, err
}

// ---- Harness: waits ----

// Eventually waits until cond holds, failing the test with msg after the
// (scaled) deadline.
func (c *Cluster) Eventually(within time.Duration, cond func() bool, msg string, args ...any) {
	c.t.Helper()
	poll(c, within, fmt.Sprintf(msg, args...), wrap(cond))
}

// Consistently checks that cond holds for d (not scaled), failing the
// test at the first false.
func (c *Cluster) Consistently(d time.Duration, cond func() bool, msg string, args ...any) {
	c.t.Helper()
	consistently(c, d, fmt.Sprintf(msg, args...), wrap(cond))
}

// WaitConverged waits until every running, unpaused node sees exactly
// those nodes, all alive.
func (c *Cluster) WaitConverged(within time.Duration) {
	c.t.Helper()
	waitConverged(c, within)
}

// WaitSettled waits until the cluster has converged and no membership
// change has been reported for quiet.
func (c *Cluster) WaitSettled(quiet, within time.Duration) {
	c.t.Helper()
	waitSettled(c, quiet, within)
}

// WaitStatus waits until observer sees target with the given status.
func (c *Cluster) WaitStatus(observer, target *Node, status string, within time.Duration) {
	c.t.Helper()
	waitSees(c, observer.Index, target.Index, status, within)
}

// WaitSees waits until node observer sees node target with status.
func (c *Cluster) WaitSees(observer, target int, status string, within time.Duration) {
	c.t.Helper()
	waitSees(c, observer, target, status, within)
}

// WaitDead waits until every other running, unpaused node sees i dead.
func (c *Cluster) WaitDead(i int, within time.Duration) {
	c.t.Helper()
	waitDead(c, i, within)
}

// WaitPartitioned waits until each group sees the others dead.
func (c *Cluster) WaitPartitioned(within time.Duration, groups ...[]int) {
	c.t.Helper()
	waitPartitioned(c, within, groups...)
}

// WaitSize waits until every running, unpaused node sees n alive.
func (c *Cluster) WaitSize(n int, within time.Duration) {
	c.t.Helper()
	waitSize(c, n, within)
}

// WaitMode waits until node i reports mode.
func (c *Cluster) WaitMode(i int, mode string, within time.Duration) {
	c.t.Helper()
	waitMode(c, i, mode, within)
}

// ---- faults ----

func (n *Node) fault(f control.Fault) error { return n.Do("fault", f, nil) }

// apply sets one rule on its node, naming the peer by name and by its
// current address (either matches).
func (c *Cluster) apply(r rule) error {
	a, b := c.at(r.from), c.at(r.to)
	for _, peer := range []string{b.Name, b.Ready().NodeAddr} {
		f := control.Fault{Action: r.action, Peer: peer, Dir: r.dir}
		if r.action == "delay" {
			f.Delay, f.Jitter = r.delay.String(), r.jitter.String()
		}
		if err := a.fault(f); err != nil {
			return fmt.Errorf("%s on %s: %w", r.action, a.Name, err)
		}
	}
	return nil
}

// add applies a rule and keeps it. A node that is down or paused gets it
// when it restarts or resumes.
func (c *Cluster) add(r rule) {
	c.t.Helper()
	if from := c.at(r.from); from.Alive() && !from.isPaused() {
		if err := c.apply(r); err != nil {
			c.t.Fatalf("clustertest: %v", err)
		}
	}
	c.mu.Lock()
	c.rules = append(c.rules, r)
	c.mu.Unlock()
}

// Partition cuts the cluster into groups of node indexes: no traffic
// crosses between groups, both ways, gossip and node links alike.
func (c *Cluster) Partition(groups ...[]int) {
	c.t.Helper()
	if err := validatePartition(c.Size(), groups); err != nil {
		c.t.Fatalf("clustertest: %v", err)
	}
	var all []int
	for _, g := range groups {
		all = append(all, g...)
	}
	c.hist.inject("partition", fmt.Sprintf("partition %v", groups), all...)
	for gi, g := range groups {
		for gj, h := range groups {
			if gi == gj {
				continue
			}
			for _, i := range g {
				for _, j := range h {
					c.add(rule{from: i, to: j, action: "block", dir: "both"})
				}
			}
		}
	}
}

// Blackhole drops traffic from a to b (dir "out"), from b to a ("in"), or
// both ways ("both"), gossip and node links alike.
func (c *Cluster) Blackhole(a, b int, dir string) {
	c.t.Helper()
	if err := checkDir(dir); err != nil {
		c.t.Fatalf("clustertest: blackhole: %v", err)
	}
	c.hist.inject("blackhole", fmt.Sprintf("blackhole %s -> %s (%s)", c.at(a).Name, c.at(b).Name, dir), a, b)
	c.add(rule{from: a, to: b, action: "block", dir: dir})
}

// Delay delays what a sends to b by d plus up to jitter (FIFO kept);
// Delay(a, b, 0, 0) removes it. Call it twice for both directions.
func (c *Cluster) Delay(a, b int, d, jitter time.Duration) {
	c.t.Helper()
	if d == 0 && jitter == 0 {
		if c.at(a).Alive() { // a node that is down lost its rules
			if err := c.apply(rule{from: a, to: b, action: "delay"}); err != nil {
				c.t.Fatalf("clustertest: %v", err)
			}
		}
		c.mu.Lock()
		kept := c.rules[:0]
		for _, r := range c.rules {
			if r.action == "delay" && r.from == a && r.to == b {
				c.hist.delayRemoved(r.delay + r.jitter)
			} else {
				kept = append(kept, r)
			}
		}
		c.rules = kept
		c.mu.Unlock()
		what := fmt.Sprintf("delay %s -> %s", c.at(a).Name, c.at(b).Name)
		c.hist.undo("remove "+what, func(f *Fault) bool { return f.Kind == "delay" && strings.HasPrefix(f.What, what+" ") })
		return
	}
	c.hist.inject("delay", fmt.Sprintf("delay %s -> %s by %s ± %s", c.at(a).Name, c.at(b).Name, d, jitter), a, b)
	c.mu.Lock()
	kept := c.rules[:0]
	for _, r := range c.rules { // a new delay replaces the old one
		if r.action == "delay" && r.from == a && r.to == b {
			c.hist.delayRemoved(r.delay + r.jitter)
		} else {
			kept = append(kept, r)
		}
	}
	c.rules = kept
	c.mu.Unlock()
	c.add(rule{from: a, to: b, action: "delay", delay: d, jitter: jitter})
}

// Heal removes every network fault on every running node (a paused node
// is cleared when it resumes).
func (c *Cluster) Heal() {
	c.t.Helper()
	for _, n := range c.Nodes() {
		if !n.Alive() {
			continue
		}
		if n.isPaused() {
			n.mu.Lock()
			n.clearOnResume = true
			n.mu.Unlock()
			continue
		}
		if err := n.fault(control.Fault{Action: "clear_all"}); err != nil {
			c.t.Fatalf("clustertest: heal on %s: %v", n.Name, err)
		}
	}
	c.mu.Lock()
	for _, r := range c.rules {
		if r.action == "delay" {
			c.hist.delayRemoved(r.delay + r.jitter)
		}
	}
	c.rules = nil
	c.mu.Unlock()
	c.hist.undo("heal", func(f *Fault) bool {
		return f.Kind == "partition" || f.Kind == "blackhole" || f.Kind == "delay"
	})
}

// Kill sends SIGKILL to node i and waits for it to exit.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	c.mine(i, "kill")
	c.hist.inject("kill", fmt.Sprintf("kill -9 %s", c.at(i).Name), i)
	c.at(i).current().Kill()
}

// Stop stops node i gracefully (SIGTERM: it leaves the cluster).
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	c.mine(i, "stop")
	c.Resume(i)
	c.hist.inject("leave", fmt.Sprintf("stop %s (graceful leave)", c.at(i).Name), i)
	if err := c.at(i).current().Stop(testutil.Scale(20 * time.Second)); err != nil {
		c.t.Fatalf("clustertest: stop %s: %v", c.at(i).Name, err)
	}
}

// Leave is Stop: node i leaves the cluster gracefully and exits.
func (c *Cluster) Leave(i int) {
	c.t.Helper()
	c.Stop(i)
}

// Pause stops node i with SIGSTOP; Resume continues it. While paused it
// cannot answer commands (Do returns ErrPaused) and the waits skip it.
func (c *Cluster) Pause(i int) {
	c.t.Helper()
	c.mine(i, "pause")
	n := c.at(i)
	c.hist.inject("pause", fmt.Sprintf("pause %s (SIGSTOP)", n.Name), i)
	n.mu.Lock()
	n.paused = true
	n.mu.Unlock()
	if err := n.current().Signal(syscall.SIGSTOP); err != nil {
		c.t.Fatalf("clustertest: pause %s: %v", n.Name, err)
	}
}

// Resume continues a paused node (no-op if it is not paused).
func (c *Cluster) Resume(i int) {
	c.t.Helper()
	n := c.at(i)
	n.mu.Lock()
	was, clearFaults := n.paused, n.clearOnResume
	n.paused, n.clearOnResume = false, false
	n.mu.Unlock()
	if !was {
		return
	}
	_ = n.current().Signal(syscall.SIGCONT)
	if clearFaults {
		if err := n.fault(control.Fault{Action: "clear_all"}); err != nil {
			c.t.Fatalf("clustertest: heal on %s after resume: %v", n.Name, err)
		}
	}
	c.reapply(i, func(r rule) bool { return r.from == i })
	c.hist.undo(fmt.Sprintf("resume %s (SIGCONT)", n.Name), func(f *Fault) bool {
		return f.Kind == "pause" && f.Nodes[0] == i
	})
}

// Restart starts node i again under the same name (it must have exited),
// with a new incarnation, joining the running nodes. The network faults
// in force that involve it are applied again (its own rules died with it;
// its peers' rules learn its new address).
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.mine(i, "restart")
	n := c.at(i)
	if n.Alive() {
		c.t.Fatalf("clustertest: restart %s: still running; Kill or Stop it first", n.Name)
	}
	if err := n.start(n.seeds()); err != nil {
		c.t.Fatalf("clustertest: restart %s: %v", n.Name, err)
	}
	c.reapply(i, func(r rule) bool { return r.from == i || r.to == i })
	c.hist.undo(fmt.Sprintf("restart %s (incarnation %d)", n.Name, n.Ready().Incarnation), func(f *Fault) bool {
		return (f.Kind == "kill" || f.Kind == "leave") && f.Nodes[0] == i
	})
}

// AddNode starts one more node of the cluster's binary, under name (""
// picks the next free "n<k>@127.0.0.1"), with the cluster's profile,
// flags (Options.Args), expected size and secret, joining every running
// node; it returns the new node's index (Size() before the call). From
// then on it is a node like the others: faults, waits, History,
// diagnostics and the leak check cover it, and it dies with the test. It
// does not wait for convergence (WaitConverged, or WaitSees from every
// node). A start that fails fails the test with the node's last log
// lines (TryAddNode returns the error instead).
func (c *Cluster) AddNode(name string) int {
	c.t.Helper()
	i, err := c.TryAddNode(name)
	if err != nil {
		c.t.Fatalf("clustertest: %v", err)
	}
	return i
}

// TryAddNode is AddNode that returns the error: a name in use (by any
// node this cluster has had), an attached cluster (the harness starts
// nodes only in its own), no running node to join, or a node that did
// not start (with its last log lines). On error the cluster is as before;
// a process that did start and failed is cleaned up with the cluster and
// its log is in the diagnostics.
func (c *Cluster) TryAddNode(name string) (int, error) {
	c.t.Helper()
	c.addMu.Lock() // one at a time: the index is taken when the node is up
	defer c.addMu.Unlock()
	if c.attached {
		return -1, fmt.Errorf("add node: the cluster %q is attached (Options.Attach): the harness starts nodes only in clusters it started", c.Name)
	}
	nodes := c.Nodes()
	taken := map[string]bool{}
	for _, o := range nodes {
		taken[o.Name] = true
	}
	if name == "" {
		for k := len(nodes) + 1; name == ""; k++ {
			if n := fmt.Sprintf("n%d@127.0.0.1", k); !taken[n] {
				name = n
			}
		}
	} else if taken[name] {
		return -1, fmt.Errorf("add node %q: the name is node %d's; a new node needs a new name (Restart starts a node again under its own)", name, c.Index(name))
	}
	n := &Node{c: c, Index: len(nodes), Name: name, logs: &logBuffer{}, events: make(chan control.Line, 4096)}
	seeds := n.seeds()
	if seeds == "" {
		return -1, fmt.Errorf("add node %s: no node of the cluster is running to join", name)
	}
	if err := n.start(seeds); err != nil {
		n.Index = -1
		c.mu.Lock()
		c.foreign = append(c.foreign, n) // its log goes to the diagnostics
		c.mu.Unlock()
		c.record("add node %s: did not start: %v", name, err)
		return -1, fmt.Errorf("add node %s: %w", name, err)
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	c.record("added node %s as node %d (incarnation %d), joining %s", name, n.Index, n.Ready().Incarnation, seeds)
	return n.Index, nil
}

// reapply applies again the rules in force that match, on the nodes that
// can take them, after node i restarted or resumed.
func (c *Cluster) reapply(i int, match func(rule) bool) {
	c.t.Helper()
	c.mu.Lock()
	rules := append([]rule(nil), c.rules...)
	c.mu.Unlock()
	for _, r := range rules {
		if match(r) && c.at(r.from).Alive() && !c.at(r.from).isPaused() {
			if err := c.apply(r); err != nil {
				c.t.Fatalf("clustertest: %s: re-applying faults: %v", c.at(i).Name, err)
			}
		}
	}
}

// ---- cleanup and diagnostics ----

func (c *Cluster) cleanup() {
	failed := c.t.Failed()
	var report strings.Builder
	if failed {
		c.diagnose(&report)
	}
	var all []*launch.Child
	c.mu.Lock()
	everyone := append(append([]*Node(nil), c.nodes...), c.foreign...)
	c.mu.Unlock()
	for _, n := range everyone {
		n.mu.Lock()
		all = append(all, n.children...)
		n.mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, ch := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = ch.Signal(syscall.SIGCONT)
			ch.Kill()
		}()
	}
	wg.Wait()
	c.detach()
	c.collectors.Wait()
	// Nothing may be left behind: every child has exited (Kill waited)
	// and every port it bound is free again.
	for _, ch := range all {
		if err := syscall.Kill(ch.PID(), 0); err == nil {
			c.t.Errorf("clustertest: node process %d still exists after cleanup", ch.PID())
		}
		for _, addr := range []string{ch.Ready.NodeAddr, ch.Ready.HTTPAddr} {
			if addr == "" {
				continue
			}
			if ln, err := net.Listen("tcp", addr); err != nil {
				c.t.Errorf("clustertest: port %s still in use after cleanup: %v", addr, err)
			} else {
				ln.Close()
			}
		}
	}
	// The nodes run with the race detector (unless ARSENAL_TEST_NORACE),
	// which only prints: a race in a child would otherwise go unseen.
	for _, n := range everyone {
		for _, race := range raceReports(n.Logs()) {
			if known := knownRace(race); known != "" && os.Getenv("ARSENAL_TEST_KNOWN_BUGS") == "" {
				c.t.Logf("clustertest: node %s hit a known data race (%s; docs/TESTING.md); ARSENAL_TEST_KNOWN_BUGS=1 fails on it", n.Name, known)
				continue
			}
			c.t.Errorf("clustertest: the race detector reported a data race in node %s:\n%s", n.Name, race)
		}
	}
	if c.t.Failed() {
		logs := map[string]string{}
		for _, n := range everyone {
			logs[n.Name] += n.Logs()
		}
		if j, txt, err := writeReport(c.t.Name(), c.Name, BackendReal, c.hist, logs); err != nil {
			c.t.Logf("clustertest: failure report not written: %v", err)
		} else {
			c.t.Logf("clustertest: failure report: %s (and %s)", txt, j)
		}
	}
	if failed {
		c.t.Log(report.String())
	} else if len(c.hist.Faults()) > 0 {
		c.t.Logf("clustertest: cluster %s fault summary:\n%s", c.Name, c.hist.Summary())
	}
}

func (c *Cluster) diagnose(w *strings.Builder) {
	nodes := c.Nodes()
	fmt.Fprintf(w, "\n==== clustertest diagnostics for cluster %s ====\n", c.Name)
	fmt.Fprintf(w, "\n-- membership matrix (row sees column) --\n")
	fmt.Fprintf(w, "%-16s", "")
	for _, n := range nodes {
		fmt.Fprintf(w, "%-16s", n.Name)
	}
	fmt.Fprintln(w)
	for _, n := range nodes {
		fmt.Fprintf(w, "%-16s", n.Name)
		if !n.Alive() {
			fmt.Fprintf(w, "(not running)\n")
			continue
		}
		if n.isPaused() {
			fmt.Fprintf(w, "(paused)\n")
			continue
		}
		ms, err := n.Members()
		st := map[string]string{}
		for _, m := range ms {
			st[m.Name] = m.Status
		}
		for _, o := range nodes {
			s := st[o.Name]
			if err != nil {
				s = "?"
			} else if s == "" {
				s = "-"
			}
			fmt.Fprintf(w, "%-16s", s)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\n-- timeline (faults, undos, waits) --\n%s", c.hist.Timeline())
	fmt.Fprintf(w, "\n-- fault life cycles --\n%s", c.hist.Summary())
	fmt.Fprintf(w, "\n-- membership changes and signals, as each node reported them --\n%s", c.hist.changes(300))
	c.mu.Lock()
	everyone := append(append([]*Node(nil), c.nodes...), c.foreign...)
	c.mu.Unlock()
	for _, n := range everyone {
		n.mu.Lock()
		args, bin := n.Args, n.bin
		n.mu.Unlock()
		fmt.Fprintf(w, "\n-- %s: %s %s --\n", n.Name, bin, strings.Join(args, " "))
		lines := strings.Split(strings.TrimRight(n.Logs(), "\n"), "\n")
		if len(lines) > 300 {
			fmt.Fprintf(w, "[%s] … %d earlier lines …\n", n.Name, len(lines)-300)
			lines = lines[len(lines)-300:]
		}
		for _, l := range lines {
			fmt.Fprintf(w, "[%s] %s\n", n.Name, l)
		}
	}
}

// raceReports returns the data race reports in a node's log, each cut to
// at most 80 lines.
func raceReports(logs string) []string {
	var out []string
	parts := strings.Split(logs, "WARNING: DATA RACE")
	for _, p := range parts[1:] {
		lines := strings.Split("WARNING: DATA RACE"+p, "\n")
		for k, l := range lines {
			if k > 0 && strings.HasPrefix(l, "==================") {
				lines = lines[:k+1]
				break
			}
		}
		if len(lines) > 80 {
			lines = lines[:80]
		}
		out = append(out, strings.Join(lines, "\n"))
	}
	return out
}

// knownRaces are data races in other packages that are reported and
// waiting for a fix (listed in docs/TESTING.md): a report that mentions
// the function is logged instead of failing the test, unless
// ARSENAL_TEST_KNOWN_BUGS is set. Remove an entry when its bug is fixed.
var knownRaces = []string{}

func knownRace(report string) string {
	for _, k := range knownRaces {
		if strings.Contains(report, k) {
			return k
		}
	}
	return ""
}

// lastLines is the end of a node's log, for an error message.
func lastLines(logs string, n int) string {
	logs = strings.TrimRight(logs, "\n")
	if logs == "" {
		return "; the node logged nothing"
	}
	lines := strings.Split(logs, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "; its last log lines:\n  " + strings.Join(lines, "\n  ")
}

// SortedNames returns the names of the given nodes, sorted.
func SortedNames(nodes ...*Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	sort.Strings(out)
	return out
}

// StartForeign starts one more node that tries to join this cluster with
// the given cluster name and secret (for tests of refusal). It is not part
// of Nodes, but is cleaned up with the cluster. Its events are not
// collected.
func (c *Cluster) StartForeign(name, clusterName, secret string) *Node {
	c.t.Helper()
	n := &Node{c: c, Index: -1, Name: name, logs: &logBuffer{}, events: make(chan control.Line, 16)}
	bin, pre := c.binary()
	args := append(pre, "--control", "stdio", "--name", name, "--cluster", clusterName,
		"--node-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--profile", c.opts.Profile,
		"--log-level", "debug", "--seeds", c.at(0).Ready().NodeAddr)
	n.Args = args
	ch, err := launch.Start(context.Background(), launch.Spec{
		Binary: bin, Args: args, Env: []string{"ARSENAL_SECRET=" + secret}, Stderr: n.logs,
		StartTimeout: testutil.Scale(30 * time.Second),
	})
	if err != nil {
		c.t.Fatalf("clustertest: start foreign node: %v", err)
	}
	n.child, n.ready = ch, ch.Ready
	n.children = []*launch.Child{ch}
	c.mu.Lock()
	c.foreign = append(c.foreign, n)
	c.mu.Unlock()
	c.record("started foreign node %s (cluster %s)", name, clusterName)
	return n
}

// StartDuplicate starts a second node under node i's name, in this
// cluster and with its secret, seeded with the other nodes (for the test
// that a name in use is refused). It returns the node and the start error
// (a refused node may exit before it is ready; its log says why). It is
// not part of Nodes, but is cleaned up with the cluster.
func (c *Cluster) StartDuplicate(i int) (*Node, error) {
	c.t.Helper()
	orig := c.at(i)
	n := &Node{c: c, Index: -1, Name: orig.Name, logs: &logBuffer{}, events: make(chan control.Line, 16)}
	bin, pre := c.binary()
	args := append(pre, "--control", "stdio", "--name", orig.Name, "--cluster", c.Name,
		"--node-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--profile", c.opts.Profile,
		"--expected-size", c.expectedSize(), "--log-level", "debug", "--seeds", orig.seeds())
	n.Args = args
	c.mu.Lock()
	c.foreign = append(c.foreign, n)
	c.mu.Unlock()
	c.record("started a duplicate of %s", orig.Name)
	ch, err := launch.Start(context.Background(), launch.Spec{
		Binary: bin, Args: args, Env: []string{"ARSENAL_SECRET=" + c.secret}, Stderr: n.logs,
		StartTimeout: testutil.Scale(30 * time.Second),
	})
	if err != nil {
		return n, err
	}
	n.mu.Lock()
	n.child, n.ready = ch, ch.Ready
	n.children = []*launch.Child{ch}
	n.mu.Unlock()
	return n, nil
}

// Token returns a bearer token with the operator role on every node;
// Token()+"-viewer" has the viewer role.
func (c *Cluster) Token() string { return c.token }

// URL returns the base URL of the node's HTTP server.
func (n *Node) URL() string { return "http://" + n.Ready().HTTPAddr }

// Secret returns the cluster's secret (tests of refusal start nodes with
// another one).
func (c *Cluster) Secret() string { return c.secret }
