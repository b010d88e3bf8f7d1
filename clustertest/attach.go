package clustertest

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/control"
	"github.com/arsenal-go/arsenal/internal/clusterstate"
	"github.com/arsenal-go/arsenal/internal/launch"
	"github.com/arsenal-go/arsenal/internal/testutil"
)

// Attaching to a running 'arsenal cluster', for fast local iteration: with
// Options.Attach (or ARSENAL_ATTACH) naming a cluster that 'arsenal
// cluster start' runs (of the same binary), Start uses its nodes instead of
// starting its own, through their control sockets. The harness owns only
// what it starts: it refuses to kill, stop, pause or restart an attached
// node, and at the end it clears the network faults it set, stops the
// distributed children the test placed (so that the next run can place
// them again) and disconnects, leaving the nodes running (with the
// processes the test spawned on them). CI leaves ARSENAL_ATTACH unset and
// starts fresh clusters.

func attachName(o Options) string {
	if o.Attach != "" {
		return o.Attach
	}
	return os.Getenv("ARSENAL_ATTACH")
}

func attachCluster(t testing.TB, n int, opts Options, name string) *Cluster {
	t.Helper()
	root := os.Getenv("ARSENAL_ATTACH_DIR")
	if root == "" {
		var err error
		if root, err = clusterstate.DefaultRoot(); err != nil {
			t.Fatalf("clustertest: attach %q: %v", name, err)
		}
	}
	dir := filepath.Join(root, name)
	st, err := clusterstate.Load(dir)
	if err != nil {
		t.Fatalf("clustertest: attach %q: %v (start it with 'arsenal cluster start --name %s')", name, err, name)
	}
	if len(st.Nodes) != n {
		t.Fatalf("clustertest: attach %q: the cluster has %d nodes, the test wants %d", name, len(st.Nodes), n)
	}
	prof, err := cluster.ParseProfile(st.Profile)
	if err != nil {
		t.Fatalf("clustertest: attach %q: %v", name, err)
	}
	opts.Profile, opts.ExpectedSize = st.Profile, n
	secret, _ := os.ReadFile(st.SecretFile)
	token, _ := os.ReadFile(filepath.Join(dir, "operator-token")) // 'arsenal cluster' keeps it there, if it made one
	now := time.Now()
	c := &Cluster{t: t, Name: st.Name, secret: strings.TrimSpace(string(secret)), token: strings.TrimSpace(string(token)),
		opts: opts, started: now, hist: newHistory(now), profile: prof.Settings(), attached: true}
	if opts.App != nil {
		if err := opts.App.Register(); err != nil {
			t.Fatalf("clustertest: Options.App: %v", err)
		}
	}
	t.Cleanup(c.cleanup)
	for i, sn := range st.Nodes {
		node := &Node{c: c, Index: i, Name: sn.Name, logs: &logBuffer{}, events: make(chan control.Line, 4096),
			attached: true, logFile: sn.Log, Args: sn.Args}
		if fi, err := os.Stat(sn.Log); err == nil {
			node.logOffset = fi.Size()
		}
		c.nodes = append(c.nodes, node)
		if sn.ControlSocket == "" {
			t.Fatalf("clustertest: attach %q: %s has no control socket", name, sn.Name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(10*time.Second))
		ch, err := launch.Attach(ctx, sn.ControlSocket)
		cancel()
		if err != nil {
			t.Fatalf("clustertest: attach %q: %s: %v", name, sn.Name, err)
		}
		if opts.App != nil {
			for _, k := range opts.App.Kinds {
				if !slices.Contains(ch.Ready.Kinds, k.Name) {
					ch.Kill() // the connection only
					t.Fatalf("clustertest: attach %q: %s runs %q, whose kinds %q lack %q of the test's App: not the test's binary (start the cluster with 'arsenal cluster start --name %s --build <the main package of Options.Build>')",
						name, sn.Name, ch.Ready.App, ch.Ready.Kinds, k.Name, name)
				}
			}
		}
		node.child, node.ready = ch, ch.Ready
		c.collectors.Add(1)
		go node.collect(ch)
		ctx, cancel = context.WithTimeout(context.Background(), testutil.Scale(15*time.Second))
		if err := ch.Call(ctx, "watch_members", nil, nil); err != nil {
			c.record("%s: no membership events: %v", node.Name, err)
		}
		cancel()
	}
	c.record("attached to the running cluster %q (%d nodes, %s): the harness will not kill, stop, pause or restart them", name, n, dir)
	if !opts.NoWait {
		c.WaitConverged(30 * time.Second)
	}
	return c
}

// mine fails the test if node i is attached: the harness acts only on
// what it started.
func (c *Cluster) mine(i int, what string) {
	c.t.Helper()
	if c.at(i).attached {
		c.t.Fatalf("clustertest: %s %s: the node belongs to the attached cluster %q; the harness kills, stops, pauses and restarts only nodes it started (unset ARSENAL_ATTACH to run this test on its own cluster)", what, c.at(i).Name, c.Name)
	}
}

// attachPlaced holds, per attached cluster, the IDs of the distributed
// children the test placed and has not unplaced.
var attachPlaced sync.Map // *Cluster → *placedIDs

type placedIDs struct {
	mu  sync.Mutex
	ids []string // in the order placed
}

// placedByTest records that the test placed (or unplaced) child id, on an
// attached cluster: detach stops what is left.
func (c *Cluster) placedByTest(id string, placed bool) {
	if !c.attached {
		return
	}
	v, _ := attachPlaced.LoadOrStore(c, &placedIDs{})
	p := v.(*placedIDs)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids = slices.DeleteFunc(p.ids, func(s string) bool { return s == id })
	if placed {
		p.ids = append(p.ids, id)
	}
}

// detach clears the faults this test set on the attached nodes, stops
// the distributed children it placed, and closes the nodes' connections;
// the nodes keep running.
func (c *Cluster) detach() {
	if !c.attached {
		return
	}
	for _, n := range c.Nodes() {
		if n.current() == nil {
			continue
		}
		if err := n.fault(control.Fault{Action: "clear_all"}); err != nil {
			c.t.Errorf("clustertest: detach: clearing the faults on %s: %v", n.Name, err)
		}
	}
	var ids []string
	if v, ok := attachPlaced.LoadAndDelete(c); ok {
		ids = v.(*placedIDs).ids
	}
	for _, id := range ids {
		var errs []string
		for _, n := range c.Nodes() {
			if n.current() == nil {
				continue
			}
			err := n.Do("unplace", map[string]string{"id": id}, nil)
			if err == nil {
				c.record("detach: stopped the child %q that the test placed", id)
				errs = nil
				break
			}
			errs = append(errs, n.Name+": "+err.Error())
		}
		if len(errs) > 0 {
			c.t.Logf("clustertest: detach: the child %q that the test placed could not be stopped, it keeps running on the attached cluster %q (%s)", id, c.Name, strings.Join(errs, "; "))
		}
	}
	for _, n := range c.Nodes() {
		if ch := n.current(); ch != nil {
			ch.Kill() // closes the connection only
		}
	}
}

// readFrom returns a file's content from offset on ("" on error).
func readFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
