package placement

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/registry"
	"github.com/arsenal-go/arsenal/transport"
)

// The lease round on the replicated membership records (cluster's
// standing): what a round counts, when it is full, and who may admit.

func alive(name string, inc uint64) cluster.Member {
	return cluster.Member{Name: name, Incarnation: inc, Status: cluster.StatusAlive}
}

// roundOf is a lease round of self on ms, answered by answered (name →
// incarnation), decided by policy.
func roundOf(self string, ms []cluster.Member, answered map[string]uint64, policy Policy) (Decision, bool) {
	answered[self] = 1
	view, full := leaseView(self, ms, answered)
	return Decide(policy, 3, false, View{Self: self, Members: view, Partition: cluster.PartitionOf(view, 0, false)}), full
}

// The brief-heal sequence in the lease's terms: n4 and n5 were removed by
// {n1, n2} (who also removed n3 after it crashed); n3 restarted (incarnation
// 2) among n4 and n5. A round of n4 in the second partition: with the
// stale records (nobody on its side knows of the removals) it counts five,
// n3's new incarnation not admitted: 2 of 5, down, and not full (n1, n2
// unreachable), so nobody there may admit n3. With the records merged from
// any answer of n1's side, n4 knows it was removed: down under every policy.
func TestLeaseRoundBriefHeal(t *testing.T) {
	stale := []cluster.Member{
		{Name: "n1", Incarnation: 1, Status: cluster.StatusDead},
		{Name: "n2", Incarnation: 1, Status: cluster.StatusDead},
		{Name: "n3", Incarnation: 2, Status: cluster.StatusAlive, Joining: true}, // old incarnation admitted
		alive("n4", 1), alive("n5", 1),
	}
	for _, policy := range []Policy{KeepMajority, KeepOldest, DownAll} {
		d, full := roundOf("n4", stale, map[string]uint64{"n3": 2, "n5": 1}, policy)
		if d.Up || full {
			t.Errorf("%s: n4's round with stale records: up=%v full=%v (%s), want down and not full", policy, d.Up, full, d.Reason)
		}
	}
	merged := []cluster.Member{
		{Name: "n1", Incarnation: 1, Status: cluster.StatusDead},
		{Name: "n2", Incarnation: 1, Status: cluster.StatusDead},
		{Name: "n3", Incarnation: 2, Status: cluster.StatusAlive, Joining: true, Removed: true},
		{Name: "n4", Incarnation: 1, Status: cluster.StatusAlive, Removed: true},
		{Name: "n5", Incarnation: 1, Status: cluster.StatusAlive, Removed: true},
	}
	for _, policy := range []Policy{KeepMajority, StaticQuorum, KeepOldest, DownAll} {
		if d, _ := roundOf("n4", merged, map[string]uint64{"n3": 2, "n5": 1}, policy); d.Up {
			t.Errorf("%s: n4, removed, is up: %s", policy, d.Reason)
		}
	}
	// Before the records (every member counted by name, the restarted n3
	// up): 3 of 5, up on both sides of the second partition.
	byName := []cluster.Member{{Name: "n1", Incarnation: 1, Status: cluster.StatusDead}, {Name: "n2", Incarnation: 1, Status: cluster.StatusDead},
		alive("n3", 2), alive("n4", 1), alive("n5", 1)}
	if d, _ := roundOf("n4", byName, map[string]uint64{"n3": 2, "n5": 1}, KeepMajority); !d.Up {
		t.Fatalf("the old rule's round: %s (the test no longer shows what the records fix)", d.Reason)
	}
	// The side that removed them: 2 of its 2, full.
	winner := []cluster.Member{alive("n1", 1), alive("n2", 1),
		{Name: "n3", Incarnation: 1, Status: cluster.StatusDead, Removed: true},
		{Name: "n4", Incarnation: 1, Status: cluster.StatusDead, Removed: true},
		{Name: "n5", Incarnation: 1, Status: cluster.StatusDead, Removed: true}}
	if d, full := roundOf("n1", winner, map[string]uint64{"n2": 1}, KeepMajority); !d.Up || !full {
		t.Errorf("n1's round: up=%v full=%v (%s)", d.Up, full, d.Reason)
	}
}

