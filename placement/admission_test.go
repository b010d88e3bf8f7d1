package placement

import (
	"slices"
	"testing"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/codec"
	"github.com/arsenal-go/arsenal/node"
)

// leaseView and Decide together: the sides agree on removal (issue 14).
// The replay of TestSplitBrainChurnBriefHeal in the lease's terms: five
// members n1..n5; the side {n1,n2} removed n4 and n5 in a first partition
// and n3 after it crashed; n4 and n5 lost their leases then, n3 restarted
// among them. In the second partition {n1,n2} | {n3,n4,n5}, each side is a
// majority of its own denominator, but only {n1,n2} keeps its lease.
func TestLeaseAdmissionBriefHeal(t *testing.T) {
	alive := func(name string) cluster.Member {
		return cluster.Member{Name: name, Status: cluster.StatusAlive, Incarnation: 1}
	}
	dead := func(name string) cluster.Member {
		return cluster.Member{Name: name, Status: cluster.StatusDead, Incarnation: 1}
	}
	removed := func(m cluster.Member) cluster.Member { m.Removed = true; return m }
	yes := leaseAnswer{reached: true, counts: true, leased: true}
	unleased := leaseAnswer{reached: true, counts: true}
	notCounted := leaseAnswer{reached: true, leased: true}
	none := leaseAnswer{}
	decide := func(p Policy, self string, ms []cluster.Member, as []leaseAnswer, selfLeased, fresh bool) (bool, bool) {
		v, full, admitted := leaseView(self, ms, as, selfLeased, fresh)
		return admitted && Decide(p, 3, false, View{Self: self, Members: v, Partition: cluster.PartitionOf(v, 0, false)}).Up, full
	}
	cases := []struct {
		name              string
		self              string
		ms                []cluster.Member
		as                []leaseAnswer
		selfLeased, fresh bool
		want, wantFull    bool
	}{
		{"the side that removed: n1, n2 leased, 2 of 2 live", "n1",
			[]cluster.Member{alive("n1"), alive("n2"), removed(dead("n3")), removed(dead("n4")), removed(dead("n5"))},
			[]leaseAnswer{{}, yes, none, none, none}, true, false, true, true},
		{"a removed member without its lease: n4 counts neither itself nor n5 nor the restarted n3", "n4",
			[]cluster.Member{dead("n1"), dead("n2"), alive("n3"), alive("n4"), alive("n5")},
			[]leaseAnswer{none, none, unleased, {}, unleased}, false, false, false, false},
		{"the restarted n3, fresh: the leaseless n4 and n5 do not admit it", "n3",
			[]cluster.Member{dead("n1"), dead("n2"), alive("n3"), alive("n4"), alive("n5")},
			[]leaseAnswer{none, none, {}, unleased, unleased}, false, true, false, false},
		{"the restarted n3, fresh: leased n4 and n5 (readmitted in the heal) do not admit it either", "n3",
			[]cluster.Member{dead("n1"), dead("n2"), alive("n3"), alive("n4"), alive("n5")},
			[]leaseAnswer{none, none, {}, yes, yes}, false, true, false, false},
		{"leased n4 and n5 without n3: 2 of 5", "n4",
			[]cluster.Member{dead("n1"), dead("n2"), alive("n3"), alive("n4"), alive("n5")},
			[]leaseAnswer{none, none, unleased, {}, yes}, true, false, false, false},
		{"a leased member that removed this node does not count for it", "n4",
			[]cluster.Member{alive("n1"), alive("n2"), alive("n3"), alive("n4"), alive("n5")},
			[]leaseAnswer{notCounted, notCounted, notCounted, {}, unleased}, false, false, false, false},
		{"readmitted after the heal: the side that runs counts it (3 of 5 with itself)", "n4",
			[]cluster.Member{alive("n1"), alive("n2"), dead("n3"), alive("n4"), alive("n5")},
			[]leaseAnswer{yes, yes, none, {}, unleased}, false, false, true, false},
		{"a fresh node in a healthy cluster: a full round admits it", "n3",
			[]cluster.Member{alive("n1"), alive("n2"), alive("n3"), alive("n4"), alive("n5")},
			[]leaseAnswer{yes, yes, {}, yes, yes}, false, true, true, true},
		{"a fresh node while a member crashed, not removed yet: three leased of five admit it", "n5",
			[]cluster.Member{dead("n1"), alive("n2"), alive("n3"), alive("n4"), alive("n5")},
			[]leaseAnswer{none, yes, yes, yes, {}}, false, true, true, false},
		{"a fresh node: two leased of five do not", "n5",
			[]cluster.Member{dead("n1"), alive("n2"), alive("n3"), alive("n4"), alive("n5")},
			[]leaseAnswer{none, yes, yes, unleased, {}}, false, true, false, false},
		{"a fresh node that knows only its side: the answerers' live lists count", "n5",
			[]cluster.Member{alive("n3"), alive("n4"), alive("n5")},
			[]leaseAnswer{{reached: true, counts: true, leased: true, live: []string{"n1", "n2", "n3", "n4", "n5"}},
				{reached: true, counts: true, leased: true, live: []string{"n1", "n2", "n3", "n4", "n5"}}, {}}, false, true, false, false},
		{"a fresh cluster, nobody leased yet: a full round", "n1",
			[]cluster.Member{alive("n1"), alive("n2"), alive("n3")},
			[]leaseAnswer{{}, unleased, unleased}, false, true, true, true},
		{"after a total outage with a member missing: no one admits", "n2",
			[]cluster.Member{dead("n1"), alive("n2"), alive("n3"), alive("n4"), alive("n5")},
			[]leaseAnswer{none, {}, unleased, unleased, unleased}, false, false, false, false},
		{"alone: a full round", "n1", []cluster.Member{alive("n1"), removed(dead("n2"))},
			[]leaseAnswer{{}, none}, false, true, true, true},
	}
	for _, p := range []Policy{KeepMajority, KeepOldest, StaticQuorum} {
		for _, c := range cases {
			if p == StaticQuorum && c.name == "the side that removed: n1, n2 leased, 2 of 2 live" {
				continue // static quorum 3 keeps its number: down with 2
			}
			if p == StaticQuorum && c.name == "alone: a full round" {
				continue
			}
			got, full := decide(p, c.self, c.ms, c.as, c.selfLeased, c.fresh)
			if full != c.wantFull {
				t.Errorf("%s, %s: full = %v, want %v", p, c.name, full, c.wantFull)
			}
			if got != c.want {
				t.Errorf("%s, %s: up = %v, want %v", p, c.name, got, c.want)
			}
		}
	}
}

