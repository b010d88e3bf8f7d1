package node_test

import (
	"testing"

	"github.com/arsenal-go/arsenal/codec"
	"github.com/arsenal-go/arsenal/process"
)

// benchPayload is the 64-byte message of ../shared/bench/peers -p struct:
// eight int64 fields, registered with codec (so it travels as a compact
// record, see codec/record.go).
type benchPayload struct{ Seq, A, B, C, D, E, F, G int64 }

func init() { codec.MustRegister[benchPayload]("node_test.payload") }

// BenchmarkRemoteSend1to1Struct is BenchmarkRemoteSend1to1 with a
// benchPayload value instead of an int as the message. The sender paces
// itself (benchPace) as there: without it, a sender that outruns the link
// loses the connection (Overload) and the benchmark stalls.
func BenchmarkRemoteSend1to1Struct(b *testing.B) {
	a, c := benchPair(b)
	benchWarmLink(b, a, c)
	k := newBenchCounter(b.N)
	to, err := c.Runtime().Spawn(k)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := a.Runtime().SpawnFunc(func(p *process.Proc) error {
		for i := 0; i < b.N; i++ {
			benchPace(a, c.Name(), i)
			j := int64(i)
			p.Send(to, benchPayload{j, j + 1, j + 2, j + 3, j + 4, j + 5, j + 6, j + 7})
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	benchWaitAll(b, a, c, []*benchCounter{k})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	if d := a.Stats().Dropped.Load(); d > 0 {
		b.Errorf("sender node dropped %d frames", d)
	}
}
