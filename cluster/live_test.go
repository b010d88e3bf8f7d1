package cluster

import (
	"fmt"
	"testing"
	"time"
)

// Tests of the live-member rule: a member dead past the removal margin,
// on a side that keeps running, leaves the denominator and the tie-break.

// fiveNodeView is self's view of a, b, c, d, e (all alive).
func fiveNodeView(t *testing.T, self string, expected int) *Cluster {
	t.Helper()
	c, _ := newTestView(t, self, expected)
	for i, n := range []string{"a", "b", "c", "d", "e"} {
		if n != self {
			c.nodeAlive(mlNode(n, 10+i, 1), false)
		}
	}
	if p := c.Partition(); p.State != Healthy || p.Expected != 5 {
		t.Fatalf("%s: five up: %+v", self, p)
	}
	return c
}

// pastMargin runs the sweep as if every member's last change were older
// than the removal margin.
func pastMargin(c *Cluster) {
	c.mu.Lock()
	margin := c.removalMarginLocked()
	c.mu.Unlock()
	c.sweep(time.Now().Add(margin + time.Second))
}

func TestLiveCrashThenEvenSplit(t *testing.T) {
	for _, expected := range []int{0, 5} {
		// a crashes; every node sees it dead past the margin; then b c | d e.
		var states []PartitionState
		for _, side := range [][2]string{{"b", "c"}, {"c", "b"}, {"d", "e"}, {"e", "d"}} {
			self, peer := side[0], side[1]
			c := fiveNodeView(t, self, expected)
			c.nodeGone("a")
			if p := c.Partition(); p.State != Partial || p.Expected != 5 {
				t.Fatalf("%s: a dead, before the margin: %+v", self, p)
			}
			pastMargin(c)
			if m, _ := memberOf(c, "a"); !m.Removed {
				t.Fatalf("%s: a not removed past the margin: %+v", self, m)
			}
			if p := c.Partition(); p.State != Healthy || p.Expected != 4 || p.Removed != 1 {
				t.Fatalf("%s: a removed: %+v", self, p)
			}
			for _, n := range []string{"b", "c", "d", "e"} {
				if n != self && n != peer {
					c.nodeGone(n)
				}
			}
			p := c.Partition()
			if !p.TieBreak || p.Up != 2 || p.Expected != 4 {
				t.Fatalf("%s: 2|2 split: %+v", self, p)
			}
			states = append(states, p.State)
			// The winners remove the losers after another margin; the
			// losers never remove the winners: they stay down.
			pastMargin(c)
			q := c.Partition()
			if p.State == Partial && (q.State != Healthy || q.Expected != 2) || p.State == Minority && (q.State != Minority || q.Removed != 1) {
				t.Errorf("%s: after a second margin: %+v (was %s)", self, q, p.State)
			}
		}
		want := []PartitionState{Partial, Partial, Minority, Minority}
		if fmt.Sprint(states) != fmt.Sprint(want) {
			t.Errorf("expected size %d: sides b,c | d,e: %v, want %v (exactly the side of b, the lowest live name, up)", expected, states, want)
		}
	}
}

func TestLiveSplitBeforeMarginDownsBoth(t *testing.T) {
	// The split comes before anyone removed a: 2 of 5 on each side, both
	// down (safe: it looks like a three-way split), and neither side ever
	// removes anyone.
	for _, self := range []string{"b", "d"} {
		c := fiveNodeView(t, self, 5)
		c.nodeGone("a")
		for _, n := range []string{"b", "c", "d", "e"} {
			if (self == "b") != (n == "b" || n == "c") {
				c.nodeGone(n)
			}
		}
		pastMargin(c)
		if p := c.Partition(); p.State != Minority || p.Removed != 0 {
			t.Errorf("%s: %+v, want minority with nobody removed", self, p)
		}
	}
}

func TestLiveReplacedThenSplit(t *testing.T) {
	// a and b crash and are replaced by f and g (new names), one after the
	// other; then c d e | f g. The majority keeps running; the pair does
	// not.
	for _, tc := range []struct {
		self  string
		other []string // the other side
		want  PartitionState
	}{
		{"c", []string{"f", "g"}, Partial},
		{"f", []string{"c", "d", "e"}, Minority},
	} {
		c, _ := newTestView(t, tc.self, 0)
		for i, n := range []string{"a", "b", "c", "d", "e", "f", "g"} {
			if n != tc.self && n != "f" && n != "g" {
				c.nodeAlive(mlNode(n, 10+i, 1), false)
			}
		}
		if tc.self == "f" { // f joined after a's crash: it never knew a and b alive
			c.members = map[string]*Member{"f": c.members["f"]}
			for i, n := range []string{"c", "d", "e", "g"} {
				c.nodeAlive(mlNode(n, 20+i, 1), false)
			}
		} else {
			c.nodeGone("a")
			c.nodeAlive(mlNode("f", 30, 1), false)
			pastMargin(c)
			c.nodeGone("b")
			c.nodeAlive(mlNode("g", 31, 1), false)
			pastMargin(c)
		}
		if p := c.Partition(); p.State != Healthy || p.Expected != 5 {
			t.Fatalf("%s: after the replacements: %+v", tc.self, p)
		}
		for _, n := range tc.other {
			c.nodeGone(n)
		}
		if p := c.Partition(); p.State != tc.want || p.Expected != 5 {
			t.Errorf("%s: 3|2 split: %+v, want %s of 5", tc.self, p, tc.want)
		}
	}
}

