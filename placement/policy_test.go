package placement

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/cluster/crdt"
	"github.com/arsenal-go/arsenal/cluster/crdt/crdttest"
	"github.com/arsenal-go/arsenal/process"
)

// sideView builds the view of one side of a split: the members of side
// are up, the other known members dead. expected is the cluster's size.
func sideView(all []cluster.Member, side []string, expected int) View {
	var ms []cluster.Member
	up := 0
	lowest, lowestUp := "", false
	for _, m := range all {
		if slices.Contains(side, m.Name) {
			m.Status = cluster.StatusAlive
			up++
		} else {
			m.Status = cluster.StatusDead
		}
		ms = append(ms, m)
		if lowest == "" || m.Name < lowest {
			lowest, lowestUp = m.Name, m.Status.Up()
		}
	}
	ps := cluster.PartitionStatus{Expected: expected, Up: up}
	switch {
	case up >= expected:
		ps.State = cluster.Healthy
	case 2*up > expected:
		ps.State = cluster.Partial
	case 2*up == expected:
		ps.TieBreak = true
		ps.State = cluster.Minority
		if lowestUp {
			ps.State = cluster.Partial
		}
	default:
		ps.State = cluster.Minority
	}
	return View{Self: side[0], Members: ms, Partition: ps}
}

func members(n int) []cluster.Member {
	var out []cluster.Member
	for i := range n {
		// Incarnations grow with start time: n1 is the oldest.
		out = append(out, cluster.Member{Name: fmt.Sprintf("n%d@h", i+1), Incarnation: uint64(100 + i)})
	}
	return out
}

