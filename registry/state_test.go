package registry

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/arsenal-go/arsenal/cluster/crdt"
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

func stateOf(es []*Entry) State {
	s := State{}
	for _, e := range es {
		s.Merge(e)
	}
	return s
}

func merged(a, b State) State {
	s := a.Clone()
	s.MergeState(b)
	return s
}

// The merge is a join: commutative, associative, idempotent, whatever the
// order in which entries arrive.
func TestMergeIsACRDT(t *testing.T) {
	for seed := uint64(1); seed <= 500; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		es := randomEntries(rng, 2+rng.IntN(30))
		ref := stateOf(es)
		// Any order of delivery gives the same state.
		for range 5 {
			p := append([]*Entry(nil), es...)
			rng.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
			// Deliver some twice.
			for range rng.IntN(5) {
				p = append(p, p[rng.IntN(len(p))])
			}
			if got := stateOf(p); !got.Equal(ref) {
				t.Fatalf("seed %d: order changes the result:\n%v\n%v", seed, dump(got), dump(ref))
			}
		}
		// Three random sub-states.
		var parts [3][]*Entry
		for _, e := range es {
			i := rng.IntN(3)
			parts[i] = append(parts[i], e)
		}
		a, b, c := stateOf(parts[0]), stateOf(parts[1]), stateOf(parts[2])
		if !merged(a, b).Equal(merged(b, a)) {
			t.Fatalf("seed %d: not commutative", seed)
		}
		if !merged(a, merged(b, c)).Equal(merged(merged(a, b), c)) {
			t.Fatalf("seed %d: not associative", seed)
		}
		if !merged(a, a).Equal(a) {
			t.Fatalf("seed %d: not idempotent", seed)
		}
		if !merged(merged(a, b), c).Equal(ref) {
			t.Fatalf("seed %d: merging the parts is not the whole", seed)
		}
		if changed := merged(a, b).MergeState(a); len(changed) != 0 {
			t.Fatalf("seed %d: merging what is included changed %v", seed, changed)
		}
	}
}

// The order is total and antisymmetric, so every node keeps the same one.
func TestOrderIsTotal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	es := randomEntries(rng, 300)
	for _, a := range es {
		for _, b := range es {
			ab, ba := compareEntries(a, b), compareEntries(b, a)
			if ab != -ba {
				t.Fatalf("not antisymmetric: %+v %+v", a, b)
			}
			if ab == 0 && (a.Name == b.Name) && fmt.Sprint(*a.metaFree(), metaKey(a.Meta)) != fmt.Sprint(*b.metaFree(), metaKey(b.Meta)) {
				t.Fatalf("distinct entries compare equal: %+v %+v", a, b)
			}
		}
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

func dump(s State) string {
	out := ""
	for k, e := range s {
		out += fmt.Sprintf("%s=%+v\n", k, *e)
	}
	return out
}
