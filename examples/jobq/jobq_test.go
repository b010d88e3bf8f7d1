package jobq_test

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/clustertest"
	"github.com/arsenal-go/arsenal/examples/jobq"
	"go.uber.org/goleak"
)

// The job queue's multi-node tests: the harness runs the service's own
// binary (./cmd/jobq, built once per test run) as real processes, and the
// same bodies run on the simulator. They are the example of
// docs/TESTING.md.

// TestMain: clustertest.Main runs the tests and removes the binaries they
// built; then goleak checks that the simulated nodes and the harness left
// no goroutine behind (the harness checks at each test's end that no node
// process and no port of a real node is left).
func TestMain(m *testing.M) {
	code := clustertest.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// args: split-brain decisions after 1 s of stable membership, and a 3 s
// removal margin (the spread of failure detection on the fast profile).
var args = []string{"--stable-after", "1s", "--removal-margin", "3s"}

// OwnerBound is the documented bound for one queue owner again after its
// node is killed, on the fast profile with args: crash detection (up to
// about 3 s), stable-after (1 s), removal margin (3 s), and the start.
const OwnerBound = 20 * time.Second

func start(t *testing.T, backend string, nodes int) clustertest.Harness {
	app := jobq.App()
	h := clustertest.New(t, nodes, clustertest.Options{Backend: backend, Build: "./cmd/jobq", App: &app, Args: args})
	h.WaitServicesReady(30 * time.Second)
	return h
}

func backends(t *testing.T, body func(t *testing.T, backend string)) {
	for _, b := range []string{clustertest.BackendReal, clustertest.BackendSim} {
		t.Run(b, func(t *testing.T) { body(t, b) })
	}
}

// submit submits jobs prefix-0 … prefix-(n-1) through node i and returns
// their IDs; each must be acknowledged (retried while the queue moves).
func submit(t *testing.T, h clustertest.Harness, i int, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for k := range n {
		id := fmt.Sprintf("%s-%d", prefix, k)
		h.Eventually(10*time.Second, func() bool {
			v, err := h.CallName(i, jobq.QueueName, jobq.Submit{ID: id, Payload: "work " + id})
			a, ok := v.(jobq.Accepted)
			return err == nil && ok && a.ID == id
		}, "submit %s through %s", id, h.NodeName(i))
		ids = append(ids, id)
	}
	return ids
}

func stats(h clustertest.Harness, i int) (jobq.Stats, bool) {
	v, err := h.CallName(i, jobq.QueueName, jobq.GetStats{})
	s, ok := v.(jobq.Stats)
	return s, err == nil && ok
}

// waitDone waits until the queue reports every id done, and returns its
// stats.
func waitDone(t *testing.T, h clustertest.Harness, i int, ids []string, within time.Duration) jobq.Stats {
	t.Helper()
	var last jobq.Stats
	h.Eventually(within, func() bool {
		s, ok := stats(h, i)
		if !ok {
			return false
		}
		last = s
		for _, id := range ids {
			if _, found := slices.BinarySearch(s.DoneIDs, id); !found {
				return false
			}
		}
		return true
	}, "every job of %d done", len(ids))
	return last
}

// owner is the index of the node that runs the queue, as node i sees it.
func owner(t *testing.T, h clustertest.Harness, i int) int {
	t.Helper()
	s, err := h.Services(i)
	if err != nil {
		t.Fatal(err)
	}
	o := h.Index(s.Children["queue"])
	if o < 0 {
		t.Fatalf("%s: the queue runs nowhere: %v", h.NodeName(i), s.Children)
	}
	return o
}

// owners counts the nodes that run the queue now, over the running ones.
func owners(h clustertest.Harness) (n int, where []string) {
	for i := range h.Size() {
		if !h.Running(i) || h.Paused(i) {
			continue
		}
		st, err := h.Placement(i)
		if err != nil {
			continue
		}
		if _, ok := st.Local["queue"]; ok {
			n++
			where = append(where, h.NodeName(i))
		}
	}
	return n, where
}

// TestOwnerKilledThenRestarted: kill -9 of the node that runs the queue →
// one owner again within OwnerBound, no acknowledged job lost, at most one
// duplicate run per worker; the killed node restarts and the service
// carries on.
func TestOwnerKilledThenRestarted(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		h := start(t, backend, 3)
		first := submit(t, h, 0, "a", 20)
		waitDone(t, h, 0, first, 30*time.Second)
		second := submit(t, h, 0, "b", 20)

		o := owner(t, h, 0)
		survivor := (o + 1) % 3
		killed := time.Now()
		h.Kill(o)
		h.Eventually(OwnerBound, func() bool {
			n, _ := owners(h)
			no := -1
			if s, err := h.Services(survivor); err == nil {
				no = h.Index(s.Children["queue"])
			}
			return n == 1 && no >= 0 && no != o
		}, "one queue owner again after the kill of %s", h.NodeName(o))
		t.Logf("one owner again %s after the kill", time.Since(killed).Round(time.Millisecond))

		all := append(append([]string{}, first...), second...)
		s := waitDone(t, h, survivor, all, 30*time.Second)
		if s.Duplicates > jobq.Workers {
			t.Errorf("%d duplicate runs after one fault; the margin is %d (one per worker)", s.Duplicates, jobq.Workers)
		}
		if s.Submitted != len(all) {
			t.Errorf("the new queue knows %d jobs, want %d", s.Submitted, len(all))
		}

		h.Restart(o)
		h.WaitServicesReady(30 * time.Second)
		third := submit(t, h, o, "c", 10)
		s = waitDone(t, h, o, append(all, third...), 30*time.Second)
		if n, where := owners(h); n != 1 {
			t.Errorf("%d queue owners after the restart: %v", n, where)
		}
		t.Logf("%s: %d jobs done, %d duplicate runs", backend, s.Done, s.Duplicates)
	})
}

