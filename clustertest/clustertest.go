// Package clustertest starts clusters of real `arsenal node` processes on
// loopback inside `go test`, injects faults between them, waits on
// conditions with deadlines, and explains failures.
//
// The arsenal binary is built once per test binary (see Main). Each
// cluster gets its own name and secret, so parallel tests never cross.
// Nodes bind port 0 and report their addresses over a control channel
// (their stdin and stdout), which is separate from the cluster network, so
// a partitioned node stays controllable. Children never outlive the test:
// each is in its own process group, has a parent-death signal, exits on
// stdin EOF, and is killed by t.Cleanup, which then checks that no child
// and no port was left behind.
//
// When a test fails, the cleanup prints each node's log with a node
// prefix, the membership matrix (who sees whom, with statuses), the
// timeline of injected faults, and each node's command line.
package clustertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
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

	"github.com/arsenal-go/arsenal/internal/control"
	"github.com/arsenal-go/arsenal/internal/launch"
	"github.com/arsenal-go/arsenal/internal/testutil"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

// Main builds the arsenal binary, runs the tests and removes the binary.
// Call it from TestMain: os.Exit(clustertest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	return code
}

// Binary returns the path of the arsenal binary, building it on first use.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("ARSENAL_BINARY"); p != "" {
			binPath = p
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "arsenal-clustertest-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "arsenal")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(file))
		cmd := exec.Command("go", "build", "-race", "-o", binPath, "./cmd/arsenal")
		if os.Getenv("ARSENAL_TEST_NORACE") != "" {
			cmd = exec.Command("go", "build", "-o", binPath, "./cmd/arsenal")
		}
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/arsenal: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Options configure a cluster.
type Options struct {
	// Profile is the failure-detection profile (default "fast").
	Profile string
	// Args are extra flags for every node.
	Args []string
	// ExpectedSize is passed as --expected-size (0: the cluster size).
	ExpectedSize int
	// NoWait skips waiting for full convergence after the start.
	NoWait bool
}

// Cluster is a set of real node processes.
type Cluster struct {
	t       testing.TB
	Name    string
	secret  string
	token   string // operator token of the operations API
	tokens  string // the nodes' tokens file
	opts    Options
	started time.Time

	mu       sync.Mutex
	nodes    []*Node
	foreign  []*Node
	timeline []string
}

// Node is one node process.
type Node struct {
	c     *Cluster
	Index int
	Name  string
	Args  []string
	logs  *logBuffer
	mu    sync.Mutex
	child *launch.Child
	ready control.Ready
	// every incarnation of this node, for the leak check
	children []*launch.Child
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
	if opts.Profile == "" {
		opts.Profile = "fast"
	}
	if opts.ExpectedSize == 0 {
		opts.ExpectedSize = n
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	c := &Cluster{t: t, Name: "t-" + hex.EncodeToString(b[:4]), secret: hex.EncodeToString(b[:]) + "-clustertest", opts: opts, started: time.Now()}
	var tb [16]byte
	_, _ = rand.Read(tb[:])
	c.token = hex.EncodeToString(tb[:])
	c.tokens = filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(c.tokens, []byte(c.token+" operator clustertest\n"+c.token+"-viewer viewer clustertest-viewer\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cleanup)
	for i := 0; i < n; i++ {
		c.nodes = append(c.nodes, &Node{c: c, Index: i, Name: fmt.Sprintf("n%d@127.0.0.1", i+1), logs: &logBuffer{}})
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	// The first node starts alone; the others join it in parallel.
	errs[0] = c.nodes[0].start("")
	if errs[0] == nil {
		for i := 1; i < n; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = c.nodes[i].start(c.nodes[0].ready.NodeAddr) }()
		}
		wg.Wait()
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("clustertest: starting %s: %v", c.nodes[i].Name, err)
		}
	}
	c.record("started %d nodes", n)
	if !opts.NoWait {
		c.WaitConverged(30 * time.Second)
		c.record("converged: every node sees %d alive", n)
	}
	return c
}

func (n *Node) seeds() string {
	var s []string
	for _, o := range n.c.nodes {
		if o != n && o.ready.NodeAddr != "" {
			s = append(s, o.ready.NodeAddr)
		}
	}
	return strings.Join(s, ",")
}

func (n *Node) start(seeds string) error {
	c := n.c
	args := []string{"node", "--control", "stdio", "--name", n.Name, "--cluster", c.Name,
		"--node-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--profile", c.opts.Profile,
		"--expected-size", fmt.Sprint(c.opts.ExpectedSize), "--log-level", "debug", "--tokens-file", c.tokens}
	if seeds != "" {
		args = append(args, "--seeds", seeds)
	}
	args = append(args, c.opts.Args...)
	n.Args = args
	ch, err := launch.Start(context.Background(), launch.Spec{
		Binary: Binary(c.t), Args: args, Env: []string{"ARSENAL_SECRET=" + c.secret}, Stderr: n.logs,
		StartTimeout: testutil.Scale(30 * time.Second),
	})
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.child, n.ready = ch, ch.Ready
	n.children = append(n.children, ch)
	n.mu.Unlock()
	return nil
}

// Nodes returns the cluster's nodes.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Node returns node i (0-based).
func (c *Cluster) Node(i int) *Node { return c.nodes[i] }

func (c *Cluster) record(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timeline = append(c.timeline, fmt.Sprintf("%8.3fs  %s", time.Since(c.started).Seconds(), fmt.Sprintf(format, args...)))
}

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

// Do runs a control command on the node and decodes its result into out.
func (n *Node) Do(cmd string, args, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(15*time.Second))
	defer cancel()
	return n.current().Call(ctx, cmd, args, out)
}

