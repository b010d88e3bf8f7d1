package crdt_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/arsenal-go/arsenal/cluster/crdt"
	"github.com/arsenal-go/arsenal/cluster/crdt/crdttest"
)

// tEntry is an entry type built the way the registry's and placement's
// are: a generation, an hybrid-clock time, a writer, a value, and the
// fields a tombstone adds.
type tEntry struct {
	K       string `cbor:"1,keyasint"`
	Gen     uint64 `cbor:"2,keyasint"`
	TS      uint64 `cbor:"3,keyasint"`
	Node    string `cbor:"4,keyasint"`
	V       string `cbor:"5,keyasint,omitempty"`
	Deleted bool   `cbor:"6,keyasint,omitempty"`
	DelTS   uint64 `cbor:"7,keyasint,omitempty"`
	DelBy   string `cbor:"8,keyasint,omitempty"`
}

func (e *tEntry) Key() string { return e.K }

// Compare: higher generation; in one generation the earliest write (TS,
// then node); its tombstone; the later deletion; the value.
func (e *tEntry) Compare(o *tEntry) int {
	if c := cmp.Compare(e.Gen, o.Gen); c != 0 {
		return c
	}
	if c := cmp.Or(cmp.Compare(e.TS, o.TS), strings.Compare(e.Node, o.Node)); c != 0 {
		return -c
	}
	if c := crdt.CompareDeletions(e.deletion(), o.deletion()); c != 0 {
		return c
	}
	return strings.Compare(e.V, o.V)
}

func (e *tEntry) deletion() crdt.Deletion {
	return crdt.Deletion{Deleted: e.Deleted, At: e.DelTS, By: e.DelBy}
}

func (e *tEntry) Stamp() uint64 { return max(e.TS, e.DelTS) }

func (e *tEntry) Tombstone() (uint64, bool) { return e.DelTS, e.Deleted }

func (e *tEntry) String() string {
	if e.Deleted {
		return fmt.Sprintf("%s/%d@%d:%s(%s)†%d:%s", e.K, e.Gen, e.TS, e.Node, e.V, e.DelTS, e.DelBy)
	}
	return fmt.Sprintf("%s/%d@%d:%s(%s)", e.K, e.Gen, e.TS, e.Node, e.V)
}

type tMap = crdt.Map[tEntry, *tEntry]

// randomEntries makes entries of a few keys by a few writers across
// generations, some of them tombstones, with many collisions.
func randomEntries(rng *rand.Rand, n int) []*tEntry {
	keys := []string{"a", "b", "c", "d"}
	nodes := []string{"n1", "n2", "n3"}
	var out []*tEntry
	for range n {
		e := &tEntry{
			K:    keys[rng.IntN(len(keys))],
			Gen:  uint64(1 + rng.IntN(3)),
			TS:   uint64(1 + rng.IntN(4)),
			Node: nodes[rng.IntN(len(nodes))],
		}
		if rng.IntN(3) == 0 {
			e.V = fmt.Sprint(rng.IntN(3))
		}
		if rng.IntN(3) == 0 {
			e.Deleted, e.DelTS, e.DelBy = true, uint64(1+rng.IntN(3)), nodes[rng.IntN(len(nodes))]
		}
		out = append(out, e)
	}
	return out
}

func mapOf(es []*tEntry) tMap {
	m := tMap{}
	for _, e := range es {
		m.Merge(e)
	}
	return m
}

func dump(m tMap) string { return crdttest.Dump(m) }
