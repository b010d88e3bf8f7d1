package process_test

// The physical limit in view: the same workloads as BenchmarkSend1to1,
// BenchmarkSendPairsProcs, BenchmarkSendNtoN100 and BenchmarkFanIn100,
// with plain goroutines instead of processes, passing the same boxed int,
// through (a) a buffered Go channel and (b) a bounded lock-free ring
// (Vyukov's MPMC queue with per-slot sequence numbers, used here with many
// producers and one consumer). Neither has what a mailbox needs (no
// growth without bound, no exit signals, no calls, no introspection, a
// goroutine per receiver even when idle); they show what moving a message
// between goroutines costs on this machine. See docs/BENCHMARKS.md.

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

const baselineBuf = 1024

// ring is a bounded MPMC queue of boxed values (Vyukov).
type ring struct {
	_     [64]byte
	enq   atomic.Uint64
	_     [56]byte
	deq   atomic.Uint64
	_     [56]byte
	mask  uint64
	slots []ringSlot
}

type ringSlot struct {
	seq atomic.Uint64
	v   any
}

func newRing(n int) *ring {
	r := &ring{mask: uint64(n - 1), slots: make([]ringSlot, n)}
	for i := range r.slots {
		r.slots[i].seq.Store(uint64(i))
	}
	return r
}

// push spins (yielding) while the ring is full.
func (r *ring) push(v any) {
	for {
		pos := r.enq.Load()
		s := &r.slots[pos&r.mask]
		seq := s.seq.Load()
		switch {
		case seq == pos:
			if r.enq.CompareAndSwap(pos, pos+1) {
				s.v = v
				s.seq.Store(pos + 1)
				return
			}
		case seq < pos:
			runtime.Gosched() // full
		}
	}
}

// pop spins (yielding) while the ring is empty; one consumer.
func (r *ring) pop() any {
	for {
		pos := r.deq.Load()
		s := &r.slots[pos&r.mask]
		if s.seq.Load() == pos+1 {
			v := s.v
			s.v = nil
			r.deq.Store(pos + 1)
			s.seq.Store(pos + r.mask + 1)
			return v
		}
		runtime.Gosched() // empty
	}
}

// baseline runs receivers×senders goroutine pairs through send/recv.
func baseline(b *testing.B, receivers, senders int, mk func() (send func(any), recv func() any)) {
	per := b.N/(receivers*senders) + 1
	var wg sync.WaitGroup
	var sum atomic.Int64
	start := make(chan struct{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < receivers; i++ {
		send, recv := mk()
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for j := 0; j < per*senders; j++ {
				n += recv().(int) & 1
			}
			sum.Add(int64(n))
		}()
		for j := 0; j < senders; j++ {
			go func() {
				<-start
				for k := 0; k < per; k++ {
					send(k)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(per*receivers*senders)/b.Elapsed().Seconds(), "msg/s")
}

func chanPair() (func(any), func() any) {
	ch := make(chan any, baselineBuf)
	return func(v any) { ch <- v }, func() any { return <-ch }
}

func ringPair() (func(any), func() any) {
	r := newRing(baselineBuf)
	return r.push, r.pop
}

func BenchmarkBaselineChan1to1(b *testing.B)  { baseline(b, 1, 1, chanPair) }
func BenchmarkBaselineChanPairs(b *testing.B) { baseline(b, runtime.GOMAXPROCS(0), 1, chanPair) }
func BenchmarkBaselineChan100(b *testing.B)   { baseline(b, 100, 1, chanPair) }
func BenchmarkBaselineChanFanIn(b *testing.B) { baseline(b, 1, 100, chanPair) }
func BenchmarkBaselineRing1to1(b *testing.B)  { baseline(b, 1, 1, ringPair) }
func BenchmarkBaselineRingPairs(b *testing.B) { baseline(b, runtime.GOMAXPROCS(0), 1, ringPair) }
func BenchmarkBaselineRing100(b *testing.B)   { baseline(b, 100, 1, ringPair) }
func BenchmarkBaselineRingFanIn(b *testing.B) { baseline(b, 1, 100, ringPair) }
