package crdt_test

import (
	"math/rand/v2"
	"testing"
)

func merged(a, b tMap) tMap {
	s := a.Clone()
	s.MergeState(b)
	return s
}

// The merge is a join: any order of delivery, with duplicates, gives one
// state; merging states is commutative, associative and idempotent.
func TestMergeIsAJoin(t *testing.T) {
	for seed := uint64(1); seed <= 500; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		es := randomEntries(rng, 2+rng.IntN(30))
		ref := mapOf(es)
		for range 5 {
			p := append([]*tEntry(nil), es...)
			rng.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
			for range rng.IntN(5) {
				p = append(p, p[rng.IntN(len(p))])
			}
			if got := mapOf(p); !got.Equal(ref) {
				t.Fatalf("seed %d: the order changes the result:\n%s\n%s", seed, dump(got), dump(ref))
			}
		}
		var parts [3][]*tEntry
		for _, e := range es {
			i := rng.IntN(3)
			parts[i] = append(parts[i], e)
		}
		a, b, c := mapOf(parts[0]), mapOf(parts[1]), mapOf(parts[2])
		if !merged(a, b).Equal(merged(b, a)) {
			t.Fatalf("seed %d: not commutative", seed)
		}
		if !merged(merged(a, b), c).Equal(merged(a, merged(b, c))) {
			t.Fatalf("seed %d: not associative", seed)
		}
		if !merged(a, a).Equal(a) || !merged(merged(a, b), b).Equal(merged(a, b)) {
			t.Fatalf("seed %d: not idempotent", seed)
		}
		if !merged(merged(a, b), c).Equal(ref) {
			t.Fatalf("seed %d: the merge of the parts is not the whole", seed)
		}
	}
}

// The order is total on the entries the generator makes: two entries
// compare 0 only if they are equal, and Compare is antisymmetric and
// transitive.
func TestOrderIsTotal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	es := randomEntries(rng, 300)
	for _, a := range es {
		for _, b := range es {
			if a.K != b.K {
				continue // the order is per key
			}
			ab, ba := a.Compare(b), b.Compare(a)
			if (ab > 0) != (ba < 0) || (ab == 0) != (ba == 0) {
				t.Fatalf("not antisymmetric: %v %v", a, b)
			}
			if ab == 0 && *a != *b {
				t.Fatalf("different entries compare equal: %v %v", a, b)
			}
		}
	}
	for range 20000 {
		a, b, c := es[rng.IntN(len(es))], es[rng.IntN(len(es))], es[rng.IntN(len(es))]
		if a.K != b.K || b.K != c.K {
			continue
		}
		if a.Compare(b) > 0 && b.Compare(c) > 0 && a.Compare(c) <= 0 {
			t.Fatalf("not transitive: %v > %v > %v", a, b, c)
		}
	}
}

func TestMergeReportsChanges(t *testing.T) {
	m := tMap{}
	e1 := &tEntry{K: "a", Gen: 1, TS: 10, Node: "n1"}
	late := &tEntry{K: "a", Gen: 1, TS: 20, Node: "n2"} // concurrent, later: loses
	dead := &tEntry{K: "a", Gen: 1, TS: 10, Node: "n1", Deleted: true, DelTS: 30, DelBy: "n1"}
	if !m.Merge(e1) || m.Merge(e1) || m.Merge(late) || m["a"] != e1 {
		t.Fatalf("merge of a first, a duplicate and a loser: %s", dump(m))
	}
	if !m.Merge(dead) || m["a"] != dead || m.Merge(e1) {
		t.Fatalf("the tombstone must win over its entry and stay: %s", dump(m))
	}
	o := tMap{"b": {K: "b", Gen: 1, TS: 1, Node: "n1"}, "a": e1}
	if ch := m.MergeState(o); len(ch) != 1 || ch[0] != "b" {
		t.Fatalf("MergeState changed %v, want [b]", ch)
	}
	if len(m.Values()) != 2 {
		t.Fatalf("Values: %d entries, want 2", len(m.Values()))
	}
}

func TestRetireAndAccept(t *testing.T) {
	live := &tEntry{K: "a", Gen: 1, TS: 10, Node: "n1"}
	old := &tEntry{K: "b", Gen: 1, TS: 10, Node: "n1", Deleted: true, DelTS: 50, DelBy: "n1"}
	young := &tEntry{K: "c", Gen: 1, TS: 10, Node: "n1", Deleted: true, DelTS: 150, DelBy: "n1"}
	kept := &tEntry{K: "d", Gen: 1, TS: 10, Node: "n1", Deleted: true, DelTS: 60, DelBy: "n1"}
	m := tMap{"a": live, "b": old, "c": young, "d": kept}
	got := m.Retire(100, func(e *tEntry) bool { return e.K == "d" })
	if len(got) != 1 || got[0] != old || len(m) != 3 || m["b"] != nil {
		t.Fatalf("Retire(100) took %v and left %s; want b only", got, dump(m))
	}
	// A tombstone past the horizon is dropped on arrival, held key or not.
	if m.Accept(old, 100) || m["b"] != nil {
		t.Fatalf("a retired tombstone came back: %s", dump(m))
	}
	liveTomb := &tEntry{K: "a", Gen: 1, TS: 10, Node: "n1", Deleted: true, DelTS: 70, DelBy: "n2"}
	if m.Accept(liveTomb, 100) || m["a"] != live {
		t.Fatalf("a tombstone past the horizon was merged: %s", dump(m))
	}
	// One within the horizon, and any live entry, is merged.
	if !m.Accept(&tEntry{K: "a", Gen: 1, TS: 10, Node: "n1", Deleted: true, DelTS: 120, DelBy: "n2"}, 100) {
		t.Fatal("a tombstone within the horizon was dropped")
	}
	if !m.Accept(&tEntry{K: "e", Gen: 1, TS: 1, Node: "n1"}, 100) {
		t.Fatal("a live entry was dropped")
	}
}
