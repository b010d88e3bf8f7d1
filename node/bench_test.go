package node_test

// Benchmarks of nodes in one process, talking over real loopback sockets
// (node links over TCP, gossip over UDP and TCP). Results and the machine
// they were measured on are in docs/BENCHMARKS.md (section "Cluster").
//
// The throughput and call benchmarks are ordinary b.N benchmarks:
//
//	go test ./node -run '^$' -bench 'Remote' -count 3
//
// The benchmarks that start clusters run a fixed number of trials per b.N
// iteration and report percentiles with b.ReportMetric; run them once each:
//
//	go test ./node -run '^$' -bench 'JoinConvergence|CrashDetection' -benchtime 1x -count 3 -timeout 30m

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
)

var benchSecret = []byte("bench-secret-0123456789abcdef")

// benchDeadline bounds every wait in these benchmarks, so that a stall
// fails the benchmark with numbers instead of hanging it.
const benchDeadline = 2 * time.Minute

var benchClusterSeq atomic.Uint64

func benchClusterName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), benchClusterSeq.Add(1))
}

// benchStartNode starts one node on loopback with a discarding logger.
func benchStartNode(ctx context.Context, clusterName, name string, profile cluster.Profile, seeds ...string) (*node.Node, error) {
	cfg := node.Config{Name: name, Cluster: clusterName, Secret: benchSecret, Profile: profile}
	if len(seeds) > 0 {
		cfg.Discovery = cluster.StaticSeeds(seeds...)
	}
	return node.Start(ctx, cfg)
}

// benchStartNodes starts node 1 alone, then the others in parallel with
// node 1's address as their only static seed (what clustertest does with
// real processes). It does not wait for convergence.
func benchStartNodes(ctx context.Context, profile cluster.Profile, size int) ([]*node.Node, error) {
	cl := benchClusterName("bench")
	first, err := benchStartNode(ctx, cl, "b1@127.0.0.1", profile)
	if err != nil {
		return nil, err
	}
	nodes := make([]*node.Node, size)
	nodes[0] = first
	errs := make([]error, size)
	var wg sync.WaitGroup
	for i := 1; i < size; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = benchStartNode(ctx, cl, fmt.Sprintf("b%d@127.0.0.1", i+1), profile, first.Addr())
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		benchCloseNodes(nodes)
		return nil, err
	}
	return nodes, nil
}

// benchWaitConverged waits until every node sees size members alive.
func benchWaitConverged(ctx context.Context, nodes []*node.Node, size int) error {
	for _, n := range nodes {
		if err := n.Cluster().WaitConverged(ctx, size); err != nil {
			return fmt.Errorf("%s: %w", n.Name(), err)
		}
	}
	return nil
}

// benchCloseNodes closes every node that is not nil, in parallel.
func benchCloseNodes(nodes []*node.Node) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = n.Close(ctx)
		}()
	}
	wg.Wait()
}

// benchPair starts a converged two-node cluster (ProfileFast) that is
// closed when the benchmark ends.
func benchPair(b *testing.B) (a, c *node.Node) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchDeadline)
	defer cancel()
	nodes, err := benchStartNodes(ctx, cluster.ProfileFast, 2)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { benchCloseNodes(nodes) })
	if err := benchWaitConverged(ctx, nodes, 2); err != nil {
		b.Fatal(err)
	}
	return nodes[0], nodes[1]
}

// benchCounter counts the info messages it handles and closes done when it
// has seen want of them.
type benchCounter struct {
	process.Server
	want int
	seen atomic.Int64
	done chan struct{}
}

func newBenchCounter(want int) *benchCounter {
	return &benchCounter{want: want, done: make(chan struct{})}
}

func (c *benchCounter) HandleInfo(*process.Proc, any) error {
	if c.seen.Add(1) == int64(c.want) {
		close(c.done)
	}
	return nil
}

// benchEcho answers every call with its request.
type benchEcho struct{ process.Server }

func (benchEcho) HandleCall(_ *process.Proc, _ process.From, req any) (any, error) { return req, nil }

// benchWarmLink sends one message from a to a process on c and waits for
// it, so the link from a to c is dialled before the clock starts (frames
// sent while the link is being dialled are queued, and the dial is not
// what these benchmarks measure).
func benchWarmLink(b *testing.B, a, c *node.Node) {
	b.Helper()
	w := newBenchCounter(1)
	pid, err := c.Runtime().Spawn(w)
	if err != nil {
		b.Fatal(err)
	}
	a.Runtime().Send(pid, 0)
	select {
	case <-w.done:
	case <-time.After(benchDeadline):
		b.Fatalf("warm-up message from %s to %s never arrived", a.Name(), c.Name())
	}
	_ = c.Runtime().Kill(pid)
}