// MustDo is Do that fails the test on error.
func (n *Node) MustDo(cmd string, args, out any) {
	n.c.t.Helper()
	if err := n.Do(cmd, args, out); err != nil {
		n.c.t.Fatalf("clustertest: %s on %s: %v", cmd, n.Name, err)
	}
}

// Events delivers the node's control events (down, exit, message).
func (n *Node) Events() <-chan control.Line { return n.current().Events() }

// Logs returns what the node has logged so far (all incarnations).
func (n *Node) Logs() string { return n.logs.String() }

// Members returns the membership as this node sees it.
func (n *Node) Members() ([]control.Member, error) {
	var m []control.Member
	err := n.Do("members", nil, &m)
	return m, err
}

// Alive reports whether the node's process is running.
func (n *Node) Alive() bool {
	select {
	case <-n.current().Exited():
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

// Eventually waits until cond holds, failing the test with msg after the
// (scaled) deadline.
func (c *Cluster) Eventually(within time.Duration, cond func() bool, msg string, args ...any) {
	c.t.Helper()
	testutil.Eventually(c.t, within, cond, msg, args...)
}

// WaitConverged waits until every running node sees exactly the running
// nodes, all alive.
func (c *Cluster) WaitConverged(within time.Duration) {
	c.t.Helper()
	c.Eventually(within, c.converged, "cluster did not converge")
}

func (c *Cluster) converged() bool {
	var running []*Node
	for _, n := range c.nodes {
		if n.Alive() {
			running = append(running, n)
		}
	}
	for _, n := range running {
		ms, err := n.Members()
		if err != nil {
			return false
		}
		alive := map[string]bool{}
		for _, m := range ms {
			if m.Status == "alive" {
				alive[m.Name] = true
			}
		}
		if len(alive) != len(running) {
			return false
		}
		for _, o := range running {
			if !alive[o.Name] {
				return false
			}
		}
	}
	return true
}

// WaitStatus waits until observer sees target with the given status.
func (c *Cluster) WaitStatus(observer, target *Node, status string, within time.Duration) {
	c.t.Helper()
	c.Eventually(within, func() bool { return observer.Status(target) == status }, "%s never saw %s as %s", observer.Name, target.Name, status)
}

// ---- faults ----

func (n *Node) fault(f control.Fault) error { return n.Do("fault", f, nil) }

// Partition cuts the cluster into groups of node indexes: no traffic
// crosses between groups, both ways, gossip and node links alike.
func (c *Cluster) Partition(groups ...[]int) {
	c.t.Helper()
	seen := map[int]bool{}
	for _, g := range groups {
		for _, i := range g {
			if i < 0 || i >= len(c.nodes) || seen[i] {
				c.t.Fatalf("clustertest: bad partition spec %v: index %d out of range or repeated", groups, i)
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
					c.block(c.nodes[i], c.nodes[j], "both")
				}
			}
		}
	}
	c.record("partition %v", groups)
}

// Blackhole drops traffic from a to b (dir "out"), or both ways.
func (c *Cluster) Blackhole(a, b int, dir string) {
	c.t.Helper()
	c.block(c.nodes[a], c.nodes[b], dir)
	c.record("blackhole %s -> %s (%s)", c.nodes[a].Name, c.nodes[b].Name, dir)
}

func (c *Cluster) block(a, b *Node, dir string) {
	c.t.Helper()
	for _, peer := range []string{b.Name, b.Ready().NodeAddr} {
		if err := a.fault(control.Fault{Action: "block", Peer: peer, Dir: dir}); err != nil {
			c.t.Fatalf("clustertest: block on %s: %v", a.Name, err)
		}
	}
}

// Heal removes every fault on every running node.
func (c *Cluster) Heal() {
	c.t.Helper()
	for _, n := range c.nodes {
		if n.Alive() {
			if err := n.fault(control.Fault{Action: "clear_all"}); err != nil {
				c.t.Fatalf("clustertest: heal on %s: %v", n.Name, err)
			}
		}
	}
	c.record("heal")
}

// Kill sends SIGKILL to node i and waits for it to exit.
func (c *Cluster) Kill(i int) {
	c.nodes[i].current().Kill()
	c.record("kill -9 %s", c.nodes[i].Name)
}

// Stop stops node i gracefully (SIGTERM: it leaves the cluster).
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	if err := c.nodes[i].current().Stop(testutil.Scale(20 * time.Second)); err != nil {
		c.t.Fatalf("clustertest: stop %s: %v", c.nodes[i].Name, err)
	}
	c.record("stop %s (graceful leave)", c.nodes[i].Name)
}

