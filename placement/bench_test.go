package placement

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
)

// BenchmarkFailover measures, on 4 in-process nodes with the fast profile
// and the default StableAfter and RemovalMargin for it, the time from the
// crash of a node to the restart of its child on a survivor, and the part
// of it that is failure detection (until the survivor that restarts the
// child declares the node dead). Each iteration starts a fresh cluster;
// run it with -benchtime=Nx.
func BenchmarkFailover(b *testing.B) {
	var total, detect []time.Duration
	for range b.N {
		b.StopTimer()
		tc := startCluster(b, 4, Config{})
		victim := tc.members[3]
		if _, err := victim.pl.StartChild(context.Background(), ChildSpec{ID: "f", Kind: "test-worker", Strategy: Local}); err != nil {
			b.Fatal(err)
		}
		// Every survivor knows the child before the crash.
		for _, m := range tc.members[:3] {
			for {
				if _, ok := m.pl.Whereis("f"); ok {
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
		var feeds []<-chan cluster.Event
		for _, m := range tc.members[:3] {
			ch, cancel := m.n.Cluster().Subscribe(1024)
			defer cancel()
			feeds = append(feeds, ch)
		}
		b.StartTimer()
		crash := time.Now()
		tc.crash(victim)
		var restartedOn int
		var restarted time.Time
	wait:
		for {
			for i, m := range tc.members[:3] {
				for _, e := range m.history() {
					if e.Type == Started && e.ID == "f" && e.Time.After(crash) {
						restartedOn, restarted = i, e.Time
						break wait
					}
				}
			}
			if time.Since(crash) > time.Minute {
				b.Fatal("child not restarted within a minute")
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.StopTimer()
		var down time.Time
		for e := range drain(feeds[restartedOn]) {
			if e.Type == cluster.NodeDown && e.Node == victim.n.Name() {
				down = e.Time
				break
			}
		}
		total = append(total, restarted.Sub(crash))
		detect = append(detect, down.Sub(crash))
		tc.close()
	}
	slices.Sort(total)
	slices.Sort(detect)
	b.ReportMetric(float64(total[len(total)/2].Milliseconds()), "failover-p50-ms")
	b.ReportMetric(float64(total[len(total)-1].Milliseconds()), "failover-max-ms")
	b.ReportMetric(float64(detect[len(detect)/2].Milliseconds()), "detect-p50-ms")
	b.ReportMetric(0, "ns/op")
}

// drain yields what is queued on ch now.
func drain(ch <-chan cluster.Event) func(func(cluster.Event) bool) {
	return func(yield func(cluster.Event) bool) {
		for {
			select {
			case e := <-ch:
				if !yield(e) {
					return
				}
			default:
				return
			}
		}
	}
}
