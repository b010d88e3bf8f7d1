package placement

import (
	"fmt"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/process"
)

// benchState makes n children the way a cluster holds them: spread over 5
// nodes, small arguments, one in ten named, one in ten a tombstone.
func benchState(n int, gen uint64) State {
	s := State{}
	ts := uint64(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	for i := range n {
		node := fmt.Sprintf("node%d@10.0.0.%d", i%5, i%5+1)
		r := &Record{ID: fmt.Sprintf("child-%06d", i), Kind: "worker", Args: []byte{0xa1, 0x01, byte(i)}, Restart: Permanent,
			Gen: gen, TS: ts + uint64(i)*1000, Node: node, Inc: 1764590000123456789, Seq: 1,
			PID: process.PID{Node: node, Incarnation: 1764590000123456789, ID: uint64(1000 + i)}}
		if i%10 == 3 {
			r.Name = fmt.Sprintf("named-%06d", i)
		}
		if i%10 == 7 {
			r.Deleted, r.DelTS, r.DelBy, r.Reason = true, r.TS+5e9, node, "stopped"
		}
		s[r.ID] = r
	}
	return s
}

func benchValues(s State) []*Record {
	out := make([]*Record, 0, len(s))
	for _, r := range s {
		out = append(out, r)
	}
	return out
}

// BenchmarkStateWire encodes the full state of n children (what push-pull
// and a state pull send) and reports its size per child and the size of a
// one-record delta.
func BenchmarkStateWire(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprint("children=", n), func(b *testing.B) {
			s := benchState(n, 1)
			rs := benchValues(s)
			var size int
			for b.Loop() {
				size = len(benchEncode(rs))
			}
			b.ReportMetric(float64(size)/float64(n), "B/child")
			b.ReportMetric(float64(len(benchEncode([]*Record{s["child-000000"]}))), "B/delta")
		})
	}
}

// BenchmarkStateDecode decodes a full state of n children.
func BenchmarkStateDecode(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprint("children=", n), func(b *testing.B) {
			w := benchEncode(benchValues(benchState(n, 1)))
			for b.Loop() {
				if _, err := benchDecode(w); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/child")
		})
	}
}

// BenchmarkMergeState merges a peer's full state of n children into a
// replica's copy: "same" is the usual push-pull, "newer" replaces all.
func BenchmarkMergeState(b *testing.B) {
	for _, n := range []int{100, 10000} {
		for _, kind := range []string{"same", "newer"} {
			b.Run(fmt.Sprintf("children=%d/%s", n, kind), func(b *testing.B) {
				mine := benchState(n, 1)
				peer := benchState(n, 1)
				if kind == "newer" {
					peer = benchState(n, 2)
				}
				for b.Loop() {
					s := mine.Clone()
					s.MergeState(peer)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/child")
			})
		}
	}
}

// BenchmarkMergeDelta decodes a one-record delta and merges it.
func BenchmarkMergeDelta(b *testing.B) {
	s := benchState(1000, 1)
	d := benchEncode(benchValues(benchState(1, 2)))
	for b.Loop() {
		rs, err := benchDecode(d)
		if err != nil {
			b.Fatal(err)
		}
		s.Merge(rs[0])
	}
}