// TestPartitionMinorityStops: a 3|2 partition with the queue on the
// minority side → the minority stops its children and the majority runs
// the queue and the workers; after the heal there is one owner of each
// child and every job is done.
func TestPartitionMinorityStops(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		h := start(t, backend, 5)
		before := submit(t, h, 0, "a", 10)
		waitDone(t, h, 0, before, 30*time.Second)

		o := owner(t, h, 0)
		minority := []int{o, (o + 1) % 5}
		var majority []int
		for i := range 5 {
			if !slices.Contains(minority, i) {
				majority = append(majority, i)
			}
		}
		h.Partition(majority, minority)
		h.WaitPartitioned(30*time.Second, majority, minority)
		h.Eventually(30*time.Second, func() bool {
			for _, i := range minority {
				st, err := h.Placement(i)
				if err != nil || st.Status.Up || len(st.Local) > 0 {
					return false
				}
			}
			return true
		}, "the minority %v stops its children", minority)
		h.Eventually(OwnerBound, func() bool {
			s, err := h.Services(majority[0])
			if err != nil || !slices.Contains(majority, h.Index(s.Children["queue"])) {
				return false
			}
			for w := 1; w <= jobq.Workers; w++ {
				if !slices.Contains(majority, h.Index(s.Children[fmt.Sprintf("worker-%d", w)])) {
					return false
				}
			}
			return true
		}, "the majority %v runs the queue and every worker", majority)
		during := submit(t, h, majority[0], "b", 10)
		waitDone(t, h, majority[0], append(append([]string{}, before...), during...), 30*time.Second)

		h.Heal()
		h.WaitConverged(30 * time.Second)
		h.WaitServicesReady(30 * time.Second)
		if n, where := owners(h); n != 1 {
			t.Fatalf("%d queue owners after the heal: %v", n, where)
		}
		for i := range 5 {
			pid, ok := h.Lookup(i, jobq.QueueName)
			if want, _ := h.Lookup(0, jobq.QueueName); !ok || pid != want {
				t.Errorf("%s sees %s as %v, %s sees %v", h.NodeName(i), jobq.QueueName, pid, h.NodeName(0), want)
			}
		}
		after := submit(t, h, minority[0], "c", 5)
		s := waitDone(t, h, 0, append(append(before, during...), after...), 30*time.Second)
		t.Logf("%s: %d jobs done, %d duplicate runs", backend, s.Done, s.Duplicates)
	})
}

// TestDocExample is the test docs/TESTING.md shows in full.
func TestDocExample(t *testing.T) {
	// Three nodes of the service's own binary, built once per test run
	// (or in this process with ARSENAL_CLUSTER=sim). App tells the harness
	// the service's message types and, for the simulator, its behaviours.
	app := jobq.App()
	h := clustertest.New(t, 3, clustertest.Options{
		Build: "./cmd/jobq", App: &app,
		Args: []string{"--stable-after", "1s", "--removal-margin", "3s"},
	})
	// The registry is in sync and the queue and the workers are placed.
	h.WaitServicesReady(30 * time.Second)

	// Submit a job through n1, with the service's own message types.
	v, err := h.CallName(0, jobq.QueueName, jobq.Submit{ID: "j1", Payload: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := v.(jobq.Accepted); !ok || a.Stored < 2 {
		t.Fatalf("submit answered %#v; want the job in at least two stores", v)
	}

	// Kill -9 the node that runs the queue.
	s, err := h.Services(0)
	if err != nil {
		t.Fatal(err)
	}
	owner := h.Index(s.Children["queue"])
	h.Kill(owner)

	// The queue runs again on a survivor, and the job is done.
	survivor := (owner + 1) % 3
	h.Eventually(20*time.Second, func() bool {
		v, err := h.CallName(survivor, jobq.QueueName, jobq.GetStats{})
		st, ok := v.(jobq.Stats)
		return err == nil && ok && st.Node != h.NodeName(owner) && slices.Contains(st.DoneIDs, "j1")
	}, "the queue runs again on a survivor and j1 is done")
}
