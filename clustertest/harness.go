package clustertest

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/control"
	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/placement"
	"github.com/arsenal-go/arsenal/process"
)

// Harness is what a multi-node test needs from a cluster, whether its
// nodes are real processes (*Cluster, from Start) or in-process nodes on
// the simulator's network (*SimCluster, from StartSim). Write a test body
// against it and pick the backend with New: per test (Options.Backend) or
// for the whole run (ARSENAL_CLUSTER=real|sim).
//
// Nodes are numbered from 0. Fault methods record themselves in the
// History and open a fault life cycle; the waits mark faults in effect
// (WaitPartitioned, WaitSees with a non-alive status, WaitDead) and
// recovered (WaitConverged after an undo). Every method fails the test on
// error; waits fail it at their (scaled) deadline.
type Harness interface {
	T() testing.TB
	// Backend is "real" or "sim".
	Backend() string
	Size() int
	NodeName(i int) string
	// Index is the index of the node with this name, or -1.
	Index(name string) int
	// Running: started and neither killed nor stopped (a paused node is
	// running).
	Running(i int) bool
	Paused(i int) bool
	// Incarnation is the current incarnation of node i.
	Incarnation(i int) uint64
	// Profile is the failure-detection profile's settings (for bounds).
	Profile() cluster.ProfileSettings

	// Partition cuts the cluster into groups (node indexes): nothing
	// crosses between groups, either way, gossip and node links alike.
	// The spec is validated (no index out of range or repeated).
	Partition(groups ...[]int)
	// Blackhole drops what a sends to b (dir "out"), what b sends to a
	// ("in"), or both ("both").
	Blackhole(a, b int, dir string)
	// Delay delays everything a sends to b by d plus up to jitter, in
	// order (call it twice for both directions); Delay(a, b, 0, 0)
	// removes it.
	Delay(a, b int, d, jitter time.Duration)
	// Heal removes every network fault (partitions, blackholes, delays).
	Heal()
	Kill(i int)  // crash: SIGKILL, no leave
	Leave(i int) // graceful stop: the node leaves, peers see it left
	Pause(i int) // SIGSTOP
	Resume(i int)
	// Restart starts a killed or stopped node again under the same name,
	// with a new incarnation.
	Restart(i int)
	// AddNode starts one more node (the same binary or App, profile,
	// flags and expected size) under a new name ("" picks the next free
	// n<k>), joining the running nodes, and returns its index (the old
	// Size). It does not wait for convergence. Scale-out, or a crashed
	// node replaced under another name, as a Kubernetes Deployment does.
	AddNode(name string) int

	Members(i int) ([]control.Member, error)
	Topology(i int) (cluster.Topology, error)

	// Spawn starts a process on node i: "echo" (a server that answers
	// calls with the request), "sink" (records every message it gets in
	// the History) or "supervisor". It returns the PID.
	Spawn(i int, kind string) string
	// Monitor and Link start a watcher on node i that monitors or links
	// to pid and records the DOWN or EXIT it gets in the History; they
	// return the watcher's PID.
	Monitor(i int, pid string) string
	Link(i int, pid string) string
	// Send sends msg to pid from a fresh process on node i.
	Send(i int, to, msg string)
	// Sender starts a long-lived sender on node i; SendSeq makes it send
	// msg+":"+n to `to` for its next count numbers n (its own sequence,
	// from 0) and returns the first n of the batch.
	Sender(i int) string
	SendSeq(i int, sender, to, msg string, count int) int
	// Call calls the echo server pid from node i.
	Call(i int, to, msg string) (string, error)

	// The user's own kinds and message types (Options.App; on the real
	// backend values travel through the codec, so their types must be
	// registered in the test process too, which Options.App does).
	//
	// SpawnKind starts a process of a kind the App registered (made from
	// args), or of a built-in helper kind, on node i.
	SpawnKind(i int, kind string, args []byte) process.PID
	// SendTo sends msg, of any registered type, to pid from node i.
	SendTo(i int, to process.PID, msg any)
	// CallTo calls pid from node i and returns the reply.
	CallTo(i int, to process.PID, req any) (any, error)
	// MonitorPID and LinkPID are Monitor and Link with PIDs.
	MonitorPID(i int, pid process.PID) process.PID
	LinkPID(i int, pid process.PID) process.PID

	// The cluster services: the registry and the distributed supervisor.
	//
	// Place starts a distributed child from node i; Unplace stops one.
	Place(i int, spec placement.ChildSpec) (placement.Child, error)
	Unplace(i int, id string) error
	// Lookup is the PID registered under name as node i sees it.
	Lookup(i int, name string) (process.PID, bool)
	// CallName and SendName reach the process registered under name.
	CallName(i int, name string, req any) (any, error)
	SendName(i int, name string, msg any) error
	// Services is node i's services state: its split-brain decision, its
	// registry, the distributed children it knows of.
	Services(i int) (control.ServicesState, error)
	// Placement is node i's placement status, children and local PIDs.
	Placement(i int) (control.PlacementState, error)
	// WaitServicesReady waits until the cluster has converged, every
	// running node's placement is up with no decision pending, every node
	// sees the same registry and the same children, all running, and each
	// singleton of Options.App runs under its name: after it, placing a
	// child is not refused and a name lookup agrees on every node.
	WaitServicesReady(within time.Duration)

	// Eventually waits until cond holds (scaled deadline).
	Eventually(within time.Duration, cond func() bool, msg string, args ...any)
	// Consistently checks that cond holds for d, polling, and fails at
	// the first false: for negative claims ("no false dead").
	Consistently(d time.Duration, cond func() bool, msg string, args ...any)
	// WaitConverged waits until every running, unpaused node sees exactly
	// those nodes alive; it marks undone faults recovered.
	WaitConverged(within time.Duration)
	// WaitSees waits until observer sees target with status.
	WaitSees(observer, target int, status string, within time.Duration)
	// WaitDead waits until every other running, unpaused node sees i dead.
	WaitDead(i int, within time.Duration)
	// WaitPartitioned waits until every node of each group sees every
	// node of the other groups dead and its own group alive.
	WaitPartitioned(within time.Duration, groups ...[]int)
	// WaitSettled waits until the cluster has converged and no node has
	// reported a membership change (other than metadata) for quiet, and
	// the traffic sent under removed delays has landed (quiet counts from
	// then): the way back from a fault can still flap after convergence
	// (stale gossip, late packets), and a negative claim must not start
	// inside that tail.
	WaitSettled(quiet, within time.Duration)
	// WaitSize waits until every running, unpaused node sees n alive.
	WaitSize(n int, within time.Duration)
	// WaitMode waits until node i reports mode (single_node,
	// multi_node, simulated).
	WaitMode(i int, mode string, within time.Duration)

	History() *History
}

