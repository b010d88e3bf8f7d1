package sim_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/sim"
)

// The whole simulator runs inside a synctest bubble: every goroutine
// (memberlist's included) is started in it and blocks on its channels and
// timers, so time is virtual and advances whenever all of them wait. A
// crash, a partition and a heal take no wall-clock time. Remote calls are
// fine in a bubble; local Runtime.Call is avoided (see the package doc).
func TestInSynctestBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		c := sim.Start(t, sim.Options{Nodes: 5, Seed: 3, Synctest: true})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()

		pid, got := sink(t, c.Node(4))
		c.Node(0).Runtime().Send(pid, "hello")
		if m := <-got; m != "hello" {
			t.Fatalf("got %v", m)
		}

		c.Partition([]int{0, 1, 2}, []int{3, 4})
		for _, i := range []int{0, 1, 2} {
			must(t, c.WaitPartition(ctx, i, cluster.Partial))
		}
		for _, i := range []int{3, 4} {
			must(t, c.WaitPartition(ctx, i, cluster.Minority))
		}
		split := time.Since(start)
		c.Heal()
		must(t, c.WaitConverged(ctx))
		healed := time.Since(start)

		c.Kill(1)
		for _, i := range []int{0, 2, 3, 4} {
			must(t, c.WaitStatus(ctx, i, 1, cluster.StatusDead))
		}
		detected := time.Since(start)
		_, err := c.Restart(1)
		must(t, err)
		must(t, c.WaitConverged(ctx))
		t.Logf("virtual time: split seen at %v, healed at %v, crash seen at %v, restarted and converged at %v",
			split, healed, detected, time.Since(start))
		if typical, upper := c.CrashDetection(); time.Since(start) > 10*(typical+upper) {
			t.Fatalf("virtual time ran away: %v", time.Since(start))
		}
	})
}