func names(ms []cluster.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

// For every split of a cluster into two sides, keep-majority keeps exactly
// one side (ties by the lowest name), keep-oldest exactly one (the oldest's,
// or the other when the oldest is alone), static-quorum at most one when
// quorum > n/2, and down-all none.
func TestPoliciesOnEveryTwoWaySplit(t *testing.T) {
	for n := 2; n <= 7; n++ {
		all := members(n)
		ns := names(all)
		for mask := 1; mask < 1<<n-1; mask++ {
			var a, b []string
			for i, name := range ns {
				if mask&(1<<i) != 0 {
					a = append(a, name)
				} else {
					b = append(b, name)
				}
			}
			va, vb := sideView(all, a, n), sideView(all, b, n)
			for _, tc := range []struct {
				p      Policy
				quorum int
				alone  bool
				want   func(da, db Decision) bool
			}{
				{KeepMajority, 0, false, func(da, db Decision) bool { return da.Up != db.Up }},
				{KeepOldest, 0, false, func(da, db Decision) bool { return da.Up != db.Up }},
				{KeepOldest, 0, true, func(da, db Decision) bool { return da.Up != db.Up }},
				{StaticQuorum, n/2 + 1, false, func(da, db Decision) bool { return !(da.Up && db.Up) }},
				{DownAll, 0, false, func(da, db Decision) bool { return !da.Up && !db.Up }},
			} {
				da := Decide(tc.p, tc.quorum, tc.alone, va)
				db := Decide(tc.p, tc.quorum, tc.alone, vb)
				if !tc.want(da, db) {
					t.Fatalf("n=%d %v|%v %s: %+v / %+v", n, a, b, tc.p, da, db)
				}
				// Deterministic: the same view decides alike.
				if again := Decide(tc.p, tc.quorum, tc.alone, va); again != da {
					t.Fatalf("%s not deterministic", tc.p)
				}
			}
			// keep-majority: the bigger side, or on a tie the lowest name's.
			da := Decide(KeepMajority, 0, false, va)
			wantA := len(a) > len(b) || len(a) == len(b) && slices.Contains(a, "n1@h")
			if da.Up != wantA {
				t.Fatalf("keep-majority n=%d %v|%v: side a up=%v, want %v (%s)", n, a, b, da.Up, wantA, da.Reason)
			}
			// keep-oldest: n1's side, unless n1 is alone (then the others).
			do := Decide(KeepOldest, 0, false, va)
			oldestA := slices.Contains(a, "n1@h")
			wantO := oldestA && len(a) > 1 || !oldestA && len(b) == 1
			if do.Up != wantO {
				t.Fatalf("keep-oldest n=%d %v|%v: side a up=%v, want %v (%s)", n, a, b, do.Up, wantO, do.Reason)
			}
		}
	}
}

// With three sides and no majority, keep-majority downs them all.
func TestKeepMajorityThreeWaySplit(t *testing.T) {
	all := members(5)
	for _, side := range [][]string{{"n1@h", "n2@h"}, {"n3@h", "n4@h"}, {"n5@h"}} {
		if d := Decide(KeepMajority, 0, false, sideView(all, side, 5)); d.Up {
			t.Fatalf("side %v stays up without a majority: %s", side, d.Reason)
		}
	}
	// A crashed member with the rest whole is no split: the rest stay up.
	if d := Decide(KeepMajority, 0, false, sideView(all, []string{"n1@h", "n2@h", "n3@h", "n4@h"}, 5)); !d.Up {
		t.Fatal(d.Reason)
	}
	if d := Decide(DownAll, 0, false, sideView(all, []string{"n1@h", "n2@h", "n3@h", "n4@h"}, 5)); d.Up {
		t.Fatal("down-all keeps running with a member missing")
	}
	// Left members are not missing.
	v := sideView(all, []string{"n1@h", "n2@h"}, 2)
	for i := range v.Members {
		if v.Members[i].Status == cluster.StatusDead {
			v.Members[i].Status = cluster.StatusLeft
		}
	}
	if d := Decide(KeepOldest, 0, false, v); !d.Up {
		t.Fatal(d.Reason)
	}
}

// Removing a node moves only the children it held; each remaining node
// keeps all of its own.
func TestRendezvousStability(t *testing.T) {
	nodes := []string{"a@h", "b@h", "c@h", "d@h", "e@h"}
	count := map[string]int{}
	for i := range 2000 {
		id := fmt.Sprintf("child-%d", i)
		before := RendezvousChoice(id, nodes)
		count[before]++
		after := RendezvousChoice(id, slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return n == "c@h" }))
		if before != "c@h" && after != before {
			t.Fatalf("%s moved from %s to %s though %s stayed", id, before, after, before)
		}
	}
	for _, n := range nodes {
		if count[n] < 300 || count[n] > 500 {
			t.Fatalf("uneven spread: %v", count)
		}
	}
	if RendezvousChoice("x", nil) != "" {
		t.Fatal("no nodes must give no node")
	}
}

func randomRecords(rng *rand.Rand, n int) []*Record {
	ids := []string{"a", "b", "c"}
	nodes := []string{"n1@h", "n2@h", "n3@h"}
	var out []*Record
	for range n {
		r := &Record{ID: ids[rng.IntN(3)], Kind: "k", Gen: uint64(1 + rng.IntN(3)), TS: uint64(1 + rng.IntN(4)),
			Node: nodes[rng.IntN(3)], Inc: uint64(1 + rng.IntN(2))}
		if rng.IntN(2) == 0 {
			r.Seq = uint64(1 + rng.IntN(3))
			r.PID = process.PID{Node: r.Node, Incarnation: r.Inc, ID: r.Seq}
		}
		if rng.IntN(3) == 0 {
			r.Deleted, r.DelTS, r.DelBy = true, uint64(1+rng.IntN(3)), nodes[rng.IntN(3)]
		}
		out = append(out, r)
	}
	return out
}