// Pause stops node i with SIGSTOP; Resume continues it.
func (c *Cluster) Pause(i int) {
	_ = c.nodes[i].current().Signal(syscall.SIGSTOP)
	c.record("pause %s", c.nodes[i].Name)
}

// Resume continues a paused node.
func (c *Cluster) Resume(i int) {
	_ = c.nodes[i].current().Signal(syscall.SIGCONT)
	c.record("resume %s", c.nodes[i].Name)
}

// Restart starts node i again under the same name (it must have exited),
// with a new incarnation, joining the running nodes.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	n := c.nodes[i]
	if n.Alive() {
		c.t.Fatalf("clustertest: restart %s: still running; Kill or Stop it first", n.Name)
	}
	if err := n.start(n.seeds()); err != nil {
		c.t.Fatalf("clustertest: restart %s: %v", n.Name, err)
	}
	c.record("restart %s (incarnation %d)", n.Name, n.Ready().Incarnation)
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
	if failed {
		c.t.Log(report.String())
	}
}

func (c *Cluster) diagnose(w *strings.Builder) {
	fmt.Fprintf(w, "\n==== clustertest diagnostics for cluster %s ====\n", c.Name)
	fmt.Fprintf(w, "\n-- membership matrix (row sees column) --\n")
	fmt.Fprintf(w, "%-16s", "")
	for _, n := range c.nodes {
		fmt.Fprintf(w, "%-16s", n.Name)
	}
	fmt.Fprintln(w)
	for _, n := range c.nodes {
		fmt.Fprintf(w, "%-16s", n.Name)
		if !n.Alive() {
			fmt.Fprintf(w, "(not running)\n")
			continue
		}
		ms, err := n.Members()
		st := map[string]string{}
		for _, m := range ms {
			st[m.Name] = m.Status
		}
		for _, o := range c.nodes {
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
	c.mu.Lock()
	fmt.Fprintf(w, "\n-- timeline --\n%s\n", strings.Join(c.timeline, "\n"))
	c.mu.Unlock()
	c.mu.Lock()
	everyone := append(append([]*Node(nil), c.nodes...), c.foreign...)
	c.mu.Unlock()
	for _, n := range everyone {
		fmt.Fprintf(w, "\n-- %s: arsenal %s --\n", n.Name, strings.Join(n.Args, " "))
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
// of Nodes, but is cleaned up with the cluster.
func (c *Cluster) StartForeign(name, clusterName, secret string) *Node {
	c.t.Helper()
	n := &Node{c: c, Index: -1, Name: name, logs: &logBuffer{}}
	args := []string{"node", "--control", "stdio", "--name", name, "--cluster", clusterName,
		"--node-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--profile", c.opts.Profile,
		"--log-level", "debug", "--seeds", c.nodes[0].Ready().NodeAddr}
	n.Args = args
	ch, err := launch.Start(context.Background(), launch.Spec{
		Binary: Binary(c.t), Args: args, Env: []string{"ARSENAL_SECRET=" + secret}, Stderr: n.logs,
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

// Token returns a bearer token with the operator role on every node;
// Token()+"-viewer" has the viewer role.
func (c *Cluster) Token() string { return c.token }

// URL returns the base URL of the node's HTTP server.
func (n *Node) URL() string { return "http://" + n.Ready().HTTPAddr }

// Secret returns the cluster's secret (tests of refusal start nodes with
// another one).
func (c *Cluster) Secret() string { return c.secret }
