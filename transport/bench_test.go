package transport

import (
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkLinkThroughput measures one-way throughput of 64-byte frames over
// one loopback link, from one sending goroutine, until the last frame has
// been delivered to the receiver's handler.
func BenchmarkLinkThroughput(b *testing.B) {
	var received atomic.Int64
	a := startNode(b, "a", nil)
	srv := startNode(b, "b", func(c *Config) {
		c.OnLink = func(l *Link) { l.SetHandler(func([]byte) { received.Add(1) }) }
	})
	l := dial(b, a, srv)
	frame := make([]byte, 64)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := l.Send(frame); err != nil {
			b.Fatal(err)
		}
	}
	waitFor(b, time.Minute, func() bool { return received.Load() == int64(b.N) }, "all frames delivered")
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "frames/s")
}

// BenchmarkLinkRoundTrip measures request/response latency: a 64-byte frame
// to the peer, which echoes it back.
func BenchmarkLinkRoundTrip(b *testing.B) {
	a := startNode(b, "a", nil)
	srv := startNode(b, "b", func(c *Config) {
		c.OnLink = func(l *Link) { l.SetHandler(func(f []byte) { l.Send(f) }) }
	})
	l := dial(b, a, srv)
	replies := make(chan struct{}, 1)
	l.SetHandler(func([]byte) { replies <- struct{}{} })
	frame := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := l.Send(frame); err != nil {
			b.Fatal(err)
		}
		<-replies
	}
}
