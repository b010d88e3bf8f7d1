// Package crdttest checks the laws of the replicated-state engine
// (cluster/crdt) on an entry type's own entries: tests of the registry,
// placement and the engine call it with entries made the way their nodes
// make them.
package crdttest

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"

	"github.com/arsenal-go/arsenal/cluster/crdt"
)

// CheckJoin checks that the merge of es is a join: every order of
// delivery, with duplicates, gives one map; merging the maps of three
// random parts of es is commutative, associative and idempotent, and
// gives the map of the whole; merging what a map already includes
// changes nothing. It returns the first law that does not hold.
func CheckJoin[T any, P crdt.Value[T]](rng *rand.Rand, es []P) error {
	of := func(es []P) crdt.Map[T, P] {
		m := crdt.Map[T, P]{}
		for _, e := range es {
			m.Merge(e)
		}
		return m
	}
	merged := func(a, b crdt.Map[T, P]) crdt.Map[T, P] {
		m := a.Clone()
		m.MergeState(b)
		return m
	}
	ref := of(es)
	for range 5 {
		p := slices.Clone(es)
		rng.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
		for range rng.IntN(len(p) + 1) {
			p = append(p, p[rng.IntN(len(p))])
		}
		if got := of(p); !got.Equal(ref) {
			return fmt.Errorf("the order of delivery changes the result:\n%s\n%s", Dump(got), Dump(ref))
		}
	}
	var parts [3][]P
	for _, e := range es {
		i := rng.IntN(3)
		parts[i] = append(parts[i], e)
	}
	a, b, c := of(parts[0]), of(parts[1]), of(parts[2])
	switch {
	case !merged(a, b).Equal(merged(b, a)):
		return fmt.Errorf("not commutative")
	case !merged(a, merged(b, c)).Equal(merged(merged(a, b), c)):
		return fmt.Errorf("not associative")
	case !merged(a, a).Equal(a) || !merged(merged(a, b), b).Equal(merged(a, b)):
		return fmt.Errorf("not idempotent")
	case !merged(merged(a, b), c).Equal(ref):
		return fmt.Errorf("the merge of the parts is not the whole")
	}
	if changed := merged(a, b).MergeState(a); len(changed) != 0 {
		return fmt.Errorf("merging what a map includes changed %v", changed)
	}
	return nil
}

// CheckOrder checks that Compare is a total order on es, per key:
// antisymmetric, 0 only for entries same says are the same, and
// transitive on random triples.
func CheckOrder[T any, P crdt.Value[T]](rng *rand.Rand, es []P, same func(a, b P) bool) error {
	for _, a := range es {
		for _, b := range es {
			if a.Key() != b.Key() {
				continue
			}
			ab, ba := a.Compare(b), b.Compare(a)
			if (ab > 0) != (ba < 0) || (ab == 0) != (ba == 0) {
				return fmt.Errorf("not antisymmetric: %+v %+v", a, b)
			}
			if ab == 0 && !same(a, b) {
				return fmt.Errorf("different entries compare equal: %+v %+v", a, b)
			}
		}
	}
	if len(es) == 0 {
		return nil
	}
	for range 20 * len(es) {
		a, b, c := es[rng.IntN(len(es))], es[rng.IntN(len(es))], es[rng.IntN(len(es))]
		if a.Key() == b.Key() && b.Key() == c.Key() && a.Compare(b) > 0 && b.Compare(c) > 0 && a.Compare(c) <= 0 {
			return fmt.Errorf("not transitive: %+v > %+v > %+v", a, b, c)
		}
	}
	return nil
}

// Dump lists a map's entries sorted by key, for failure messages.
func Dump[T any, P crdt.Value[T]](m crdt.Map[T, P]) string {
	out := ""
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out += fmt.Sprintf("%s=%+v\n", k, *m[k])
	}
	return out
}
