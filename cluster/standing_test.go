package cluster

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster/crdt"
	"github.com/arsenal-go/arsenal/cluster/crdt/crdttest"
)

// Tests of the replicated membership records (standing.go): the sides
// agree on removal and admission.

func TestStandingMergeIsACRDT(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		var es []*Standing
		for range 2 + rng.IntN(20) {
			es = append(es, &Standing{
				Node: []string{"a", "b", "c"}[rng.IntN(3)], Inc: uint64(1 + rng.IntN(3)), Epoch: uint64(rng.IntN(3)),
				Removed: rng.IntN(2) == 0, Boot: rng.IntN(4) == 0, By: []string{"a", "b"}[rng.IntN(2)], TS: uint64(rng.IntN(4)),
			})
		}
		if err := crdttest.CheckJoin(rng, es); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := crdttest.CheckOrder(rng, es, func(a, b *Standing) bool { return reflect.DeepEqual(a, b) }); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
	// The order's meaning: a removal beats its admission, a re-admission
	// (next epoch) the removal, a new incarnation every earlier one, and
	// any record a member wrote the bootstrap's.
	for _, c := range []struct {
		name       string
		win, loser Standing
	}{
		{"removal over its admission", Standing{Node: "a", Inc: 1, Removed: true}, Standing{Node: "a", Inc: 1}},
		{"re-admission over the removal", Standing{Node: "a", Inc: 1, Epoch: 1}, Standing{Node: "a", Inc: 1, Removed: true}},
		{"new incarnation over a removal", Standing{Node: "a", Inc: 2}, Standing{Node: "a", Inc: 1, Epoch: 5, Removed: true}},
		{"a member's record over the bootstrap's", Standing{Node: "a", Inc: 1, Removed: true}, Standing{Node: "a", Inc: 2, Boot: true}},
	} {
		if c.win.Compare(&c.loser) <= 0 || c.loser.Compare(&c.win) >= 0 {
			t.Errorf("%s: %+v does not beat %+v", c.name, c.win, c.loser)
		}
	}
	rs, err := crdt.Decode[Standing](crdt.Encode([]*Standing{{Node: "a", Inc: 3, Epoch: 1, Removed: true, By: "b", TS: 9}}))
	if err != nil || len(rs) != 1 || *rs[0] != (Standing{Node: "a", Inc: 3, Epoch: 1, Removed: true, By: "b", TS: 9}) {
		t.Fatalf("wire round trip: %v %+v", err, rs)
	}
	if err := (&Cluster{}).MergeStanding([]byte{crdt.Version, 0xff}); err == nil {
		t.Error("a malformed state was merged")
	}
}

// sim is a set of views (one Cluster per node, no network) and the
// operations of a scenario on them.
type viewSim struct {
	t     *testing.T
	views map[string]*Cluster
}

func newViewSim(t *testing.T, names ...string) *viewSim {
	s := &viewSim{t: t, views: map[string]*Cluster{}}
	for _, n := range names {
		c, _ := newTestView(t, n, 0)
		for i, o := range names {
			if o != n {
				c.nodeAlive(mlNode(o, 10+i, 1), false)
			}
		}
		s.views[n] = c
	}
	for _, c := range s.views { // the bootstrap, a probe interval after the first full view
		c.sweep(time.Now().Add(time.Second))
	}
	for _, c := range s.views {
		if p := c.Partition(); p.State != Healthy || p.Expected != len(names) {
			t.Fatalf("%s after the bootstrap: %+v", c.LocalName(), p)
		}
	}
	return s
}

// restart replaces node n's view by a fresh one at incarnation inc that
// joined the nodes of peers (a push-pull with each: their members and
// records), and tells them it is up.
func (s *viewSim) restart(n string, inc uint64, peers ...string) *Cluster {
	c, _ := newTestView(s.t, n, 0)
	c.mu.Lock()
	c.cfg.Incarnation = inc
	c.members[n].Incarnation = inc
	c.afterChangeLocked()
	c.mu.Unlock()
	s.views[n] = c
	for i, p := range peers {
		c.nodeAlive(mlNode(p, 10+i, 1), false)
		s.views[p].nodeAlive(mlNode(n, 40, inc), false)
		s.sync(p, n)
	}
	return c
}

// cut makes every node of a see every node of b dead, and the reverse.
func (s *viewSim) cut(a, b []string) {
	for _, x := range a {
		for _, y := range b {
			s.views[x].nodeGone(y)
			s.views[y].nodeGone(x)
		}
	}
}

// sync exchanges the records of from and to, both ways (a lease request
// and its answer, or a push-pull).
func (s *viewSim) sync(from, to string) {
	s.t.Helper()
	a, b := s.views[from], s.views[to]
	if err := b.MergeStanding(a.StandingState()); err != nil {
		s.t.Fatal(err)
	}
	if err := a.MergeStanding(b.StandingState()); err != nil {
		s.t.Fatal(err)
	}
}

// syncAll syncs every pair of nodes.
func (s *viewSim) syncAll(nodes ...string) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				s.sync(a, b)
			}
		}
	}
}