func TestRecordMergeIsACRDT(t *testing.T) {
	for seed := uint64(1); seed <= 500; seed++ {
		rng := rand.New(rand.NewPCG(seed, 5))
		rs := randomRecords(rng, 2+rng.IntN(25))
		if err := crdttest.CheckJoin(rng, rs); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := crdttest.CheckOrder(rng, rs, func(a, b *Record) bool { return reflect.DeepEqual(a, b) }); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
	rs, err := crdt.Decode[Record](crdt.Encode(randomRecords(rand.New(rand.NewPCG(1, 1)), 10)))
	if err != nil || len(rs) != 10 {
		t.Fatalf("wire round trip: %v %d", err, len(rs))
	}
}

// liveSideView is one side's view as package cluster builds it: the
// members of side up, the others dead, those in removed dead and removed
// (past the removal margin before the split), and the partition status
// by cluster.PartitionOf, the one rule.
func liveSideView(all []cluster.Member, side, removed []string) View {
	var ms []cluster.Member
	for _, m := range all {
		m.Status = cluster.StatusDead
		if slices.Contains(side, m.Name) {
			m.Status = cluster.StatusAlive
		}
		m.Removed = slices.Contains(removed, m.Name)
		ms = append(ms, m)
	}
	return View{Self: side[0], Members: ms, Partition: cluster.PartitionOf(ms, len(all), false)}
}

// A crash (n1, the oldest and the lowest name), seen by every survivor
// past the removal margin, then an even split of the four others: under
// keep-majority and keep-oldest exactly one side stays up, the same one
// on every run. Before the removal both sides go down (it looks like a
// three-way split: safe).
func TestCrashThenEvenSplit(t *testing.T) {
	all := members(5)
	a, b := []string{"n2@h", "n3@h"}, []string{"n4@h", "n5@h"}
	for _, p := range []Policy{KeepMajority, KeepOldest} {
		da := Decide(p, 0, false, liveSideView(all, a, []string{"n1@h"}))
		db := Decide(p, 0, false, liveSideView(all, b, []string{"n1@h"}))
		if !da.Up || db.Up {
			t.Errorf("%s, n1 removed: side %v up=%v (%s), side %v up=%v (%s); want exactly the first up", p, a, da.Up, da.Reason, b, db.Up, db.Reason)
		}
		da = Decide(p, 0, false, liveSideView(all, a, nil))
		db = Decide(p, 0, false, liveSideView(all, b, nil))
		if da.Up || db.Up {
			t.Errorf("%s, n1 not removed yet: up %v and %v; want both down", p, da.Up, db.Up)
		}
	}
}

// Two nodes (n1, n2) crash and are replaced by new names (n6, n7); once
// the dead are removed, a 3|2 split keeps the majority up under
// keep-majority, and exactly one side under keep-oldest (the side of n3,
// now the oldest).
func TestReplacedThenSplit(t *testing.T) {
	all := members(7)
	removed := []string{"n1@h", "n2@h"}
	maj, mnr := []string{"n3@h", "n4@h", "n5@h"}, []string{"n6@h", "n7@h"}
	for _, p := range []Policy{KeepMajority, KeepOldest} {
		dMaj := Decide(p, 0, false, liveSideView(all, maj, removed))
		dMnr := Decide(p, 0, false, liveSideView(all, mnr, removed))
		if !dMaj.Up || dMnr.Up {
			t.Errorf("%s: majority up=%v (%s), minority up=%v (%s)", p, dMaj.Up, dMaj.Reason, dMnr.Up, dMnr.Reason)
		}
	}
	// The old rule (a high-water mark of 7) downed both sides: 3 of 7.
	if ps := liveSideView(all, maj, nil).Partition; ps.State != cluster.Minority || ps.Expected != 7 {
		t.Errorf("without removal: %+v", ps)
	}
}

// A view still forming is down under every policy, and says so.
func TestDecideForming(t *testing.T) {
	v := View{Self: "n1@h", Members: members(1), Partition: cluster.PartitionStatus{State: cluster.Forming, Up: 1, Expected: 3}}
	for _, p := range Policies() {
		if d := Decide(p, 1, false, v); d.Up || !d.Forming {
			t.Errorf("%s: %+v", p, d)
		}
	}
}
