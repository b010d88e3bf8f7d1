package sim_test

// BenchmarkForm5 compares the time to form a converged 5-node cluster on
// the simulated network with the same over loopback sockets (node.Start
// with the OS network): nodes start one after another, each given every
// earlier node as a seed, until every node sees all five alive. Each b.N
// iteration runs 10 trials and reports the median (p50) and the slowest;
// run it once:
//
//	go test ./sim -run '^$' -bench Form5 -benchtime 1x

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/sim"
)

const benchTrials = 10

func BenchmarkForm5(b *testing.B) {
	b.Run("sim", func(b *testing.B) {
		benchTrialsOf(b, func(ctx context.Context, trial int) (time.Duration, func()) {
			start := time.Now()
			c, err := sim.New(ctx, sim.Options{Nodes: 5, Seed: uint64(trial + 1)})
			if err != nil {
				b.Fatal(err)
			}
			return time.Since(start), c.Close
		})
	})
	b.Run("loopback", func(b *testing.B) {
		benchTrialsOf(b, func(ctx context.Context, trial int) (time.Duration, func()) {
			name := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), trial)
			var nodes []*node.Node
			stop := func() {
				for _, n := range nodes {
					cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					_ = n.Close(cctx)
					cancel()
				}
			}
			var seeds []string
			start := time.Now()
			for i := range 5 {
				cfg := node.Config{
					Name: fmt.Sprintf("n%d@127.0.0.1", i+1), Cluster: name, Secret: sim.DefaultSecret,
					Profile: cluster.ProfileFast, ExpectedSize: 5,
				}
				if len(seeds) > 0 {
					cfg.Discovery = cluster.StaticSeeds(seeds...)
				}
				n, err := node.Start(ctx, cfg)
				if err != nil {
					stop()
					b.Fatal(err)
				}
				nodes = append(nodes, n)
				seeds = append(seeds, n.Addr())
			}
			for _, n := range nodes {
				if err := n.Cluster().WaitConverged(ctx, 5); err != nil {
					stop()
					b.Fatal(err)
				}
			}
			return time.Since(start), stop
		})
	})
}

// benchTrialsOf runs benchTrials trials per iteration; each returns the
// time measured and a cleanup, which runs outside the measurement.
func benchTrialsOf(b *testing.B, trial func(ctx context.Context, i int) (time.Duration, func())) {
	var all []time.Duration
	for range b.N {
		for i := range benchTrials {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			d, cleanup := trial(ctx, i)
			b.StopTimer()
			cleanup()
			cancel()
			b.StartTimer()
			all = append(all, d)
		}
	}
	slices.Sort(all)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(all[len(all)/2]), "p50-ms")
	b.ReportMetric(ms(all[len(all)-1]), "max-ms")
	b.ReportMetric(0, "ns/op")
}