func TestLiveRemovedComesBack(t *testing.T) {
	c := fiveNodeView(t, "b", 0)
	c.nodeGone("a")
	pastMargin(c)
	if p := c.Partition(); p.Expected != 4 {
		t.Fatalf("a removed: %+v", p)
	}
	c.nodeAlive(mlNode("a", 10, 1), false)
	// Back, but removed by the records until a member that sees every
	// member it counts admits it again (the next review does: b sees all).
	if m, _ := memberOf(c, "a"); !m.Removed || m.Status != StatusAlive {
		t.Errorf("a back, before its admission: %+v", m)
	}
	c.Review()
	if m, _ := memberOf(c, "a"); m.Removed || m.Joining || m.Status != StatusAlive {
		t.Errorf("a back and admitted: %+v", m)
	}
	if p := c.Partition(); p.State != Healthy || p.Expected != 5 || p.Removed != 0 {
		t.Errorf("a back: %+v", p)
	}
	if r := standingFor(c, "a"); r.Removed || r.Epoch != 1 || r.By != "b" {
		t.Errorf("a's record after its admission: %+v, want admitted at epoch 1 by b", r)
	}
}

func standingFor(c *Cluster, name string) Standing {
	for _, s := range c.Standings() {
		if s.Node == name {
			return s
		}
	}
	return Standing{}
}

func TestLiveRemovalGate(t *testing.T) {
	c := fiveNodeView(t, "b", 0)
	var asked []PartitionStatus
	c.SetRemovalGate(func(ms []Member, ps PartitionStatus) bool {
		asked = append(asked, ps)
		return false
	})
	c.nodeGone("a")
	pastMargin(c)
	if m, _ := memberOf(c, "a"); m.Removed {
		t.Error("removed although the gate said no")
	}
	if len(asked) != 1 || asked[0].Expected != 5 || asked[0].Up != 4 {
		t.Errorf("gate asked with %+v, want the view that still counts a", asked)
	}
	c.SetRemovalGate(nil)
	pastMargin(c)
	if m, _ := memberOf(c, "a"); !m.Removed {
		t.Error("the default gate (partial) did not remove a")
	}
}

func TestFormingIsNotMinority(t *testing.T) {
	c, _ := newTestView(t, "a", 5)
	if p := c.Partition(); p.State != Forming {
		t.Fatalf("alone of 5, never formed: %+v", p)
	}
	c.nodeAlive(mlNode("b", 2, 1), false)
	if p := c.Partition(); p.State != Forming || p.Expected != 5 {
		t.Fatalf("2 of 5, never formed: %+v", p)
	}
	for i, n := range []string{"c", "d", "e"} {
		c.nodeAlive(mlNode(n, 3+i, 1), false)
	}
	if p := c.Partition(); p.State != Healthy {
		t.Fatalf("5 of 5: %+v", p)
	}
	// Formed: now a loss is counted.
	for _, n := range []string{"c", "d", "e"} {
		c.nodeGone(n)
	}
	if p := c.Partition(); p.State != Minority {
		t.Errorf("2 of 5 after formation: %+v", p)
	}
	// With no expected size, the node is forming until its first join and
	// settle rounds are over.
	d, _ := newTestView(t, "x", 0)
	d.mu.Lock()
	d.formed, d.settled = false, false
	d.afterChangeLocked()
	d.mu.Unlock()
	d.nodeAlive(mlNode("y", 2, 1), false)
	d.nodeAlive(mlNode("z", 3, 1), false)
	d.nodeGone("y")
	d.nodeGone("z")
	if p := d.Partition(); p.State != Forming {
		t.Errorf("1 of 3 before the settle rounds: %+v", p)
	}
	d.mu.Lock()
	d.settled = true
	d.afterChangeLocked()
	d.mu.Unlock()
	if p := d.Partition(); p.State != Minority {
		t.Errorf("1 of 3 after the settle rounds: %+v", p)
	}
}
