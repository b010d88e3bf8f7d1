package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/internal/clusterstate"
	"github.com/arsenal-go/arsenal/internal/testutil"
)

// cli runs the arsenal binary built for the test as a subprocess.
type cli struct {
	t   *testing.T
	bin string
	dir string // --dir for every cluster command
}

type cliResult struct {
	code           int
	stdout, stderr string
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

func (c cli) run(args ...string) cliResult {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(90*time.Second))
	defer cancel()
	if len(args) > 1 && args[0] == "cluster" && !slices.Contains(args, "--help") {
		args = append(args, "--dir", c.dir)
	}
	cmd := exec.CommandContext(ctx, c.bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		c.t.Fatalf("arsenal %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs a command that must succeed.
func (c cli) ok(args ...string) cliResult {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("arsenal %s: %s", strings.Join(args, " "), r)
	}
	return r
}

func (c cli) status(name string) clusterStatus {
	c.t.Helper()
	r := c.ok("cluster", "status", "--name", name, "--format", "json")
	var cs clusterStatus
	if err := json.Unmarshal([]byte(r.stdout), &cs); err != nil {
		c.t.Fatalf("status --format json: %v\n%s", err, r.stdout)
	}
	return cs
}

// buildArsenal builds the binary once for the test, into its temp dir.
func buildArsenal(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ARSENAL_BINARY"); p != "" {
		return p
	}
	bin := filepath.Join(t.TempDir(), "arsenal")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/arsenal: %v\n%s", err, out)
	}
	return bin
}

// killRecorded kills every live pid recorded in any cluster state under
// root, so no node outlives the test whatever happened; on failure it
// shows the end of every node's log first.
func killRecorded(t *testing.T, root string) {
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		st, err := clusterstate.Load(filepath.Join(root, e.Name()))
		if err != nil {
			continue
		}
		for _, n := range st.Nodes {
			if t.Failed() {
				t.Logf("--- %s log (last lines) ---\n%s", n.Name, strings.Join(clusterstate.LogTail(n.Log, 0, 40), "\n"))
			}
			if clusterstate.Alive(n.PID, n.Args) {
				_ = syscall.Kill(n.PID, syscall.SIGKILL)
			}
		}
	}
}