// A round is full when every member that counts answered with the
// incarnation the view has; a restarted member answering with its new
// incarnation stands for its old one (and counts up by it in that round);
// a member that answers with another incarnation than the view's does not
// count as up.
func TestLeaseViewFull(t *testing.T) {
	ms := []cluster.Member{alive("a", 1), alive("b", 1), {Name: "c", Incarnation: 2, Status: cluster.StatusAlive, Joining: true},
		{Name: "j", Incarnation: 1, Status: cluster.StatusAlive, Joining: true, Removed: true}, // a newcomer: not counted
		{Name: "r", Incarnation: 1, Status: cluster.StatusDead, Removed: true},                 // removed: not counted
		{Name: "l", Incarnation: 1, Status: cluster.StatusLeft}}
	cases := []struct {
		name     string
		answered map[string]uint64
		full, up bool
	}{
		{"every counted member answered", map[string]uint64{"b": 1, "c": 2}, true, true},
		{"the restarted member did not answer", map[string]uint64{"b": 1, "j": 1}, false, true},
		{"b answered as another incarnation", map[string]uint64{"b": 7, "c": 2}, false, false},
		{"nobody answered", map[string]uint64{}, false, false},
	}
	for _, c := range cases {
		d, full := roundOf("a", ms, c.answered, KeepMajority)
		if full != c.full || d.Up != c.up {
			t.Errorf("%s: full=%v up=%v (%s), want full=%v up=%v", c.name, full, d.Up, d.Reason, c.full, c.up)
		}
	}
	view, _ := leaseView("a", ms, map[string]uint64{"a": 1, "b": 1, "c": 2})
	if view[2].Joining || view[2].Status != cluster.StatusAlive {
		t.Errorf("in a full round the restarted c counts by its new incarnation: %+v", view[2])
	}
	if !view[3].Removed || !view[4].Removed || view[5].Status != cluster.StatusLeft {
		t.Errorf("the newcomer, the removed and the left keep their standing: %+v", view[3:])
	}
}

// admissionGate: a member is admitted only on a recent full round that it
// answered with the incarnation to admit. The side's policy is not asked:
// a static quorum below its number admits the members that bring it back.
func TestAdmissionGate(t *testing.T) {
	p := &Placement{self: "a", cfg: Config{LeaseRenew: 400 * time.Millisecond}}
	j := cluster.Member{Name: "j", Incarnation: 3, Status: cluster.StatusAlive, Joining: true, Removed: true}
	cases := []struct {
		name  string
		round *leaseRound
		want  bool
	}{
		{"no round yet", nil, false},
		{"a full round j answered", &leaseRound{at: time.Now(), full: true, reached: map[string]uint64{"j": 3}}, true},
		{"a full round, down by the policy", &leaseRound{at: time.Now(), full: true, up: false, reached: map[string]uint64{"j": 3}}, true},
		{"not full", &leaseRound{at: time.Now(), up: true, reached: map[string]uint64{"j": 3}}, false},
		{"j did not answer", &leaseRound{at: time.Now(), full: true, up: true, reached: map[string]uint64{"b": 1}}, false},
		{"j answered as an older incarnation", &leaseRound{at: time.Now(), full: true, up: true, reached: map[string]uint64{"j": 2}}, false},
		{"the round is old", &leaseRound{at: time.Now().Add(-time.Second), full: true, up: true, reached: map[string]uint64{"j": 3}}, false},
	}
	for _, c := range cases {
		p.round.Store(c.round)
		if got := p.admissionGate(j, nil, cluster.PartitionStatus{}); got != c.want {
			t.Errorf("%s: gate = %v, want %v", c.name, got, c.want)
		}
	}
}

// Decide: a node that does not count itself (not admitted, or removed) is
// down under every policy, with a decision that the next one replaces at
// once; a joining member is not up for the others.
func TestDecideSelfNotCounted(t *testing.T) {
	for _, self := range []cluster.Member{
		{Name: "a", Incarnation: 2, Status: cluster.StatusAlive, Joining: true, Removed: true},
		{Name: "a", Incarnation: 1, Status: cluster.StatusAlive, Removed: true},
	} {
		ms := []cluster.Member{self, alive("b", 1), alive("c", 1)}
		for _, policy := range Policies() {
			d := Decide(policy, 1, true, View{Self: "a", Members: ms, Partition: cluster.PartitionOf(ms, 0, false)})
			if d.Up || !d.Forming {
				t.Errorf("%s, self %+v: %+v, want down (forming)", policy, self, d)
			}
		}
	}
	// b joining: a and c are 2 of 2 counted (b's earlier incarnation was
	// never admitted): up; with b's old incarnation admitted, 2 of 3.
	ms := []cluster.Member{alive("a", 1), {Name: "b", Incarnation: 2, Status: cluster.StatusAlive, Joining: true}, alive("c", 1)}
	ps := cluster.PartitionOf(ms, 0, false)
	if ps.Up != 2 || ps.Expected != 3 || ps.Joining != 1 {
		t.Errorf("b's old incarnation admitted, its new one joining: %+v", ps)
	}
	if d := Decide(StaticQuorum, 3, false, View{Self: "a", Members: ms, Partition: ps}); d.Up {
		t.Errorf("static quorum 3 counts the joining b: %s", d.Reason)
	}
}

