package registry

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/arsenal-go/arsenal/cluster/crdt"
	"github.com/arsenal-go/arsenal/cluster/crdt/crdttest"
	"github.com/arsenal-go/arsenal/process"
)

// randomEntries makes entries the way nodes make them: registrations of a
// few names by a few nodes across generations, and tombstones of some of
// them written by various nodes.
func randomEntries(rng *rand.Rand, n int) []*Entry {
	names := []string{"a", "b", "c", "d"}
	nodes := []string{"n1@h", "n2@h", "n3@h"}
	var out []*Entry
	for range n {
		e := &Entry{
			Name: names[rng.IntN(len(names))],
			Gen:  uint64(1 + rng.IntN(3)),
			TS:   uint64(1 + rng.IntN(5)),
			PID:  process.PID{Node: nodes[rng.IntN(len(nodes))], Incarnation: uint64(1 + rng.IntN(2)), ID: uint64(1 + rng.IntN(3))},
		}
		if rng.IntN(3) == 0 {
			e.Meta = map[string]string{"k": fmt.Sprint(e.PID.ID)}
		}
		if rng.IntN(3) == 0 {
			e.Deleted = true
			e.DelTS = uint64(1 + rng.IntN(3))
			e.DelBy = nodes[rng.IntN(len(nodes))]
			e.Reason = []string{"exit", "unregistered", "reaped"}[rng.IntN(3)]
		}
		out = append(out, e)
	}
	return out
}

// The merge is a join: commutative, associative and idempotent, whatever
// the order in which entries arrive (the engine's laws, on the entries
// nodes make).
func TestMergeIsACRDT(t *testing.T) {
	for seed := uint64(1); seed <= 500; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		if err := crdttest.CheckJoin(rng, randomEntries(rng, 2+rng.IntN(30))); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}

// The order is total and antisymmetric, so every node keeps the same one.
func TestOrderIsTotal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	same := func(a, b *Entry) bool {
		return fmt.Sprint(*a.metaFree(), metaKey(a.Meta)) == fmt.Sprint(*b.metaFree(), metaKey(b.Meta))
	}
	if err := crdttest.CheckOrder(rng, randomEntries(rng, 300), same); err != nil {
		t.Fatal(err)
	}
}

func (e *Entry) metaFree() *Entry {
	c := *e
	c.Meta = nil
	c.Name = ""
	return &c
}

func TestConflictRule(t *testing.T) {
	pid := func(node string, id uint64) process.PID { return process.PID{Node: node, Incarnation: 1, ID: id} }
	early := &Entry{Name: "x", Gen: 1, TS: 10, PID: pid("n2@h", 1)}
	late := &Entry{Name: "x", Gen: 1, TS: 20, PID: pid("n1@h", 1)}
	if !early.Beats(late) {
		t.Fatal("earliest registration must win")
	}
	tie := &Entry{Name: "x", Gen: 1, TS: 10, PID: pid("n1@h", 9)}
	if !tie.Beats(early) {
		t.Fatal("same time: the lower node name must win")
	}
	dead := *early
	dead.Deleted, dead.DelTS = true, 11
	if !(&dead).Beats(early) {
		t.Fatal("a tombstone must win over its registration")
	}
	if !early.Beats(&Entry{Name: "x", Gen: 1, TS: 20, PID: pid("n1@h", 1), Deleted: true, DelTS: 30}) {
		t.Fatal("the tombstone of a losing registration must not win over the winner")
	}
	next := &Entry{Name: "x", Gen: 2, TS: 5, PID: pid("n3@h", 1)}
	if !next.Beats(&dead) {
		t.Fatal("a registration of the next generation must win over the tombstone")
	}
	// Round trip through the wire encoding.
	es, err := crdt.Decode[Entry](crdt.Encode([]*Entry{early, &dead, next}))
	if err != nil || len(es) != 3 || compareEntries(es[1], &dead) != 0 || es[2].PID != next.PID {
		t.Fatalf("wire round trip: %v %+v", err, es)
	}
}
