package process_test

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/process"
)

// counter counts info messages and signals when it has seen `want`.
type counter struct {
	process.Server
	n    int
	want int
	done chan struct{}
}

func (c *counter) HandleInfo(_ *process.Proc, _ any) error {
	c.n++
	if c.n == c.want {
		close(c.done)
	}
	return nil
}

// BenchmarkSend1to1 measures end-to-end async throughput from one sender
// process to one receiver: the clock stops when the receiver has handled
// every message, not when the sender has enqueued them.
func BenchmarkSend1to1(b *testing.B) {
	rt := newRT(b)
	c := &counter{want: b.N, done: make(chan struct{})}
	to, _ := rt.Spawn(c)
	b.ReportAllocs()
	b.ResetTimer()
	_, _ = rt.SpawnFunc(func(p *process.Proc) error {
		for i := 0; i < b.N; i++ {
			p.Send(to, i)
		}
		return nil
	})
	<-c.done
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

// BenchmarkSendNtoN: N = GOMAXPROCS independent sender→receiver pairs.
func BenchmarkSendNtoN(b *testing.B) {
	rt := newRT(b)
	pairs := runtime.GOMAXPROCS(0)
	per := b.N/pairs + 1
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < pairs; i++ {
		c := &counter{want: per, done: make(chan struct{})}
		to, _ := rt.Spawn(c)
		wg.Add(1)
		go func() { defer wg.Done(); <-c.done }()
		_, _ = rt.SpawnFunc(func(p *process.Proc) error {
			for j := 0; j < per; j++ {
				p.Send(to, j)
			}
			return nil
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(per*pairs)/b.Elapsed().Seconds(), "msg/s")
}

// BenchmarkCallRoundTrip: one caller, one callee, sequential calls.
func BenchmarkCallRoundTrip(b *testing.B) {
	rt := newRT(b)
	pid, _ := rt.Spawn(&echo{})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := rt.Call(ctx, pid, i); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallRoundTripFromProcess: the caller is itself a process.
func BenchmarkCallRoundTripFromProcess(b *testing.B) {
	rt := newRT(b)
	pid, _ := rt.Spawn(&echo{})
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	_, _ = rt.SpawnFunc(func(p *process.Proc) error {
		ctx := context.Background()
		for i := 0; i < b.N; i++ {
			if _, err := p.Call(ctx, pid, i); err != nil {
				done <- err
				return err
			}
		}
		done <- nil
		return nil
	})
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

type idle struct{ process.Server }

// BenchmarkSpawn: spawn rate from a single spawner (Init included).
func BenchmarkSpawn(b *testing.B) {
	rt := newRT(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := rt.Spawn(&idle{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "spawns/s")
}

var sinkPID atomic.Value

// BenchmarkIdleProcessMemory reports the heap bytes held per idle process
// after spawning 100,000 of them (goroutine stacks included: an idle
// behaviour process has none).
func BenchmarkIdleProcessMemory(b *testing.B) {
	const n = 100_000
	for i := 0; i < b.N; i++ {
		rt, _ := process.NewRuntime(process.Config{Node: "mem@localhost"})
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for j := 0; j < n; j++ {
			pid, err := rt.Spawn(&idle{})
			if err != nil {
				b.Fatal(err)
			}
			if j == 0 {
				sinkPID.Store(pid)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		used := (after.HeapInuse + after.StackInuse) - (before.HeapInuse + before.StackInuse)
		b.ReportMetric(float64(used)/n, "bytes/process")
		_ = rt.Shutdown(context.Background())
	}
}

// sendPairs runs pairs sender→receiver pairs with `senders` senders per
// receiver; every sender is a behaviour that sends its share when told to
// go, as in ../shared/bench/peers.
func sendPairs(b *testing.B, receivers, senders int) {
	rt := newRT(b)
	per := b.N/(receivers*senders) + 1
	var wg sync.WaitGroup
	var starters []process.PID
	for i := 0; i < receivers; i++ {
		c := &counter{want: per * senders, done: make(chan struct{})}
		to, _ := rt.Spawn(c)
		wg.Add(1)
		go func() { defer wg.Done(); <-c.done }()
		for j := 0; j < senders; j++ {
			s, _ := rt.Spawn(&burst{to: to, n: per})
			starters = append(starters, s)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, s := range starters {
		rt.Send(s, struct{}{})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(per*receivers*senders)/b.Elapsed().Seconds(), "msg/s")
}

// burst sends n ints to `to` when it gets any message.
type burst struct {
	process.Server
	to process.PID
	n  int
}

func (s *burst) HandleInfo(p *process.Proc, _ any) error {
	for i := 0; i < s.n; i++ {
		p.Send(s.to, i)
	}
	return nil
}

// BenchmarkSendNtoN100: 100 independent pairs of behaviours.
func BenchmarkSendNtoN100(b *testing.B) { sendPairs(b, 100, 1) }

// BenchmarkSendPairsProcs: GOMAXPROCS pairs of behaviours.
func BenchmarkSendPairsProcs(b *testing.B) { sendPairs(b, runtime.GOMAXPROCS(0), 1) }

// BenchmarkFanIn100: 100 sender behaviours, one receiver.
func BenchmarkFanIn100(b *testing.B) { sendPairs(b, 1, 100) }

// BenchmarkPingWhileFlooded measures fairness: 100 sender behaviours
// flood one receiver without pause while the benchmark calls a quiet echo
// process, b.N sequential calls from outside any process. It reports the
// median and the 99th and 99.9th percentiles of the call latency; without load on the
// receiver's side they would be those of BenchmarkCallRoundTrip.
func BenchmarkPingWhileFlooded(b *testing.B) {
	rt := newRT(b)
	sink, _ := rt.Spawn(&counter{want: -1, done: make(chan struct{})})
	var stop atomic.Bool
	for i := 0; i < 100; i++ {
		s, _ := rt.Spawn(&flooder{to: sink, stop: &stop})
		rt.Send(s, struct{}{})
	}
	quiet, _ := rt.Spawn(&echo{})
	ctx := context.Background()
	for i := 0; i < 100; i++ { // the flood is under way
		_, _ = rt.Call(ctx, quiet, i)
	}
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := rt.Call(ctx, quiet, i); err != nil {
			b.Fatal(err)
		}
		lat[i] = time.Since(t0)
	}
	b.StopTimer()
	stop.Store(true)
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(float64(lat[len(lat)*999/1000].Nanoseconds())/1e3, "p99.9-µs")
}

// flooder sends to `to` in batches of 1,000 until stop, re-arming itself
// with a message after each batch.
type flooder struct {
	process.Server
	to   process.PID
	stop *atomic.Bool
}

func (f *flooder) HandleInfo(p *process.Proc, _ any) error {
	if f.stop.Load() {
		return nil
	}
	for i := 0; i < 1000; i++ {
		p.Send(f.to, i)
	}
	p.Send(p.Self(), struct{}{})
	return nil
}

// BenchmarkSendBehaviour1to1: one sender behaviour → one receiver, as in
// ../shared/bench/peers send1to1.
func BenchmarkSendBehaviour1to1(b *testing.B) { sendPairs(b, 1, 1) }

// stopper counts its Terminate calls.
type stopper struct {
	process.Server
	stops *atomic.Int64
}

func (s *stopper) Terminate(*process.Proc, process.Reason) { s.stops.Add(1) }

// BenchmarkStop: exit signals (Shutdown) from outside to b.N idle
// processes; the clock stops when every Terminate has run (the peers'
// "stop" cell).
func BenchmarkStop(b *testing.B) {
	rt := newRT(b)
	var stops atomic.Int64
	pids := make([]process.PID, b.N)
	for i := range pids {
		pids[i], _ = rt.Spawn(&stopper{stops: &stops})
	}
	b.ResetTimer()
	for _, pid := range pids {
		rt.Exit(pid, process.Shutdown)
	}
	for stops.Load() < int64(b.N) {
		runtime.Gosched()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "stops/s")
}