// join starts one more member, which joins the cluster through its first
// member, with its registry and placement; it does not wait for anything.
func (tc *testCluster) join(name string, cfg Config) *member {
	tc.t.Helper()
	f := transport.NewFaults()
	first := tc.members[0].n
	n, err := node.Start(context.Background(), node.Config{
		Name: name, Cluster: first.Cluster().Topology().ClusterName, Secret: testSecret, Profile: cluster.ProfileFast,
		Discovery: cluster.StaticSeeds(first.Addr()), Faults: f, FactsInterval: time.Second, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tc.t.Fatal(err)
	}
	m := &member{n: n, faults: f}
	tc.members = append(tc.members, m)
	reg, err := registry.Start(n.Runtime(), n.Cluster(), registry.Config{SweepInterval: 100 * time.Millisecond})
	if err != nil {
		tc.t.Fatal(err)
	}
	m.reg = reg
	c := cfg
	c.Registry = reg
	if m.pl, err = Start(n, c); err != nil {
		tc.t.Fatal(err)
	}
	return m
}

// The sequence that deadlocked the lease-admission rule, on real
// in-process nodes with placement's gates: a node joins, and a member
// crashes right after. The newcomer never removes the dead node itself; it
// adopts the removal the side that runs makes, is admitted on a full lease
// round, and runs the child placed on it.
func TestJoinThenCrashIsAdmitted(t *testing.T) {
	tc := startCluster(t, 3, fastCfg)
	bootstrapped(t, tc)
	dead := tc.members[2]
	// The crash first, then the join at once: nobody has seen the crash
	// yet, so the newcomer joins a view that counts the dead node, and no
	// member has a full round to admit it until the dead node is removed.
	tc.crash(dead)
	crashedAt := time.Now()
	f := tc.join("n4@127.0.0.1", fastCfg)
	joinedAt := time.Now()
	var removedAt, admittedAt time.Time // as the first member sees them
	testutil.Eventually(t, testutil.Scale(30*time.Second), func() bool {
		now := time.Now()
		if mm, _ := tc.members[0].n.Cluster().Member(dead.n.Name()); mm.Removed && removedAt.IsZero() {
			removedAt = now
		}
		if mm, _ := tc.members[0].n.Cluster().Member(f.n.Name()); mm.Counted() && admittedAt.IsZero() {
			admittedAt = now
		}
		for _, m := range tc.live() {
			if mm, ok := m.n.Cluster().Member(dead.n.Name()); !ok || !mm.Removed {
				return false
			}
		}
		return f.pl.Status().Up
	}, "the crashed node not removed everywhere, or the newcomer never came up")
	upAfter := time.Since(crashedAt)
	for _, m := range tc.live() {
		mm, ok := m.n.Cluster().Member(dead.n.Name())
		if !ok || !mm.Removed {
			t.Errorf("%s: the crashed %s not removed: %+v", m.n.Name(), dead.n.Name(), mm)
		}
		if me, _ := m.n.Cluster().Member(f.n.Name()); !me.Counted() {
			t.Errorf("%s does not count the newcomer: %+v", m.n.Name(), me)
		}
	}
	if admittedAt.Before(removedAt) {
		t.Errorf("n1 counted the newcomer %s after the crash, before it removed the dead node (%s): a round was full with a counted member dead",
			admittedAt.Sub(crashedAt).Round(time.Millisecond), removedAt.Sub(crashedAt).Round(time.Millisecond))
	}
	order := fmt.Sprintf("n1 saw the removal after %s and counted the newcomer after %s",
		removedAt.Sub(crashedAt).Round(time.Millisecond), admittedAt.Sub(crashedAt).Round(time.Millisecond))
	c, err := f.pl.StartChild(context.Background(), ChildSpec{ID: "on-the-newcomer", Kind: "test-worker", Strategy: Local})
	if err != nil || c.Node != f.n.Name() || c.PID.IsZero() {
		t.Fatalf("a child on the newcomer: %+v, %v", c, err)
	}
	t.Logf("crash, then the join (node started %s after the crash); the dead node removed everywhere and the newcomer up %s after the crash; %s",
		joinedAt.Sub(crashedAt).Round(time.Millisecond), upAfter.Round(time.Millisecond), order)
}

// bootstrapped waits until every member holds the records of every
// member (the bootstrap, a probe interval after the first full view).
func bootstrapped(t *testing.T, tc *testCluster) {
	t.Helper()
	testutil.Eventually(t, wait, func() bool {
		for _, m := range tc.live() {
			if len(m.n.Cluster().Standings()) != len(tc.live()) {
				return false
			}
		}
		return true
	}, "the membership records were never bootstrapped")
}

// A node that joins a healthy cluster is admitted on the next full lease
// round of any member, which the membership change starts at once.
func TestJoinIsAdmittedAtOnce(t *testing.T) {
	tc := startCluster(t, 3, fastCfg)
	bootstrapped(t, tc)
	start := time.Now()
	f := tc.join("n4@127.0.0.1", fastCfg)
	var seen time.Time
	testutil.Eventually(t, wait, func() bool {
		if seen.IsZero() && f.n.Cluster().Topology().Alive == 4 {
			seen = time.Now()
		}
		m, _ := f.n.Cluster().Member(f.n.Name())
		return m.Counted()
	}, "the newcomer was never admitted")
	admitted := time.Now()
	testutil.Eventually(t, wait, func() bool { return f.pl.Status().Up }, "the newcomer never came up")
	t.Logf("node start to seeing all four alive %s; to admitted %s (%s after seeing them); to up %s",
		seen.Sub(start).Round(time.Millisecond), admitted.Sub(start).Round(time.Millisecond),
		admitted.Sub(seen).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