// benchWaitAll waits until every counter is done, or fails with what was
// delivered and what the nodes dropped.
func benchWaitAll(b *testing.B, a, c *node.Node, counters []*benchCounter) {
	b.Helper()
	deadline := time.After(benchDeadline)
	for _, k := range counters {
		select {
		case <-k.done:
		case <-deadline:
			var seen int64
			for _, k := range counters {
				seen += k.seen.Load()
			}
			b.Fatalf("stalled: %d messages handled of %d; sender %s: sent %d frames, dropped %d; receiver %s: received %d frames, %d bad",
				seen, len(counters)*counters[0].want, a.Name(), a.Stats().FramesSent.Load(), a.Stats().Dropped.Load(),
				c.Name(), c.Stats().FramesReceived.Load(), c.Stats().BadFrames.Load())
		}
	}
}

// benchPace makes a bulk sender wait while more than 4 MiB are queued for
// node: Send never waits, and past Config.SendQueueBytes (16 MiB) the
// connection would be lost (node/doc.go, Overload), so a sender that can
// outrun the link paces itself, as any bulk sender must. Before issue 10,
// Send blocked the sender at 16 MiB instead.
func benchPace(a *node.Node, to string, i int) {
	if i&1023 != 0 {
		return
	}
	for a.QueuedBytes(to) > 4<<20 {
		time.Sleep(100 * time.Microsecond)
	}
}

// BenchmarkRemoteSend1to1: one sender process on node A sends b.N small
// integers to one receiver process on node B over the node link; the clock
// stops when the receiver has handled all of them (end to end, not enqueue
// rate). The sender paces itself (benchPace). Compare ergo's network ping
// 1→1 (1.11M msg/s on this kind of machine, go-anchors §3.2).
func BenchmarkRemoteSend1to1(b *testing.B) { benchRemote1to1(b, func(i int) any { return i }) }

