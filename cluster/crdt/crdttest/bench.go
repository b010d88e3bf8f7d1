package crdttest

import (
	"fmt"
	"testing"

	"github.com/arsenal-go/arsenal/cluster/crdt"
)

// A State makes a map of n entries of generation gen, the same keys for
// every gen, so that State(n, 2) replaces State(n, 1) entry by entry.
type State[T any, P crdt.Value[T]] func(n int, gen uint64) crdt.Map[T, P]

// Sizes are the state sizes the benchmarks run at.
var Sizes = []int{100, 10000}

// BenchWire encodes the full state (what push-pull sends) and reports its
// size per entry (B/<unit>) and the size of the delta of the entry under
// deltaKey (B/delta). units names the sub-benchmarks (names=100).
func BenchWire[T any, P crdt.Value[T]](b *testing.B, unit, units string, mk State[T, P], deltaKey string) {
	for _, n := range Sizes {
		b.Run(fmt.Sprintf("%s=%d", units, n), func(b *testing.B) {
			m := mk(n, 1)
			es := m.Values()
			var size int
			for b.Loop() {
				size = len(crdt.Encode(es))
			}
			b.ReportMetric(float64(size)/float64(n), "B/"+unit)
			b.ReportMetric(float64(len(crdt.Encode([]P{m[deltaKey]}))), "B/delta")
		})
	}
}

// BenchDecode decodes a full state and reports the time per entry.
func BenchDecode[T any, P crdt.Value[T]](b *testing.B, unit, units string, mk State[T, P]) {
	for _, n := range Sizes {
		b.Run(fmt.Sprintf("%s=%d", units, n), func(b *testing.B) {
			w := crdt.Encode(mk(n, 1).Values())
			for b.Loop() {
				if _, err := crdt.Decode[T, P](w); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/"+unit)
		})
	}
}

// BenchMergeState merges a peer's full state into a copy of a replica's:
// "same" is the usual push-pull (nothing changes), "newer" replaces every
// entry.
func BenchMergeState[T any, P crdt.Value[T]](b *testing.B, unit, units string, mk State[T, P]) {
	for _, n := range Sizes {
		for _, kind := range []string{"same", "newer"} {
			b.Run(fmt.Sprintf("%s=%d/%s", units, n, kind), func(b *testing.B) {
				mine, peer := mk(n, 1), mk(n, 1)
				if kind == "newer" {
					peer = mk(n, 2)
				}
				for b.Loop() {
					m := mine.Clone()
					m.MergeState(peer)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/"+unit)
			})
		}
	}
}

// BenchMergeDelta decodes a one-entry delta and merges it into a state of
// 1000 entries.
func BenchMergeDelta[T any, P crdt.Value[T]](b *testing.B, mk State[T, P]) {
	m := mk(1000, 1)
	d := crdt.Encode(mk(1, 2).Values())
	for b.Loop() {
		es, err := crdt.Decode[T, P](d)
		if err != nil {
			b.Fatal(err)
		}
		m.Merge(es[0])
	}
}
