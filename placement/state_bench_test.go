package placement

import (
	"fmt"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster/crdt/crdttest"
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

// The engine's benchmarks (cluster/crdt/crdttest) on this state. Before
// they moved there (commit 803111c) these files held them in full, and
// ran unchanged on the base commit for docs/BENCHMARKS.md.
func BenchmarkStateWire(b *testing.B) {
	crdttest.BenchWire(b, "child", "children", benchState, "child-000000")
}
func BenchmarkStateDecode(b *testing.B) { crdttest.BenchDecode(b, "child", "children", benchState) }
func BenchmarkMergeState(b *testing.B)  { crdttest.BenchMergeState(b, "child", "children", benchState) }
func BenchmarkMergeDelta(b *testing.B)  { crdttest.BenchMergeDelta(b, benchState) }
