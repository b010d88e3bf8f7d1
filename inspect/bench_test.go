package inspect_test

import (
	"testing"

	"github.com/arsenal-go/arsenal/codec"
	"github.com/arsenal-go/arsenal/inspect"
	"github.com/arsenal-go/arsenal/process"
)

// BenchmarkLocalProcesses10k: one node's share of a cluster-wide list:
// filter, sort and encode the first 100 of 10,000 processes.
func BenchmarkLocalProcesses10k(b *testing.B) {
	rt, _ := process.NewRuntime(process.Config{Node: "bench@127.0.0.1"})
	defer rt.Shutdown(bg)
	for i := 0; i < 10000; i++ {
		_, _ = rt.Spawn(worker{})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := inspect.LocalProcesses(rt, inspect.Filter{Limit: 100})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := codec.Marshal(p); err != nil {
			b.Fatal(err)
		}
	}
}
