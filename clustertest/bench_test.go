package clustertest_test

// Benchmarks of real `arsenal node` processes on loopback, started by the
// harness. Each runs a fixed number of trials per b.N iteration and reports
// percentiles with b.ReportMetric; run them once each, without tests:
//
//	go test ./clustertest -run '^$' -bench 'Real' -benchtime 1x -count 3 -timeout 30m
//
// They set ARSENAL_TEST_NORACE=1 before the binary is built, so the nodes
// run without the race detector. That only works when no test in the same
// run built the binary first (hence -run '^$'); each benchmark logs a
// warning when the binary it measures was built with -race. -short skips
// them.

import (
	"bytes"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/clustertest"
)

// benchTrialTB is the benchmark's testing.TB with its own cleanups, so each
// trial's node processes are killed (and the harness's leak checks run)
// when the trial ends instead of piling up until the benchmark returns.
type benchTrialTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

func (t *benchTrialTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// finish runs the trial's cleanups, last registered first.
func (t *benchTrialTB) finish() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// benchTrial runs fn with a fresh trial TB and always cleans up after it,
// also when fn fails the benchmark (FailNow exits through the defer).
func benchTrial(b *testing.B, fn func(t *benchTrialTB)) {
	b.Helper()
	t := &benchTrialTB{TB: b}
	defer t.finish()
	fn(t)
}

// benchPrepare skips under -short and builds the node binary without the
// race detector (outside the timed trials).
func benchPrepare(b *testing.B) {
	b.Helper()
	if testing.Short() {
		b.Skip("real-process benchmark: skipped with -short")
	}
	b.Setenv("ARSENAL_TEST_NORACE", "1")
	bin := clustertest.Binary(b)
	out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	switch {
	case err != nil:
		b.Logf("cannot inspect %s: %v: %s", bin, err, out)
	case bytes.Contains(out, []byte("-race=true")):
		b.Logf("WARNING: %s was built with -race (a test built it before this benchmark); numbers are slower than a release build", bin)
	}
}

func benchPercentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100 + 0.999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func benchMs(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// reportTrials reports p50, p99 (nearest rank: the largest of 20 samples)
// and max in milliseconds, and logs every sample in run order.
func benchReportTrials(b *testing.B, prefix string, samples []time.Duration) {
	b.Helper()
	s := slices.Clone(samples)
	slices.Sort(s)
	b.ReportMetric(benchMs(benchPercentile(s, 50)), prefix+"p50-ms")
	b.ReportMetric(benchMs(benchPercentile(s, 99)), prefix+"p99-ms")
	b.ReportMetric(benchMs(s[len(s)-1]), prefix+"max-ms")
	list := make([]float64, len(samples))
	for i, d := range samples {
		list[i] = benchMs(d)
	}
	b.Logf("%strials (ms, in run order): %v", prefix, list)
}

// BenchmarkRealJoinConvergence5: 20 clusters of five real node processes
// (Fast profile). The time runs from clustertest.Start (node 1 starts
// alone, then nodes 2–5 in parallel with node 1 as their seed) until the
// harness sees every node report all five alive over the control channel
// (it polls, 1 ms doubling to 50 ms). "launch" is the part until every
// process has reported ready. Target: p99 under 1 s.
func BenchmarkRealJoinConvergence5(b *testing.B) {
	benchPrepare(b)
	const size, trials = 5, 20
	var total, launch []time.Duration
	for i := 0; i < b.N; i++ {
		for range trials {
			benchTrial(b, func(t *benchTrialTB) {
				start := time.Now()
				c := clustertest.Start(t, size, clustertest.Options{NoWait: true})
				launched := time.Since(start)
				c.WaitConverged(30 * time.Second)
				total = append(total, time.Since(start))
				launch = append(launch, launched)
			})
		}
	}
	b.StopTimer()
	benchReportTrials(b, "", total)
	benchReportTrials(b, "launch-", launch)
	b.ReportMetric(float64(len(total)), "trials")
}

// BenchmarkRealHeal: five real nodes (Fast profile) are cut 3|2 with the
// fault hook, both ways. Once every node sees the other side dead, the
// faults are cleared and the time runs until every node sees all five
// alive again. "split-" is the time from the cut until both sides saw the
// split. A fresh cluster per trial, five trials per b.N iteration.
func BenchmarkRealHeal(b *testing.B) {
	benchPrepare(b)
	const size, trials = 5, 5
	sides := [][]int{{0, 1, 2}, {3, 4}}
	var heal, split []time.Duration
	for i := 0; i < b.N; i++ {
		for range trials {
			benchTrial(b, func(t *benchTrialTB) {
				c := clustertest.Start(t, size, clustertest.Options{})
				cut := time.Now()
				c.Partition(sides...)
				c.Eventually(60*time.Second, func() bool { return splitSeen(c, sides) }, "the 3|2 split was not seen by every node")
				split = append(split, time.Since(cut))
				healed := time.Now()
				c.Heal()
				c.WaitConverged(60 * time.Second)
				heal = append(heal, time.Since(healed))
			})
		}
	}
	b.StopTimer()
	benchReportTrials(b, "", heal)
	benchReportTrials(b, "split-", split)
	b.ReportMetric(float64(len(heal)), "trials")
}

// splitSeen reports whether every node sees each node of the other side
// as dead (not alive, not suspect).
func splitSeen(c *clustertest.Cluster, sides [][]int) bool {
	for si, side := range sides {
		for _, i := range side {
			members, err := c.Node(i).Members()
			if err != nil {
				return false
			}
			status := map[string]string{}
			for _, m := range members {
				status[m.Name] = m.Status
			}
			for sj, other := range sides {
				if sj == si {
					continue
				}
				for _, j := range other {
					if s := status[c.Node(j).Name]; s != "dead" {
						return false
					}
				}
			}
		}
	}
	return true
}