// Backends: the values of Options.Backend and ARSENAL_CLUSTER.
const (
	BackendReal = "real"
	BackendSim  = "sim"
)

// New starts n nodes on the backend that Options.Backend names, else
// ARSENAL_CLUSTER, else real processes.
func New(t testing.TB, n int, opts Options) Harness {
	t.Helper()
	b := opts.Backend
	if b == "" {
		b = os.Getenv("ARSENAL_CLUSTER")
	}
	switch b {
	case "", BackendReal:
		return Start(t, n, opts)
	case BackendSim:
		return StartSim(t, n, opts)
	}
	t.Fatalf("clustertest: backend %q: want %s or %s (Options.Backend or ARSENAL_CLUSTER)", b, BackendReal, BackendSim)
	return nil
}

// ---- waits shared by the backends ----

// poll calls cond until it holds or the scaled deadline passes; then it
// records the failure in the history and fails the test with what and
// cond's last explanation.
func poll(h Harness, within time.Duration, what string, cond func() (bool, string)) time.Duration {
	t := h.T()
	t.Helper()
	start := time.Now()
	deadline := start.Add(testutil.Scale(within))
	wait := time.Millisecond
	for {
		ok, why := cond()
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			h.History().failed("wait: %s: not within %s: %s", what, testutil.Scale(within), why)
			t.Fatalf("clustertest: %s: not within %s (scale with ARSENAL_TEST_SCALE): %s", what, testutil.Scale(within), why)
		}
		time.Sleep(wait)
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// consistently checks cond every few milliseconds for d (not scaled: it
// is the length of a claim, not a deadline).
func consistently(h Harness, d time.Duration, what string, cond func() (bool, string)) {
	t := h.T()
	t.Helper()
	end := time.Now().Add(d)
	for {
		if ok, why := cond(); !ok {
			h.History().failed("consistently: %s: became false: %s", what, why)
			t.Fatalf("clustertest: %s: became false within %s: %s", what, d, why)
		}
		if time.Now().After(end) {
			h.History().Note("held for %s: %s", d, what)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wrap(cond func() bool) func() (bool, string) {
	return func() (bool, string) { return cond(), "condition false" }
}

// observers are the nodes that can answer: running and not paused.
func observers(h Harness) []int {
	var out []int
	for i := 0; i < h.Size(); i++ {
		if h.Running(i) && !h.Paused(i) {
			out = append(out, i)
		}
	}
	return out
}

func statuses(h Harness, i int) (map[string]string, error) {
	ms, err := h.Members(i)
	if err != nil {
		return nil, err
	}
	st := make(map[string]string, len(ms))
	for _, m := range ms {
		st[m.Name] = m.Status
	}
	return st, nil
}

// converged: every observer sees exactly the observers alive, each at its
// current incarnation (a restarted node seen alive at its old incarnation
// is not back yet: messages to its new processes would be dropped).
func converged(h Harness) (bool, string) {
	obs := observers(h)
	want := map[string]uint64{}
	for _, i := range obs {
		want[h.NodeName(i)] = h.Incarnation(i)
	}
	for _, i := range obs {
		ms, err := h.Members(i)
		if err != nil {
			return false, fmt.Sprintf("%s: %v", h.NodeName(i), err)
		}
		st := make(map[string]string, len(ms))
		var wrong []string
		for _, m := range ms {
			st[m.Name] = m.Status
			inc, ok := want[m.Name]
			switch {
			case (m.Status == "alive") != ok:
				wrong = append(wrong, m.Name+"="+m.Status)
			case ok && m.Incarnation != inc:
				wrong = append(wrong, fmt.Sprintf("%s at incarnation %d, not %d", m.Name, m.Incarnation, inc))
			}
		}
		for name := range want {
			if _, ok := st[name]; !ok {
				wrong = append(wrong, name+" unknown")
			}
		}
		if len(wrong) > 0 {
			sort.Strings(wrong)
			return false, fmt.Sprintf("%s sees %s", h.NodeName(i), strings.Join(wrong, ", "))
		}
	}
	return true, ""
}

func waitConverged(h Harness, within time.Duration) {
	h.T().Helper()
	d := poll(h, within, "cluster converged", func() (bool, string) { return converged(h) })
	h.History().Note("converged (waited %s)", d.Round(time.Millisecond))
	h.History().recoveredNow("converged")
}

func waitSettled(h Harness, quiet, within time.Duration) {
	h.T().Helper()
	what := fmt.Sprintf("cluster converged and quiet for %s", quiet)
	hist := h.History()
	// Traffic sent under a removed delay is still in flight until
	// drainUntil; it can still take members down, so it must have landed
	// and the quiet window counts from then (and from the last change).
	within += max(hist.drainUntil()-hist.now(), 0)
	d := poll(h, within, what, func() (bool, string) {
		now := hist.now()
		if drain := hist.drainUntil(); now < drain+quiet {
			return false, fmt.Sprintf("traffic of a removed delay in flight until %.3fs", drain.Seconds())
		}
		if ok, why := converged(h); !ok {
			return false, why
		}
		es := hist.MemberEvents(0, "")
		for k := len(es) - 1; k >= 0; k-- {
			if es[k].Member.Type == "node_updated" {
				continue
			}
			if ago := now - es[k].At; ago < quiet {
				return false, fmt.Sprintf("last change %s ago: %s", ago.Round(time.Millisecond), es[k])
			}
			break
		}
		return true, ""
	})
	h.History().Note("%s (waited %s)", what, d.Round(time.Millisecond))
	h.History().recoveredNow("converged")
}

func waitSees(h Harness, observer, target int, status string, within time.Duration) {
	h.T().Helper()
	what := fmt.Sprintf("%s sees %s %s", h.NodeName(observer), h.NodeName(target), status)
	d := poll(h, within, what, func() (bool, string) {
		st, err := statuses(h, observer)
		if err != nil {
			return false, err.Error()
		}
		return st[h.NodeName(target)] == status, "it sees " + or(st[h.NodeName(target)], "nothing")
	})
	h.History().Note("%s (waited %s)", what, d.Round(time.Millisecond))
	if status != "alive" {
		h.History().inEffect(what, touches(target))
	}
}

func waitDead(h Harness, i int, within time.Duration) {
	h.T().Helper()
	what := fmt.Sprintf("every running node sees %s dead", h.NodeName(i))
	d := poll(h, within, what, func() (bool, string) {
		for _, o := range observers(h) {
			if o == i {
				continue
			}
			st, err := statuses(h, o)
			if err != nil {
				return false, err.Error()
			}
			if s := st[h.NodeName(i)]; s != "dead" {
				return false, fmt.Sprintf("%s sees it %s", h.NodeName(o), or(s, "unknown"))
			}
		}
		return true, ""
	})
	h.History().Note("%s (waited %s)", what, d.Round(time.Millisecond))
	h.History().inEffect(what, touches(i))
}

// touches selects the faults that act on node i (and partitions).
func touches(i int) func(*Fault) bool {
	return func(f *Fault) bool {
		if f.Kind == "partition" {
			return true
		}
		for _, n := range f.Nodes {
			if n == i {
				return true
			}
		}
		return false
	}
}

func waitPartitioned(h Harness, within time.Duration, groups ...[]int) {
	h.T().Helper()
	side := map[int]int{}
	for g, nodes := range groups {
		for _, i := range nodes {
			side[i] = g
		}
	}
	what := fmt.Sprintf("split %v seen on every side", groups)
	d := poll(h, within, what, func() (bool, string) {
		for _, o := range observers(h) {
			g, ok := side[o]
			if !ok {
				continue
			}
			st, err := statuses(h, o)
			if err != nil {
				return false, err.Error()
			}
			for j, gj := range side {
				s := st[h.NodeName(j)]
				switch {
				case j == o:
				case gj == g && h.Running(j) && !h.Paused(j) && s != "alive":
					return false, fmt.Sprintf("%s sees %s (same side) %s", h.NodeName(o), h.NodeName(j), or(s, "unknown"))
				case gj != g && s != "dead":
					return false, fmt.Sprintf("%s sees %s (other side) %s", h.NodeName(o), h.NodeName(j), or(s, "unknown"))
				}
			}
		}
		return true, ""
	})
	h.History().Note("%s (waited %s)", what, d.Round(time.Millisecond))
	h.History().inEffect("every side sees the split", func(f *Fault) bool { return f.Kind == "partition" })
}

func waitSize(h Harness, n int, within time.Duration) {
	h.T().Helper()
	what := fmt.Sprintf("every running node sees %d alive", n)
	d := poll(h, within, what, func() (bool, string) {
		for _, o := range observers(h) {
			st, err := statuses(h, o)
			if err != nil {
				return false, err.Error()
			}
			alive := 0
			for _, s := range st {
				if s == "alive" {
					alive++
				}
			}
			if alive != n {
				return false, fmt.Sprintf("%s sees %d alive", h.NodeName(o), alive)
			}
		}
		return true, ""
	})
	h.History().Note("%s (waited %s)", what, d.Round(time.Millisecond))
}

func waitMode(h Harness, i int, mode string, within time.Duration) {
	h.T().Helper()
	what := fmt.Sprintf("%s mode %s", h.NodeName(i), mode)
	d := poll(h, within, what, func() (bool, string) {
		top, err := h.Topology(i)
		if err != nil {
			return false, err.Error()
		}
		return string(top.Mode) == mode, "mode " + string(top.Mode)
	})
	h.History().Note("%s (waited %s)", what, d.Round(time.Millisecond))
}

// validatePartition checks a partition spec: indexes in range, none
// repeated, at least two groups.
func validatePartition(size int, groups [][]int) error {
	if len(groups) < 2 {
		return fmt.Errorf("bad partition spec %v: want at least two groups", groups)
	}
	seen := map[int]bool{}
	for _, g := range groups {
		if len(g) == 0 {
			return fmt.Errorf("bad partition spec %v: empty group", groups)
		}
		for _, i := range g {
			if i < 0 || i >= size || seen[i] {
				return fmt.Errorf("bad partition spec %v: index %d out of range or repeated", groups, i)
			}
			seen[i] = true
		}
	}
	return nil
}

func checkDir(dir string) error {
	switch dir {
	case "out", "in", "both":
		return nil
	}
	return fmt.Errorf("direction %q: want out, in or both", dir)
}