// pastMargin runs every view's sweep as if the margin had passed.
func (s *viewSim) pastMargin(nodes ...string) {
	for _, n := range nodes {
		pastMargin(s.views[n])
	}
}

func (s *viewSim) state(n string) PartitionState { return s.views[n].Partition().State }

// The brief-heal sequence (TestSplitBrainChurnBriefHeal, by views): the
// majority of a first partition removes the other two nodes and, after it
// crashed, a third of its own; a heal too short for anything to pass; a
// second partition puts the removed nodes with the crashed one,
// restarted. Before the records were replicated each side was a majority
// of its own denominator there (the removed pair counted all five and the
// restarted node up: 3 of 5; the pair that removed them 2 of 2). Now the
// restarted node is not admitted by anyone on its side (nobody there sees
// every member it counts), so that side is 2 of 5; and once the records
// reach it (any lease answer from the other side, or the final heal), the
// removed nodes know it.
func TestStandingBriefHeal(t *testing.T) {
	for _, names := range [][]string{
		{"n1", "n2", "n3", "n4", "n5"}, // the test's names: the pair that removes holds the lowest
		{"n2", "n3", "n5", "n1", "n4"}, // the removed pair holds the lowest name (n1)
	} {
		a, b, victim, d, e := names[0], names[1], names[2], names[3], names[4]
		s := newViewSim(t, names...)
		// 1. {a, b, victim} | {d, e}: the majority removes d and e.
		s.cut([]string{a, b, victim}, []string{d, e})
		s.pastMargin(a, b, victim, d, e)
		s.syncAll(a, b, victim)
		for _, n := range []string{a, b, victim} {
			if p := s.views[n].Partition(); p.State != Healthy || p.Expected != 3 {
				t.Fatalf("%v: %s after removing %s and %s: %+v", names, n, d, e, p)
			}
		}
		if s.state(d) != Minority || s.state(e) != Minority {
			t.Fatalf("%v: the cut-off pair: %s %s", names, s.state(d), s.state(e))
		}
		// 2. victim crashes; a and b remove it.
		s.cut([]string{a, b}, []string{victim})
		s.pastMargin(a, b)
		s.syncAll(a, b)
		if p := s.views[a].Partition(); p.State != Healthy || p.Expected != 2 {
			t.Fatalf("%v: %s after removing %s: %+v", names, a, victim, p)
		}
		// 3. A brief heal in which nothing reaches d and e; the second
		// partition {a, b} | {victim', d, e}, victim restarted with d and e.
		r := s.restart(victim, 2, d, e)
		s.syncAll(d, e)
		s.pastMargin(victim, d, e) // nobody there may admit it, nor remove anyone
		for _, n := range []string{d, e} {
			if p := s.views[n].Partition(); p.State != Minority || p.Up != 2 || p.Expected != 5 {
				t.Errorf("%v: %s in the second partition: %+v, want minority 2 of 5 (%s restarted is not admitted)", names, n, p, victim)
			}
			if m, _ := memberOf(s.views[n], victim); !m.Joining {
				t.Errorf("%v: %s counts the restarted %s: %+v", names, n, victim, m)
			}
		}
		if p := r.Partition(); p.State != Forming {
			t.Errorf("%v: the restarted %s: %+v, want forming (not admitted)", names, victim, p)
		}
		if p := s.views[a].Partition(); p.State != Healthy {
			t.Errorf("%v: %s in the second partition: %+v", names, a, p)
		}
		// A lease round of d reaches one member of the side that
		// removed it (the brief heal, had it lasted one round): d learns
		// it, and so does its side.
		s.sync(a, d)
		s.syncAll(victim, d, e)
		for _, n := range []string{d, e} {
			if m, _ := memberOf(s.views[n], n); !m.Removed {
				t.Errorf("%v: %s does not know it was removed: %+v", names, n, m)
			}
			if st := s.state(n); st != Minority {
				t.Errorf("%v: %s, removed: %s", names, n, st)
			}
		}
		// 4. The final heal: a sees everyone; it admits victim' and
		// re-admits d and e; everyone counts all five.
		for _, n := range []string{victim, d, e} {
			s.views[a].nodeAlive(mlNode(n, 60, s.views[n].cfg.Incarnation), false)
			s.views[b].nodeAlive(mlNode(n, 60, s.views[n].cfg.Incarnation), false)
			for _, o := range []string{a, b} {
				s.views[n].nodeAlive(mlNode(o, 61, 1), false)
			}
		}
		s.views[a].Review()
		s.syncAll(names...)
		for _, n := range names {
			if p := s.views[n].Partition(); p.State != Healthy || p.Expected != 5 {
				t.Errorf("%v: %s after the final heal: %+v", names, n, p)
			}
		}
	}
}

