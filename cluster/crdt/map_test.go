package crdt_test

import (
	"math/rand/v2"
	"testing"

	"github.com/arsenal-go/arsenal/cluster/crdt"
	"github.com/arsenal-go/arsenal/cluster/crdt/crdttest"
)

// The merge is a join: any order of delivery, with duplicates, gives one
// state; merging states is commutative, associative and idempotent.
func TestMergeIsAJoin(t *testing.T) {
	for seed := uint64(1); seed <= 500; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		if err := crdttest.CheckJoin(rng, randomEntries(rng, 2+rng.IntN(30))); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}

// The order is total on the entries the generator makes.
func TestOrderIsTotal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	if err := crdttest.CheckOrder(rng, randomEntries(rng, 300), func(a, b *tEntry) bool { return *a == *b }); err != nil {
		t.Fatal(err)
	}
}

// The checkers themselves fail on an order that is not one: rock, paper,
// scissors (not transitive) makes the result depend on the order of
// delivery.
func TestCheckersCatchABadOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	es := []*bad{{K: "a", V: "rock"}, {K: "a", V: "paper"}, {K: "a", V: "scissors"}}
	if crdttest.CheckOrder(rng, es, func(a, b *bad) bool { return *a == *b }) == nil {
		t.Fatal("CheckOrder accepted an order that is not transitive")
	}
	failed := false
	for range 20 {
		if crdttest.CheckJoin(rng, es) != nil {
			failed = true
		}
	}
	if !failed {
		t.Fatal("CheckJoin accepted a merge whose result depends on the order")
	}
}

type bad struct{ K, V string }

func (e *bad) Key() string { return e.K }
func (e *bad) Compare(o *bad) int {
	beats := map[string]string{"rock": "scissors", "scissors": "paper", "paper": "rock"}
	switch {
	case e.V == o.V:
		return 0
	case beats[e.V] == o.V:
		return 1
	}
	return -1
}
func (e *bad) Stamp() uint64             { return 0 }
func (e *bad) Tombstone() (uint64, bool) { return 0, false }

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

func TestCompareDeletions(t *testing.T) {
	live := crdt.Deletion{}
	d1 := crdt.Deletion{Deleted: true, At: 5, By: "n1", Reason: "exit"}
	d2 := crdt.Deletion{Deleted: true, At: 6, By: "n1", Reason: "exit"}
	d3 := crdt.Deletion{Deleted: true, At: 6, By: "n2", Reason: "exit"}
	for _, c := range []struct {
		a, b crdt.Deletion
		want int
	}{{live, live, 0}, {d1, live, 1}, {live, d1, -1}, {d1, d1, 0}, {d2, d1, 1}, {d3, d2, 1}, {d2, d3, -1}} {
		if got := crdt.CompareDeletions(c.a, c.b); got != c.want {
			t.Errorf("CompareDeletions(%+v, %+v) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
