package clustertest_test

import (
	"strings"
	"testing"

	"github.com/arsenal-go/arsenal/clustertest"
)

// tryAdder is what both backends have besides Harness.AddNode: the error
// instead of a failed test.
type tryAdder interface {
	TryAddNode(name string) (int, error)
}

// addNodeBody: a 2-node cluster grows by a node under the next free name
// and one under a given name; both are members like the others (the
// History records what they see, a split and a heal involve them, a
// crash and a restart of one work, the services run on them), and a name
// in use or a node that cannot start gives a clear error and leaves the
// cluster as it was.
func addNodeBody(t *testing.T, h clustertest.Harness) {
	host := h.NodeName(0)[strings.Index(h.NodeName(0), "@"):]
	a := h.AddNode("")
	if a != 2 || h.Size() != 3 || !strings.HasPrefix(h.NodeName(a), "n3@") {
		t.Fatalf("AddNode(\"\") = %d, size %d, name %q: want 2, 3, n3@…", a, h.Size(), h.NodeName(a))
	}
	h.WaitConverged(within)
	given := "late" + host
	b := h.AddNode(given)
	if b != 3 || h.NodeName(b) != given || h.Index(given) != b || !h.Running(b) {
		t.Fatalf("AddNode(%q) = %d (name %q, index %d): want 3", given, b, h.NodeName(b), h.Index(given))
	}
	h.WaitConverged(within)

	// Bad input: a clear error, nothing added.
	try := h.(tryAdder)
	if i, err := try.TryAddNode(h.NodeName(0)); err == nil || !strings.Contains(err.Error(), h.NodeName(0)) {
		t.Errorf("adding a second %s: index %d, error %v; want an error naming it", h.NodeName(0), i, err)
	}
	if i, err := try.TryAddNode("bad name" + host); err == nil || !strings.Contains(err.Error(), `"bad name`+host+`" has the character ' '`) {
		t.Errorf("adding a node named %q: index %d, error %v; want the node's refusal, naming the character", "bad name"+host, i, err)
	} else {
		t.Logf("a node that cannot start: %v", err)
	}
	if h.Size() != 4 {
		t.Fatalf("size %d after two refused adds, want 4", h.Size())
	}

	// Faults cover the added nodes: a 2|2 split between the first two and
	// the added two, a heal, a crash and a restart of one.
	mark := h.History().Len()
	h.Partition([]int{0, 1}, []int{a, b})
	h.WaitPartitioned(within, []int{0, 1}, []int{a, b})
	h.Heal()
	h.WaitConverged(within)
	for _, i := range []int{a, b} {
		if len(h.History().MemberEvents(mark, h.NodeName(i))) == 0 {
			t.Errorf("the History has no membership change reported by the added %s during the split", h.NodeName(i))
		}
	}
	old := h.Incarnation(b)
	h.Kill(b)
	h.WaitDead(b, within)
	h.Restart(b)
	if inc := h.Incarnation(b); inc <= old {
		t.Errorf("%s restarted with incarnation %d, not above %d", given, inc, old)
	}
	h.WaitConverged(within)
	h.WaitServicesReady(within)
}

// TestAddNode runs addNodeBody on real processes.
func TestAddNode(t *testing.T) {
	addNodeBody(t, clustertest.Start(t, 2, clustertest.Options{}))
}

// TestAddNodeSim runs addNodeBody on the simulator.
func TestAddNodeSim(t *testing.T) {
	addNodeBody(t, clustertest.StartSim(t, 2, clustertest.Options{Seed: testSeed(t)}))
}
