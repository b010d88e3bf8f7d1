package registry

import (
	"fmt"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster/crdt/crdttest"
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

// The engine's benchmarks (cluster/crdt/crdttest) on this state. Before
// they moved there (commit 803111c) these files held them in full, and
// ran unchanged on the base commit for docs/BENCHMARKS.md.
func BenchmarkStateWire(b *testing.B) {
	crdttest.BenchWire(b, "name", "names", benchState, "service-000000")
}
func BenchmarkStateDecode(b *testing.B) { crdttest.BenchDecode(b, "name", "names", benchState) }
func BenchmarkMergeState(b *testing.B)  { crdttest.BenchMergeState(b, "name", "names", benchState) }
func BenchmarkMergeDelta(b *testing.B)  { crdttest.BenchMergeDelta(b, benchState) }
