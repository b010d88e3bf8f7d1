package registry

import (
	"fmt"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/process"
)

// benchState makes n registrations the way a cluster holds them: names
// spread over 5 nodes, one in ten with metadata, one in ten a tombstone.
func benchState(n int, gen uint64) State {
	s := State{}
	ts := uint64(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	for i := range n {
		node := fmt.Sprintf("node%d@10.0.0.%d", i%5, i%5+1)
		e := &Entry{Name: fmt.Sprintf("service-%06d", i), Gen: gen, TS: ts + uint64(i)*1000,
			PID: process.PID{Node: node, Incarnation: 1764590000123456789, ID: uint64(1000 + i)}}
		if i%10 == 3 {
			e.Meta = map[string]string{"role": "primary"}
		}
		if i%10 == 7 {
			e.Deleted, e.DelTS, e.DelBy, e.Reason = true, e.TS+5e9, node, "exit"
		}
		s[e.Name] = e
	}
	return s
}

func benchValues(s State) []*Entry {
	out := make([]*Entry, 0, len(s))
	for _, e := range s {
		out = append(out, e)
	}
	return out
}

// BenchmarkStateWire encodes the full state of n names (what push-pull
// sends) and reports its size per name and the size of a one-entry delta.
func BenchmarkStateWire(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprint("names=", n), func(b *testing.B) {
			s := benchState(n, 1)
			es := benchValues(s)
			var size int
			for b.Loop() {
				size = len(benchEncode(es))
			}
			b.ReportMetric(float64(size)/float64(n), "B/name")
			b.ReportMetric(float64(len(benchEncode([]*Entry{s["service-000000"]}))), "B/delta")
		})
	}
}

// BenchmarkStateDecode decodes a full state of n names.
func BenchmarkStateDecode(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprint("names=", n), func(b *testing.B) {
			w := benchEncode(benchValues(benchState(n, 1)))
			for b.Loop() {
				if _, err := benchDecode(w); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/name")
		})
	}
}

// BenchmarkMergeState merges a peer's full state of n names into a
// replica's copy: "same" is the usual push-pull (nothing changes), "newer"
// replaces every entry.
func BenchmarkMergeState(b *testing.B) {
	for _, n := range []int{100, 10000} {
		for _, kind := range []string{"same", "newer"} {
			b.Run(fmt.Sprintf("names=%d/%s", n, kind), func(b *testing.B) {
				mine := benchState(n, 1)
				peer := benchState(n, 1)
				if kind == "newer" {
					peer = benchState(n, 2)
				}
				for b.Loop() {
					s := mine.Clone()
					s.MergeState(peer)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/name")
			})
		}
	}
}

// BenchmarkMergeDelta decodes a one-entry delta and merges it.
func BenchmarkMergeDelta(b *testing.B) {
	s := benchState(1000, 1)
	d := benchEncode(benchValues(benchState(1, 2)))
	for b.Loop() {
		es, err := benchDecode(d)
		if err != nil {
			b.Fatal(err)
		}
		s.Merge(es[0])
	}
}