// processesMentioning returns the pids of live processes whose command
// line contains s: a check that does not trust the state file.
func processesMentioning(s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func byName(cs clusterStatus, short string) clusterNodeStatus {
	for _, n := range cs.Nodes {
		if clusterstate.ShortName(n.Name) == short {
			return n
		}
	}
	return clusterNodeStatus{}
}

func TestClusterCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	if runtime.GOOS != "linux" {
		t.Skip("checks processes through /proc")
	}
	bin := buildArsenal(t)
	root := t.TempDir()
	// Registered after TempDir, so it runs before the directory goes.
	t.Cleanup(func() { killRecorded(t, root) })

	t.Run("help", func(t *testing.T) {
		c := cli{t: t, bin: bin, dir: root}
		r := c.ok("cluster", "--help")
		for _, verb := range []string{"start", "status", "stop", "logs", "kill", "restart", "partition", "heal", "preflight", "clean"} {
			if !strings.Contains(r.stdout, "\n  "+verb+" ") {
				t.Errorf("cluster --help does not list %s:\n%s", verb, r.stdout)
			}
		}
		r = c.ok("cluster", "start", "--help")
		if !strings.Contains(r.stdout, "Usage: arsenal cluster start") || !strings.Contains(r.stdout, "Examples:") || !strings.Contains(r.stdout, "-nodes") {
			t.Errorf("cluster start --help:\n%s", r.stdout)
		}
		if r := c.run("cluster", "frobnicate"); r.code != 2 || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
			t.Errorf("unknown verb: %s", r)
		}
	})

	t.Run("preflight", func(t *testing.T) {
		c := cli{t: t, bin: bin, dir: root}
		r := c.ok("cluster", "preflight")
		for _, want := range []string{"OK    loopback", "OK    ports", "OK    open files", "OK    binary", "OK    state dir"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("preflight lacks %q:\n%s", want, r.stdout)
			}
		}
		var checks []preflightCheck
		r = c.ok("cluster", "preflight", "--format", "json")
		if err := json.Unmarshal([]byte(r.stdout), &checks); err != nil || len(checks) < 5 {
			t.Errorf("preflight --format json: %v\n%s", err, r.stdout)
		}
	})

	t.Run("missing cluster", func(t *testing.T) {
		c := cli{t: t, bin: bin, dir: root}
		r := c.run("cluster", "status", "--name", "nope")
		if r.code != 1 || !strings.Contains(r.stderr, `no cluster "nope"`) || !strings.Contains(r.stderr, "arsenal cluster start") {
			t.Errorf("status of a missing cluster: %s", r)
		}
		if r := c.run("cluster", "stop", "--name", "nope"); r.code != 1 || !strings.Contains(r.stderr, `no cluster "nope"`) {
			t.Errorf("stop of a missing cluster: %s", r)
		}
	})

	t.Run("lifecycle", func(t *testing.T) {
		c := cli{t: t, bin: bin, dir: root}
		const name = "c1"
		dir := filepath.Join(root, name)
		c.ok("cluster", "start", "--name", name, "--nodes", "3", "--profile", "fast", "--timeout", "45s")

		st, err := clusterstate.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(st.SecretFile); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("secret file %s: %v %v; want mode 0600", st.SecretFile, err, fi)
		}
		for _, n := range st.Nodes {
			if !slices.Contains(n.Args, "--secret-file") || strings.Contains(strings.Join(n.Args, " "), mustRead(t, st.SecretFile)) {
				t.Errorf("%s: the secret must go by file, never on the command line: %q", n.Name, n.Args)
			}
		}

		// Every node alive, ready, and seeing all three.
		testutil.Eventually(t, 15*time.Second, func() bool {
			cs := c.status(name)
			if cs.Alive != 3 || cs.Ready != 3 {
				return false
			}
			for _, n := range cs.Nodes {
				if n.MembersUp != 3 || n.Members["alive"] != 3 {
					return false
				}
			}
			return true
		}, "3 nodes alive, ready, each seeing 3 members up")
		if r := c.ok("cluster", "status", "--name", name); !strings.Contains(r.stdout, "3 of 3 nodes alive, 3 ready") {
			t.Errorf("status table:\n%s", r.stdout)
		}

		// A second start over a live cluster is refused; an unknown name lists it.
		if r := c.run("cluster", "start", "--name", name, "--nodes", "3"); r.code != 1 || !strings.Contains(r.stderr, "already running") {
			t.Errorf("second start on a live cluster: %s", r)
		}
		if r := c.run("cluster", "status", "--name", "nope"); r.code != 1 || !strings.Contains(r.stderr, "known clusters: c1") {
			t.Errorf("unknown cluster does not list the known ones: %s", r)
		}
		if r := c.ok("cluster", "logs", "node1", "--name", name); !strings.Contains(r.stdout, `msg="node started"`) {
			t.Errorf("logs node1 lacks the start line:\n%s", r.stdout)
		}
		if r := c.ok("cluster", "logs", "--name", name, "--tail", "5"); strings.Count(r.stdout, "\n") != 5 || !strings.HasPrefix(r.stdout, "[node") {
			t.Errorf("logs --tail 5 of all nodes:\n%s", r.stdout)
		}

		// kill → not alive, and the others notice.
		before := byName(c.status(name), "node2")
		c.ok("cluster", "kill", "node2", "--name", name)
		cs := c.status(name)
		if n := byName(cs, "node2"); n.Alive {
			t.Fatalf("node2 alive after kill: %+v", n)
		}
		if clusterstate.Alive(before.PID, st.Nodes[1].Args) {
			t.Fatalf("node2's process %d still runs after kill", before.PID)
		}
		testutil.Eventually(t, 20*time.Second, func() bool {
			n := byName(c.status(name), "node1")
			return n.MembersUp == 2
		}, "node1 sees node2 gone")

		// restart → alive again, new incarnation, everyone sees 3.
		c.ok("cluster", "restart", "node2", "--name", name)
		after := byName(c.status(name), "node2")
		if !after.Alive || after.Incarnation == before.Incarnation || after.PID == before.PID {
			t.Fatalf("after restart: %+v (before: %+v)", after, before)
		}
		testutil.Eventually(t, 20*time.Second, func() bool {
			cs := c.status(name)
			for _, n := range cs.Nodes {
				if !n.Alive || n.MembersUp != 3 {
					return false
				}
			}
			return true
		}, "all nodes see 3 members up after the restart")

		// partition and heal.
		if nodeHasControlSocket() {
			t.Log("partition and heal through the nodes' control sockets")
			c.ok("cluster", "partition", "node1,node2", "node3", "--name", name)
			testutil.Eventually(t, 20*time.Second, func() bool {
				cs := c.status(name)
				return byName(cs, "node3").MembersUp == 1 && byName(cs, "node1").MembersUp == 2
			}, "both sides see the 2|1 split")
			c.ok("cluster", "heal", "--name", name)
			testutil.Eventually(t, 30*time.Second, func() bool {
				cs := c.status(name)
				for _, n := range cs.Nodes {
					if n.MembersUp != 3 {
						return false
					}
				}
				return true
			}, "one cluster of 3 again after heal")
		} else {
			t.Log("'arsenal node' has no --control-socket: checking that partition says so")
			if r := c.run("cluster", "partition", "node1,node2", "node3", "--name", name); r.code != 1 || !strings.Contains(r.stderr, "--control-socket") {
				t.Errorf("partition without a control channel must say what is missing: %s", r)
			}
		}

		// stop → nothing alive, no process left.
		c.ok("cluster", "stop", "--name", name, "--timeout", "10s")
		cs = c.status(name)
		if cs.Alive != 0 {
			t.Fatalf("alive after stop: %+v", cs)
		}
		st, _ = clusterstate.Load(dir)
		for _, n := range st.Nodes {
			if clusterstate.Alive(n.PID, n.Args) || n.StoppedAt == nil {
				t.Errorf("%s (pid %d) still recorded as running after stop", n.Name, n.PID)
			}
		}
		if pids := processesMentioning(dir); len(pids) > 0 {
			t.Errorf("processes of the cluster left after stop: %v", pids)
		}

		// clean → the directory is gone, and the cluster with it.
		c.ok("cluster", "clean", "--name", name)
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("state dir after clean: %v", err)
		}
		if r := c.run("cluster", "status", "--name", name); r.code != 1 || !strings.Contains(r.stderr, "no cluster") {
			t.Errorf("status after clean: %s", r)
		}
	})
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestParseInterleaved(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	follow := fs.Bool("follow", false, "")
	name := fs.String("name", "", "")
	var out bytes.Buffer
	pos, code, done := parseInterleaved(fs, []string{"node1", "--follow", "--name", "c", "node2", "--", "--x"}, &out)
	if done || code != 0 || !*follow || *name != "c" || !slices.Equal(pos, []string{"node1", "node2", "--x"}) {
		t.Fatalf("pos %q code %d done %v follow %v name %q", pos, code, done, *follow, *name)
	}
}

