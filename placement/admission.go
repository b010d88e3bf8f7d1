package placement

import "github.com/arsenal-go/arsenal/cluster"

// Admission: the sides agree on removal (issue 14).
//
// A side that keeps running removes the members it has seen dead past the
// removal margin; the members it removed may not know (they were cut off,
// and a heal can be too short, under load, for either side to see the
// other alive). Counted by the full membership, the removed members and a
// node restarted among them could then be a majority of their own
// denominator while the side that removed them is a majority of its
// smaller one: both run the same children. So a lease round counts only
// the answers of members that are themselves admitted and admit this
// node:
//
//   - an answer counts only if the answerer is admitted (it holds its
//     lease, or its last completed round was up: a round slower than the
//     lease under load does not un-admit it, a round decided down does;
//     it is on a side that runs) and sees this node's
//     incarnation up and not removed (it counts this node in its
//     denominator: it has not removed it, or has admitted it again since);
//   - this node counts itself only if it holds its lease, or an answer that
//     counts admits it: a node without its lease (cut off) does not count
//     itself, nor the other members without theirs, as a majority basis
//     (Akka's downed members);
//   - a node that has not held a lease since it started (restarted, or
//     joined while members were unreachable: Akka's WeaklyUp) is admitted
//     only by a majority of every live member it or its answerers know,
//     all holding their lease and counting it (itself not among them), or
//     by a full round: the members of its own side may have lost their
//     leases, or be about to, and it must not prop them up (it would
//     count for them, the node's earlier incarnation having been removed
//     by the side that runs);
//   - a full round admits everyone: if every live member answered and
//     counts this node, the round is decided on the whole view, as before
//     (the way a fresh cluster, and a cluster in which no side ran, comes
//     up).
//
// A member removed by a side that runs is not counted by that side, so
// its answers do not count for it, and a node without a lease counts
// nobody without a lease: the removed members cannot make a majority of
// their own, whatever their denominator says. The cost is liveness after
// a total outage (no side held its lease, e.g. a crash and an even split
// within the removal margin): the cluster comes back only when every live
// member answers again (the crashed node returns, or leaves), not when a
// majority does. docs/REGISTRY.md, section 3.

// leaseAnswer is the outcome of one lease request.
type leaseAnswer struct {
	reached bool     // the peer answered over its link
	counts  bool     // it sees this node's incarnation up and not removed
	leased  bool     // it holds its own lease
	live    []string // its live members (neither left nor removed); nil from an older node
}

// Bits of a lease answer (a uint8). An older node answers true: it is
// taken as counting and leased (it knows nothing of admission).
const (
	leaseReplyCounts uint8 = 1 << iota
	leaseReplyLeased
	leaseReplyV2 // set in every answer of this version
)

// decodeLeaseAnswer reads an answer: [flags, live names] from this
// version, true from an older one.
func decodeLeaseAnswer(err error, out any) leaseAnswer {
	if !reached(err) {
		return leaseAnswer{}
	}
	if err != nil { // an error the peer sent back: an older node without the handler
		return leaseAnswer{reached: true, counts: true, leased: true}
	}
	flags := func(v any) (uint8, bool) {
		switch f := v.(type) {
		case uint64:
			return uint8(f), true
		case int64:
			return uint8(f), true
		}
		return 0, false
	}
	switch v := out.(type) {
	case bool:
		return leaseAnswer{reached: true, counts: v, leased: v}
	case []any:
		if len(v) != 2 {
			break
		}
		f, ok := flags(v[0])
		names, _ := v[1].([]any)
		if !ok || f&leaseReplyV2 == 0 {
			break
		}
		a := leaseAnswer{reached: true, counts: f&leaseReplyCounts != 0, leased: f&leaseReplyLeased != 0, live: []string{}}
		for _, n := range names {
			if s, ok := n.(string); ok {
				a.live = append(a.live, s)
			}
		}
		return a
	}
	return leaseAnswer{reached: true}
}

func reachedOf(as []leaseAnswer) []bool {
	r := make([]bool, len(as))
	for i, a := range as {
		r[i] = a.reached
	}
	return r
}

// leaseView is the view a lease round decides on (see Admission above):
// ms as the cluster has it, answers[i] the answer of ms[i] (ignored for
// this node, members that left and removed ones), selfLeased whether this
// node holds its lease at the round's start, fresh whether it has never
// held one since it started. Members that left or were
// removed are kept as they are; every other member is alive if its
// answer counts and dead otherwise. full reports a full round: every live
// member, of this node's view and of the live lists the answers carry (a
// node that has just started knows only the members alive on its side:
// memberlist does not pass dead ones on), answered and counts this node;
// then every live member is alive in the view. admitted reports whether
// this node counts itself; a round in which it does not cannot renew its
// lease, whatever the policy says of the others (its own denominator may
// lack members the others count).
func leaseView(self string, ms []cluster.Member, answers []leaseAnswer, selfLeased, fresh bool) (view []cluster.Member, full, admitted bool) {
	full = true
	admittedBy := false
	leasedFor := 0 // answers that count this node from members holding their lease
	live := map[string]bool{}
	answeredFor := map[string]bool{self: true}
	for i, m := range ms {
		if m.Name != self && answers[i].reached && answers[i].counts {
			answeredFor[m.Name] = true
		}
	}
	for i, m := range ms {
		if m.Name == self || m.Status == cluster.StatusLeft || m.Removed {
			continue
		}
		live[m.Name] = true
		for _, n := range answers[i].live {
			live[n] = true
			if !answeredFor[n] {
				full = false
			}
		}
	}
	for i, m := range ms {
		if m.Name == self || m.Status == cluster.StatusLeft || m.Removed {
			continue
		}
		a := answers[i]
		if !a.reached || !a.counts {
			full = false
		}
		if a.reached && a.counts && a.leased {
			admittedBy = true
			leasedFor++
		}
	}
	if fresh {
		// A node that has not held a lease since it started needs more
		// than one admitted answer: a majority of every live member it
		// or its answerers know (itself included), all holding their
		// lease and counting it, so that it can only join the side that
		// runs, never prop up a side that is losing its leases.
		live[self] = true
		admittedBy = 2*leasedFor > len(live)
	}
	admitted = full || selfLeased || admittedBy
	view = make([]cluster.Member, len(ms))
	for i, m := range ms {
		if m.Status != cluster.StatusLeft && !m.Removed {
			a := answers[i]
			up := full || (a.reached && a.counts && a.leased)
			if m.Name == self {
				up = admitted
			}
			m.Status = cluster.StatusDead
			if up {
				m.Status = cluster.StatusAlive
			}
		}
		view[i] = m
	}
	return view, full, admitted
}
