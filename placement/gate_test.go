package placement

import (
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
)

// quietLocked: a start of a child this node does not run waits until every
// member it does not see up has been out of its view for StableAfter +
// RemovalMargin (counted from when its side was up) and has not asked for
// a lease renewal within the grace; members up, left or back with a new
// incarnation (alive) do not hold it back.
func TestQuietWaitsOutEveryMemberNotSeen(t *testing.T) {
	now := time.Now()
	const grace = 2 * time.Second
	p := &Placement{
		self: "a", cfg: Config{StableAfter: time.Second, RemovalMargin: 1500 * time.Millisecond},
		heard: map[string]time.Time{}, unknown: map[string]time.Time{}, decidedAt: now.Add(-time.Hour),
	}
	dead := func(name string, ago time.Duration) cluster.Member {
		return cluster.Member{Name: name, Status: cluster.StatusDead, Since: now.Add(-ago)}
	}
	alive := func(name string) cluster.Member { return cluster.Member{Name: name, Status: cluster.StatusAlive} }
	left := cluster.Member{Name: "l", Status: cluster.StatusLeft, Since: now}
	cases := []struct {
		name  string
		ms    []cluster.Member
		setup func()
		want  bool
	}{
		{"all up", []cluster.Member{alive("a"), alive("b"), left}, nil, true},
		{"one dead long ago", []cluster.Member{alive("a"), dead("b", time.Minute)}, nil, true},
		{"one dead just now", []cluster.Member{alive("a"), dead("b", time.Minute), dead("c", time.Second)}, nil, false},
		{"dead long ago but renewed its lease here recently", []cluster.Member{alive("a"), dead("b", time.Minute)},
			func() { p.heard["b"] = now.Add(-time.Second) }, false},
		{"dead long ago, last renewal past the grace", []cluster.Member{alive("a"), dead("b", time.Minute)},
			func() { p.heard["b"] = now.Add(-3 * time.Second) }, true},
		{"this side up only just now", []cluster.Member{alive("a"), dead("b", time.Minute)},
			func() { p.decidedAt = now.Add(-time.Second) }, false},
		{"an unknown record node seen just now", []cluster.Member{alive("a")},
			func() { p.unknown["x"] = now.Add(-time.Second) }, false},
	}
	for _, c := range cases {
		p.heard, p.unknown, p.decidedAt = map[string]time.Time{}, map[string]time.Time{}, now.Add(-time.Hour)
		if c.setup != nil {
			c.setup()
		}
		if got := p.quietLocked(c.ms, now, grace); got != c.want {
			t.Errorf("%s: quiet = %v, want %v", c.name, got, c.want)
		}
	}
}

// removalGate: a side removes dead members only when its decision has been
// up for RemovalMargin, the membership has been stable for StableAfter,
// and the policy keeps it up on the view that still counts them.
func TestRemovalGateNeedsAStableUpSide(t *testing.T) {
	now := time.Now()
	p := &Placement{self: "a", cfg: Config{SplitBrain: KeepMajority, StableAfter: time.Second, RemovalMargin: 1500 * time.Millisecond, LeaseRenew: 400 * time.Millisecond}}
	ms := []cluster.Member{{Name: "a", Status: cluster.StatusAlive}, {Name: "b", Status: cluster.StatusAlive}, {Name: "c", Status: cluster.StatusDead}}
	major := cluster.PartitionOf(ms, 0, false)
	minor := cluster.PartitionOf([]cluster.Member{ms[0], {Name: "b", Status: cluster.StatusDead}, ms[2]}, 0, false)
	set := func(upAgo, changedAgo time.Duration, roundUp bool, roundAgo time.Duration) {
		p.roundUp.Store(roundUp)
		p.roundAt.Store(now.Add(-roundAgo).UnixNano())
		p.upSince.Store(0)
		if upAgo > 0 {
			p.upSince.Store(now.Add(-upAgo).UnixNano())
		}
		p.changedAt.Store(now.Add(-changedAgo).UnixNano())
	}
	cases := []struct {
		name              string
		upAgo, changedAgo time.Duration
		roundUp           bool
		roundAgo          time.Duration
		ps                cluster.PartitionStatus
		want              bool
	}{
		{"up long, stable, a majority", time.Minute, time.Minute, true, 100 * time.Millisecond, major, true},
		{"decision down", 0, time.Minute, true, 100 * time.Millisecond, major, false},
		{"up only for a moment (a brief heal)", 300 * time.Millisecond, time.Minute, true, 100 * time.Millisecond, major, false},
		{"membership still changing", time.Minute, 200 * time.Millisecond, true, 100 * time.Millisecond, major, false},
		{"up and stable but a minority now", time.Minute, time.Minute, true, 100 * time.Millisecond, minor, false},
		{"the last lease round did not reach a side kept up", time.Minute, time.Minute, false, 100 * time.Millisecond, major, false},
		{"no lease round for a while", time.Minute, time.Minute, true, 2 * time.Second, major, false},
	}
	for _, c := range cases {
		set(c.upAgo, c.changedAgo, c.roundUp, c.roundAgo)
		if got := p.removalGate(ms, c.ps); got != c.want {
			t.Errorf("%s: gate = %v, want %v", c.name, got, c.want)
		}
	}
	// c, dead to memberlist, answered the last round over its link: not
	// removed (its gossip is cut; it would learn its removal and stop).
	set(time.Minute, time.Minute, true, 100*time.Millisecond)
	p.round.Store(&leaseRound{at: now, up: true, reached: map[string]uint64{"a": 0, "b": 0, "c": 0}})
	if p.removalGate(ms, major) {
		t.Error("removes while a member it holds dead answers its lease round")
	}
	p.round.Store(&leaseRound{at: now, up: true, reached: map[string]uint64{"a": 0, "b": 0}})
	if !p.removalGate(ms, major) {
		t.Error("does not remove a member that did not answer")
	}
}
