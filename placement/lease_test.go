package placement

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/registry"
	"github.com/arsenal-go/arsenal/transport"
)

// Placing a child right after the cluster formed succeeds: every node
// starts its placement at once, before it has seen the others (so its
// first view is forming, not minority), and a start on each node, as soon
// as it sees every member, is accepted.
func TestPlaceRightAfterFormation(t *testing.T) {
	const size = 3
	name := fmt.Sprintf("plf%d", time.Now().UnixNano())
	tc := &testCluster{t: t}
	t.Cleanup(tc.close)
	var seed string
	for i := range size {
		f := transport.NewFaults()
		ncfg := node.Config{
			Name: fmt.Sprintf("n%d@127.0.0.1", i+1), Cluster: name, Secret: testSecret, Profile: cluster.ProfileFast,
			ExpectedSize: size, Faults: f, FactsInterval: time.Second, Logger: slog.New(slog.DiscardHandler),
		}
		if seed != "" {
			ncfg.Discovery = cluster.StaticSeeds(seed)
		}
		n, err := node.Start(context.Background(), ncfg)
		if err != nil {
			t.Fatal(err)
		}
		if seed == "" {
			seed = n.Addr()
		}
		// StableAfter far above the test's waits: a decision that had to
		// wait for a stable view would refuse the starts below.
		reg, err := registry.Start(n.Runtime(), n.Cluster(), registry.Config{})
		if err != nil {
			t.Fatal(err)
		}
		pl, err := Start(n, Config{StableAfter: time.Minute, ReconcileInterval: 50 * time.Millisecond, Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		m := &member{n: n, faults: f, pl: pl, reg: reg}
		tc.members = append(tc.members, m)
		if i == 0 {
			if st := pl.Status(); st.Up || !strings.HasPrefix(st.Reason, "forming") {
				t.Errorf("first node alone of %d: %+v, want down while forming", size, st)
			}
		}
	}
	for i, m := range tc.members {
		testutil.Eventually(t, wait, func() bool { return m.n.Cluster().Topology().Alive == size }, "%s did not see %d members", m.n.Name(), size)
		c, err := m.pl.StartChild(context.Background(), ChildSpec{ID: fmt.Sprintf("early-%d", i), Kind: "test-worker", Strategy: Local})
		if err != nil {
			t.Fatalf("a start on %s right after formation: %v", m.n.Name(), err)
		}
		if c.PID.IsZero() || c.Node != m.n.Name() {
			t.Errorf("start on %s: %+v", m.n.Name(), c)
		}
	}
}

// A node cut off from every other (gossip and node links) while it owns
// children loses its lease and stops them before any other node starts
// one, although memberlist on its side notices later than the others.
func TestIsolatedOwnerStopsFirst(t *testing.T) {
	tc := startCluster(t, 3, fastCfg)
	x := tc.members[2]
	ids := startLocalChildren(t, tc, x, "iso", 4)
	cut := time.Now()
	tc.partition([]int{0, 1}, []int{2})
	testutil.Eventually(t, wait, func() bool {
		if len(x.pl.LocalPIDs()) != 0 {
			return false
		}
		for _, c := range tc.members[0].pl.Children() {
			if c.Status != "running" || c.Node == x.n.Name() {
				return false
			}
		}
		return true
	}, "the isolated node did not stop, or the others did not take over")
	// The feeds deliver the events asynchronously: wait until every
	// takeover's start is in the histories.
	testutil.Eventually(t, wait, func() bool {
		n := 0
		for _, m := range tc.members[:2] {
			for _, e := range m.history() {
				if e.Type == Started && e.Time.After(cut) {
					n++
				}
			}
		}
		stops := 0
		for _, e := range x.history() {
			if e.Type == Stopped && e.Time.After(cut) {
				stops++
			}
		}
		return n >= len(ids) && stops >= len(ids)
	}, "the takeovers' start events, or the isolated node's stop events, never arrived")
	var stopped, started time.Time
	for _, e := range x.history() {
		if e.Type == Stopped && e.Time.After(cut) {
			if e.Reason != "lease_expired" && e.Reason != "split_brain" {
				t.Errorf("stopped %s for %q", e.ID, e.Reason)
			}
			stopped = maxTime(stopped, e.Time)
		}
	}
	for _, m := range tc.members[:2] {
		for _, e := range m.history() {
			if e.Type == Started && e.Time.After(cut) && (started.IsZero() || e.Time.Before(started)) {
				started = e.Time
			}
		}
	}
	st := x.pl.Status()
	t.Logf("cut: the isolated node stopped its last child after %s, the first takeover came after %s (lease %s, earliest takeover %s, safety margin %s)",
		stopped.Sub(cut).Round(time.Millisecond), started.Sub(cut).Round(time.Millisecond), st.LeaseTimeout,
		EarliestTakeover(x.n.Cluster().Settings(), fastCfg.StableAfter, fastCfg.RemovalMargin), st.SafetyMargin)
	if stopped.IsZero() || started.IsZero() || !stopped.Before(started) {
		t.Errorf("last stop on the isolated node %s, first start elsewhere %s: want the stop first", stopped.Format("15:04:05.000"), started.Format("15:04:05.000"))
	}
	if bad := overlaps(copies(tc, nil)); len(bad) > 0 {
		t.Errorf("two copies at once:\n%v", bad)
	}
	if st.Leased {
		t.Errorf("the isolated node still holds its lease: %+v", st)
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// With the defaults of every profile, a node cut off has stopped its
// children (lease + fence) before the other side may restart them
// (EarliestTakeover), with the documented margin (docs/REGISTRY.md).
func TestLeaseFitsEveryProfile(t *testing.T) {
	want := map[cluster.Profile]struct{ takeover, lease, margin time.Duration }{
		cluster.ProfileFast:  {3100 * time.Millisecond, 1550 * time.Millisecond, 1240 * time.Millisecond},
		cluster.ProfileLocal: {30200 * time.Millisecond, 15100 * time.Millisecond, 12080 * time.Millisecond},
		cluster.ProfileLAN:   {41400 * time.Millisecond, 20700 * time.Millisecond, 16560 * time.Millisecond},
		cluster.ProfileWAN:   {111 * time.Second, 55500 * time.Millisecond, 50500 * time.Millisecond},
	}
	near := func(a, b time.Duration) bool { return a-b < time.Millisecond && b-a < time.Millisecond }
	for _, p := range cluster.Profiles() {
		s := p.Settings()
		c := Config{}.withProfile(s, 5)
		e := EarliestTakeover(s, c.StableAfter, c.RemovalMargin)
		m := c.SafetyMargin(s)
		t.Logf("%s: earliest takeover %s, lease %s, renew %s, fence %s, safety margin %s", p, e, c.LeaseTimeout, c.LeaseRenew, c.fence(s), m)
		w := want[p]
		if !near(e, w.takeover) || !near(c.LeaseTimeout, w.lease) || !near(m, w.margin) {
			t.Errorf("%s: takeover %s lease %s margin %s, documented %s %s %s", p, e, c.LeaseTimeout, m, w.takeover, w.lease, w.margin)
		}
		if m <= 0 || c.LeaseRenew >= c.LeaseTimeout {
			t.Errorf("%s: no safety margin", p)
		}
	}
}

// Rebalance moves every child to its rendezvous choice, each stopped
// before it starts elsewhere: no two copies at once.
func TestRebalanceClusterNoDoubleRun(t *testing.T) {
	tc := startCluster(t, 3, fastCfg)
	a := tc.members[0]
	ids := startLocalChildren(t, tc, a, "rb", 9)
	var names []string
	for _, m := range tc.members {
		names = append(names, m.n.Name())
	}
	wantMoves := 0
	for _, id := range ids {
		if RendezvousChoice(id, names) != a.n.Name() {
			wantMoves++
		}
	}
	moved, failed := tc.members[1].pl.RebalanceCluster(context.Background())
	if len(failed) != 0 || moved[a.n.Name()] != wantMoves {
		t.Fatalf("moved %v, failed %v; want %d moved from %s", moved, failed, wantMoves, a.n.Name())
	}
	testutil.Eventually(t, wait, func() bool {
		if !tc.converged(ids) {
			return false
		}
		for _, c := range a.pl.Children() {
			if c.Node != RendezvousChoice(c.ID, names) {
				return false
			}
		}
		return true
	}, "children not at their rendezvous choices after the rebalance")
	if bad := overlaps(copies(tc, nil)); len(bad) > 0 {
		t.Errorf("two copies at once:\n%v", bad)
	}
}

func TestLeaseReached(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, true},
		{&node.RequestError{Code: node.CodeUnknownOp}, true},
		{&node.RequestError{Code: node.CodeInternal}, true},
		{&node.RequestError{Code: node.CodeTimeout}, false},
		{&node.RequestError{Code: node.CodeUnreachable}, false},
		{fmt.Errorf("decode: %w", context.DeadlineExceeded), false},
	} {
		if got := reached(tc.err); got != tc.want {
			t.Errorf("reached(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