func TestParsePartitionGroups(t *testing.T) {
	st := &clusterstate.State{Name: "c", Nodes: []clusterstate.Node{{Name: "node1@h"}, {Name: "node2@h"}, {Name: "node3@h"}, {Name: "node4@h"}}}
	g, err := parsePartitionGroups(st, []string{"node1,2", "node3@h"})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"node1@h", "node2@h"}, {"node3@h"}, {"node4@h"}}
	if fmt.Sprint(g) != fmt.Sprint(want) {
		t.Fatalf("groups %v, want %v", g, want)
	}
	if g, err := parsePartitionGroups(st, []string{"node4"}); err != nil || len(g) != 2 {
		t.Fatalf("one group isolates it from the rest: %v, %v", g, err)
	}
	for _, bad := range [][]string{{"node1,node2,node3,node4"}, {"node1", "node1"}, {"node9"}} {
		if _, err := parsePartitionGroups(st, bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseMemberMetrics(t *testing.T) {
	text := `# HELP arsenal_cluster_members Cluster members by status, as this node sees them.
# TYPE arsenal_cluster_members gauge
arsenal_cluster_members{cluster="c",node="n1",status="alive"} 2
arsenal_cluster_members{cluster="c",node="n1",status="dead"} 1
arsenal_cluster_members{cluster="c",node="n1",status="left"} 0
arsenal_processes{cluster="c",node="n1"} 12
`
	m, err := parseMemberMetrics(strings.NewReader(text))
	if err != nil || m["alive"] != 2 || m["dead"] != 1 || len(m) != 2 {
		t.Fatalf("%v, %v", m, err)
	}
	if s := membersSeenString(2, m); s != "2 up (alive 2, dead 1)" {
		t.Fatalf("membersSeenString = %q", s)
	}
}