// benchRemote1to1 runs the 1→1 remote workload with msg(i) as message i.
func benchRemote1to1(b *testing.B, msg func(i int) any) {
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
			p.Send(to, msg(i))
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

// BenchmarkRemoteSendNtoN: GOMAXPROCS sender processes on node A, each
// sending to its own receiver on node B; every pair shares the one A→B
// node link. b.N is the total number of messages; each sender paces
// itself (benchPace).
func BenchmarkRemoteSendNtoN(b *testing.B) {
	a, c := benchPair(b)
	benchWarmLink(b, a, c)
	pairs := runtime.GOMAXPROCS(0)
	per := (b.N + pairs - 1) / pairs
	counters := make([]*benchCounter, pairs)
	targets := make([]process.PID, pairs)
	for i := range counters {
		counters[i] = newBenchCounter(per)
		pid, err := c.Runtime().Spawn(counters[i])
		if err != nil {
			b.Fatal(err)
		}
		targets[i] = pid
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, to := range targets {
		if _, err := a.Runtime().SpawnFunc(func(p *process.Proc) error {
			for j := 0; j < per; j++ {
				benchPace(a, c.Name(), j)
				p.Send(to, j)
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	benchWaitAll(b, a, c, counters)
	b.StopTimer()
	b.ReportMetric(float64(per*pairs)/b.Elapsed().Seconds(), "msg/s")
	b.ReportMetric(float64(pairs), "pairs")
	if d := a.Stats().Dropped.Load(); d > 0 {
		b.Errorf("sender node dropped %d frames", d)
	}
}

// BenchmarkRemoteCall: sequential Call round trips from node A to an echo
// process on node B (request and reply each cross a node link).
func BenchmarkRemoteCall(b *testing.B) {
	a, c := benchPair(b)
	pid, err := c.Runtime().Spawn(benchEcho{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// Both links (A→B for the request, B→A for the reply) are dialled by
	// the first call; keep that out of the measurement.
	if _, err := a.Runtime().Call(ctx, pid, -1); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Runtime().Call(ctx, pid, i); err != nil {
			b.Fatalf("call %d: %v", i, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// benchPercentile is the nearest-rank percentile of sorted samples: p99 of
// 20 samples is the largest.
func benchPercentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100 + 0.999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func benchMs(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// benchReportTrials reports p50, p99 and max of samples in milliseconds,
// and logs every sample (visible with -v, or when the benchmark fails).
func benchReportTrials(b *testing.B, prefix string, samples []time.Duration) {
	b.Helper()
	s := slices.Clone(samples)
	slices.Sort(s)
	b.ReportMetric(benchMs(benchPercentile(s, 50)), prefix+"p50-ms")
	b.ReportMetric(benchMs(benchPercentile(s, 99)), prefix+"p99-ms")
	b.ReportMetric(benchMs(s[len(s)-1]), prefix+"max-ms")
	b.ReportMetric(float64(len(s)), prefix+"trials")
	b.Logf("%strials (ms, in run order): %v", prefix, benchMsList(samples))
}

func benchMsList(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = benchMs(d)
	}
	return out
}

// BenchmarkJoinConvergence5InProcess: five nodes in one process (Fast
// profile, loopback). Node 1 starts alone, then nodes 2–5 start in parallel
// with node 1's address as their static seed. The time runs from the
// first Start until every node sees five members alive. 20 trials per b.N
// iteration; run with -benchtime 1x. Compare the 15–30 s anti-entropy tail
// of plain memberlist joins (go-anchors §4.3).
func BenchmarkJoinConvergence5InProcess(b *testing.B) {
	const size, trials = 5, 20
	var samples []time.Duration
	for i := 0; i < b.N; i++ {
		for range trials {
			ctx, cancel := context.WithTimeout(context.Background(), benchDeadline)
			start := time.Now()
			nodes, err := benchStartNodes(ctx, cluster.ProfileFast, size)
			if err != nil {
				cancel()
				b.Fatal(err)
			}
			err = benchWaitConverged(ctx, nodes, size)
			took := time.Since(start)
			cancel()
			benchCloseNodes(nodes)
			if err != nil {
				b.Fatalf("trial %d: %v", len(samples)+1, err)
			}
			samples = append(samples, took)
		}
	}
	b.StopTimer()
	benchReportTrials(b, "", samples)
}

// BenchmarkCrashDetection: per profile, three nodes; node 3 is closed
// without leaving (Node.Close: its sockets go first, as in a crash) and
// the time runs until both survivors have declared it dead (a NodeDown
// event on each). 5 trials per profile per b.N iteration; run with
// -benchtime 1x. The estimate metrics are ProfileSettings.CrashDetection(3)
// for comparison.
func BenchmarkCrashDetection(b *testing.B) {
	for _, p := range []cluster.Profile{cluster.ProfileFast, cluster.ProfileLocal, cluster.ProfileLAN} {
		b.Run(string(p), func(b *testing.B) { benchCrashDetection(b, p) })
	}
}

func benchCrashDetection(b *testing.B, profile cluster.Profile) {
	const size, trials = 3, 5
	var all, first []time.Duration
	for i := 0; i < b.N; i++ {
		for range trials {
			allDead, firstDead, err := benchCrashTrial(profile, size)
			if err != nil {
				b.Fatalf("%s trial %d: %v", profile, len(all)+1, err)
			}
			all = append(all, allDead)
			first = append(first, firstDead)
		}
	}
	b.StopTimer()
	benchReportTrials(b, "", all)
	s := slices.Clone(first)
	slices.Sort(s)
	b.ReportMetric(benchMs(benchPercentile(s, 50)), "first-p50-ms")
	typical, upper := profile.Settings().CrashDetection(size)
	b.ReportMetric(benchMs(typical), "est-typical-ms")
	b.ReportMetric(benchMs(upper), "est-upper-ms")
}

// benchCrashTrial forms a cluster, crashes its last node and returns when
// every survivor, and the first survivor, declared it dead.
func benchCrashTrial(profile cluster.Profile, size int) (allDead, firstDead time.Duration, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), benchDeadline)
	defer cancel()
	nodes, err := benchStartNodes(ctx, profile, size)
	if err != nil {
		return 0, 0, err
	}
	defer benchCloseNodes(nodes)
	if err := benchWaitConverged(ctx, nodes, size); err != nil {
		return 0, 0, err
	}
	victim, survivors := nodes[size-1], nodes[:size-1]
	type seen struct {
		at  time.Time
		err error
	}
	results := make(chan seen, len(survivors))
	var wg sync.WaitGroup
	for _, s := range survivors {
		events, unsubscribe := s.Cluster().Subscribe(256)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer unsubscribe()
			for {
				select {
				case ev, ok := <-events:
					if !ok {
						results <- seen{err: fmt.Errorf("%s: event feed closed", s.Name())}
						return
					}
					if ev.Node == victim.Name() && ev.Type == cluster.NodeDown {
						results <- seen{at: time.Now()}
						return
					}
				case <-ctx.Done():
					results <- seen{err: fmt.Errorf("%s never declared %s dead: %w", s.Name(), victim.Name(), ctx.Err())}
					return
				}
			}
		}()
	}
	crashed := time.Now()
	closeCtx, closeCancel := context.WithTimeout(ctx, 30*time.Second)
	_ = victim.Close(closeCtx)
	closeCancel()
	wg.Wait()
	close(results)
	var last, earliest time.Time
	for r := range results {
		if r.err != nil {
			return 0, 0, r.err
		}
		if last.IsZero() || r.at.After(last) {
			last = r.at
		}
		if earliest.IsZero() || r.at.Before(earliest) {
			earliest = r.at
		}
	}
	return last.Sub(crashed), earliest.Sub(crashed), nil
}
