package node_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/process"
)

// BenchmarkNoConnection10k: 100 watcher processes on node A each monitor
// 100 processes on node B (10 000 monitors across one connection); B is
// closed as a crash would (no leave). The time runs from the crash until
// the last of the 10 000 DOWN noconnection has been handled by its
// watcher: detection (here the connection's loss, as B's links close)
// plus firing. One fresh pair of nodes per iteration; run with
// -benchtime 5x.
func BenchmarkNoConnection10k(b *testing.B) {
	const targets, watchers = 100, 100
	var samples []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		a, c := benchPair(b)
		var pids []process.PID
		for range targets {
			pid, err := c.Runtime().Spawn(benchEcho{})
			if err != nil {
				b.Fatal(err)
			}
			pids = append(pids, pid)
		}
		var fired, set atomic.Int64
		all := make(chan struct{})
		for range watchers {
			if _, err := a.Runtime().SpawnFunc(func(p *process.Proc) error {
				for _, pid := range pids {
					p.Monitor(pid)
				}
				set.Add(targets)
				for {
					m, err := p.Receive(context.Background())
					if err != nil {
						return err
					}
					if d, ok := m.(process.DownMsg); ok && d.Reason == process.NoConnection {
						if fired.Add(1) == targets*watchers {
							close(all)
						}
					}
				}
			}); err != nil {
				b.Fatal(err)
			}
		}
		// Every monitor registered on B before the crash.
		deadline := time.Now().Add(benchDeadline)
		for {
			n := 0
			for _, pid := range pids {
				if in, err := c.Runtime().Info(pid); err == nil {
					n += len(in.MonitoredBy)
				}
			}
			if n == targets*watchers && set.Load() == targets*watchers {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d monitors registered", n, targets*watchers)
			}
			time.Sleep(10 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		b.StartTimer()
		start := time.Now()
		_ = c.Close(ctx)
		select {
		case <-all:
		case <-time.After(benchDeadline):
			b.Fatalf("%d of %d DOWNs", fired.Load(), targets*watchers)
		}
		samples = append(samples, time.Since(start))
		b.StopTimer()
		cancel()
	}
	benchReportTrials(b, "fire10k", samples)
}
