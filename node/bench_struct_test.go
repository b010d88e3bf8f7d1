package node_test

import (
	"testing"

	"github.com/arsenal-go/arsenal/codec"
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
	benchRemote1to1(b, func(i int) any {
		j := int64(i)
		return benchPayload{j, j + 1, j + 2, j + 3, j + 4, j + 5, j + 6, j + 7}
	})
}