// An answer, through the codec: [flags, live names] from this version;
// an older node's true counts and is leased; an error the peer sent back
// (an older node without the handler) too; no answer does not count.
func TestDecodeLeaseAnswer(t *testing.T) {
	roundTrip := func(v any) any {
		b, err := codec.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var out any
		if err := codec.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if a := decodeLeaseAnswer(nil, roundTrip(true)); !a.reached || !a.counts || !a.leased || a.live != nil {
		t.Errorf("true: %+v", a)
	}
	a := decodeLeaseAnswer(nil, roundTrip([]any{leaseReplyV2 | leaseReplyCounts, []string{"n1", "n2"}}))
	if !a.reached || !a.counts || a.leased || !slices.Equal(a.live, []string{"n1", "n2"}) {
		t.Errorf("counts only: %+v", a)
	}
	if a := decodeLeaseAnswer(nil, roundTrip([]any{leaseReplyV2, []string{}})); a.counts || a.leased || !a.reached {
		t.Errorf("neither: %+v", a)
	}
	if a := decodeLeaseAnswer(&node.RequestError{Code: node.CodeUnknownOp}, nil); !a.reached || !a.counts || !a.leased {
		t.Errorf("unknown operation: %+v", a)
	}
	if a := decodeLeaseAnswer(&node.RequestError{Code: node.CodeTimeout}, nil); a.reached || a.counts || a.leased {
		t.Errorf("timeout: %+v", a)
	}
}

// A node that has just started knows only the members alive on its side
// (memberlist passes no dead ones on): the live lists of the answers make
// its round not full while members they count did not answer.
func TestLeaseFullRoundUsesTheAnswerersLiveLists(t *testing.T) {
	alive := func(name string) cluster.Member {
		return cluster.Member{Name: name, Status: cluster.StatusAlive, Incarnation: 1}
	}
	ms := []cluster.Member{alive("n3"), alive("n4"), alive("n5")}
	all := []string{"n1", "n2", "n3", "n4", "n5"}
	as := []leaseAnswer{{}, {reached: true, counts: true, live: all}, {reached: true, counts: true, live: all}}
	if _, full, _ := leaseView("n3", ms, as, false, true); full {
		t.Error("full round although n1 and n2, live for the answerers, did not answer")
	}
	mine := []string{"n3", "n4", "n5"}
	as = []leaseAnswer{{}, {reached: true, counts: true, live: mine}, {reached: true, counts: true, live: mine}}
	if _, full, _ := leaseView("n3", ms, as, false, true); !full {
		t.Error("not full although every live member of every view answered")
	}
}