// The sequence that deadlocked the lease-admission rule: a node joins
// just before another crashes. It never has to remove the dead node
// itself: the side that runs removes it and then admits the newcomer (a
// member that sees every member it counts), and the newcomer adopts both.
func TestStandingJoinThenCrash(t *testing.T) {
	s := newViewSim(t, "a", "b", "c", "d")
	f := s.restart("f", 1, "a", "b", "c", "d")
	if p := f.Partition(); p.State != Forming {
		t.Fatalf("f, joined, not admitted: %+v", p)
	}
	// d crashes before anyone admitted f.
	s.cut([]string{"a", "b", "c", "f"}, []string{"d"})
	s.views["a"].Review()
	if m, _ := memberOf(s.views["a"], "f"); !m.Joining {
		t.Fatalf("a admitted f while d, which it counts, is dead: %+v", m)
	}
	if p := s.views["a"].Partition(); p.State != Partial || p.Expected != 4 {
		t.Fatalf("a with d dead, f joining: %+v", p)
	}
	s.pastMargin("a", "f")                                  // a removes d; f, not admitted, removes nobody
	if r := standingFor(f, "d"); r.Removed || r.By == "f" { // nor could it: it counts nobody
		t.Fatalf("f wrote a removal: %+v", r)
	}
	s.views["a"].Review() // every member a counts is up: it admits f
	s.syncAll("a", "b", "c", "f")
	for _, n := range []string{"a", "b", "c", "f"} {
		if p := s.views[n].Partition(); p.State != Healthy || p.Expected != 4 || p.Removed != 1 {
			t.Errorf("%s: %+v, want healthy 4 of 4 with d removed", n, p)
		}
	}
	if m, _ := memberOf(f, "f"); m.Joining || m.Removed {
		t.Errorf("f not admitted: %+v", m)
	}

	// The other order: f admitted, then d crashes: f counts d dead (a
	// majority all the same) and adopts its removal.
	s = newViewSim(t, "a", "b", "c", "d")
	f = s.restart("f", 1, "a", "b", "c", "d")
	s.views["a"].Review()
	s.syncAll("a", "b", "c", "d", "f")
	if p := f.Partition(); p.State != Healthy || p.Expected != 5 {
		t.Fatalf("f admitted: %+v", p)
	}
	s.cut([]string{"a", "b", "c", "f"}, []string{"d"})
	if p := f.Partition(); p.State != Partial {
		t.Fatalf("f with d dead: %+v", p)
	}
	s.pastMargin("a")
	s.syncAll("a", "b", "c", "f")
	if p := f.Partition(); p.State != Healthy || p.Expected != 4 {
		t.Errorf("f after the removal of d: %+v", p)
	}
}

// A restart of the member with the lowest name in a two-node cluster: the
// other, alone and without the tie-break, is a minority; it still admits
// the new incarnation (it sees every member it counts: the restarted
// one's new incarnation stands for its old one), and both are up.
func TestStandingRestartOfTheLowest(t *testing.T) {
	s := newViewSim(t, "a", "b")
	s.views["b"].nodeGone("a")
	if st := s.state("b"); st != Minority {
		t.Fatalf("b alone without the lowest name: %s", st)
	}
	a := s.restart("a", 2, "b")
	if p := s.views["b"].Partition(); p.State != Minority || p.Joining != 1 {
		t.Fatalf("b with a restarted, not admitted: %+v", p)
	}
	s.views["b"].Review()
	s.sync("b", "a")
	for _, c := range []*Cluster{a, s.views["b"]} {
		if p := c.Partition(); p.State != Healthy || p.Expected != 2 {
			t.Errorf("%s after the admission of a's new incarnation: %+v", c.LocalName(), p)
		}
	}
	if r := standingFor(a, "a"); r.Inc != 2 || r.Removed || r.By != "b" {
		t.Errorf("a's record: %+v", r)
	}
}

// The bootstrap: a node writes the first records from its first full
// view only if it has none a probe interval after it; a node that
// received records waits to be admitted; until the records exist, every
// member counts (the rule before them).
func TestStandingBootstrap(t *testing.T) {
	c, _ := newTestView(t, "a", 0)
	c.nodeAlive(mlNode("b", 11, 1), false)
	c.sweep(time.Now()) // within the probe interval: not yet
	if len(c.Standings()) != 0 {
		t.Fatalf("bootstrapped at once: %+v", c.Standings())
	}
	if p := c.Partition(); p.State != Healthy || p.Expected != 2 {
		t.Fatalf("before the records: %+v", p)
	}
	c.sweep(time.Now().Add(time.Second))
	if ss := c.Standings(); len(ss) != 2 || !ss[0].Boot || !ss[1].Boot {
		t.Fatalf("bootstrap: %+v", ss)
	}
	d, _ := newTestView(t, "d", 0)
	d.nodeAlive(mlNode("a", 10, 1), false)
	if err := d.MergeStanding(c.StandingState()); err != nil {
		t.Fatal(err)
	}
	d.sweep(time.Now().Add(time.Second))
	if r := standingFor(d, "d"); r.Node != "" {
		t.Errorf("d, which received records, admitted itself: %+v", r)
	}
	if p := d.Partition(); p.State != Forming {
		t.Errorf("d not admitted: %+v", p)
	}
	// b, known to d only from the records, counts there (dead).
	if m, ok := memberOf(d, "b"); !ok || m.Status != StatusDead || !m.Counted() {
		t.Errorf("b, known from the records: %+v %v", m, ok)
	}
}
