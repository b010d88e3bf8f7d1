package placement

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/arsenal-go/arsenal/cluster"
)

// Policy is the split-brain policy: which side of a partition keeps
// running children. See doc.go for what each one guarantees.
type Policy string

const (
	// KeepMajority (the default): the side that holds more than half of
	// the expected members survives; on an exact half, the side that holds
	// the lowest node name. It is the cluster's partition status: a side
	// survives unless it is Minority.
	KeepMajority Policy = "keep_majority"
	// StaticQuorum: a side survives if it has at least Config.Quorum
	// members up.
	StaticQuorum Policy = "static_quorum"
	// KeepOldest: the side that holds the oldest member survives (the one
	// with the lowest incarnation, which grows with start time; ties by
	// name). If the oldest is cut off alone it downs itself and the rest
	// survive, unless Config.KeepOldestAlone.
	KeepOldest Policy = "keep_oldest"
	// DownAll: every side downs itself whenever a member is missing: children
	// run only while the whole expected cluster is up.
	DownAll Policy = "down_all"
)

// Policies lists the split-brain policies.
func Policies() []Policy { return []Policy{KeepMajority, StaticQuorum, KeepOldest, DownAll} }

// ParsePolicy accepts a policy name with '-' or '_'; "" is KeepMajority.
func ParsePolicy(s string) (Policy, error) {
	if s == "" {
		return KeepMajority, nil
	}
	p := Policy(strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", "_"))
	if slices.Contains(Policies(), p) {
		return p, nil
	}
	return "", fmt.Errorf("placement: unknown split-brain policy %q (want keep_majority, static_quorum, keep_oldest or down_all)", s)
}

// View is what a split-brain decision looks at: this node's membership.
type View struct {
	Self      string
	Members   []cluster.Member // every known member, this node included
	Partition cluster.PartitionStatus
}

// Decision is the outcome of a policy on a view.
type Decision struct {
	Up     bool   `json:"up"`     // this side keeps (and may start) children
	Reason string `json:"reason"` // why, in words
	// Forming: the node has not had its first full view yet
	// (cluster.Forming); the first decision after it applies at once,
	// without waiting for StableAfter (nothing ran before it).
	Forming bool `json:"forming,omitempty"`
}

// Decide applies a policy to a view. It is a pure function: every node of
// one side, with one view, decides alike.
//
// Members that left, or that the cluster's records removed (dead past
// the removal margin on a side that ran, cluster.Member.Removed), are not
// candidates: they are not missing. A member whose incarnation is not
// admitted yet (cluster.Member.Joining) is not up. A node that does not
// count itself (not admitted yet, or removed) is down under every policy,
// and so is a view that is still forming (cluster.Forming); both
// decisions are Forming: the next one applies at once.
func Decide(p Policy, quorum int, keepOldestAlone bool, v View) Decision {
	for _, m := range v.Members {
		if m.Name != v.Self || m.Status == cluster.StatusLeft {
			continue
		}
		switch {
		case m.Joining:
			return Decision{Up: false, Forming: true, Reason: "this node's incarnation is not admitted yet: it waits for a member that sees every counted member (cluster admission)"}
		case m.Removed:
			return Decision{Up: false, Forming: true, Reason: "this node was removed by a side that kept running: it waits to be admitted again"}
		}
	}
	if v.Partition.State == cluster.Forming {
		return Decision{Up: false, Forming: true, Reason: fmt.Sprintf("forming: %d of the %d expected members seen up so far", v.Partition.Up, v.Partition.Expected)}
	}
	var up, known []cluster.Member
	for _, m := range v.Members {
		if m.Status == cluster.StatusLeft || m.Removed {
			continue // left on purpose, or removed: not missing
		}
		known = append(known, m)
		if m.Status.Up() && !m.Joining {
			up = append(up, m)
		}
	}
	switch p {
	case StaticQuorum:
		if len(up) >= quorum {
			return Decision{Up: true, Reason: fmt.Sprintf("%d members up, quorum is %d", len(up), quorum)}
		}
		return Decision{Up: false, Reason: fmt.Sprintf("%d members up, below the quorum of %d", len(up), quorum)}
	case KeepOldest:
		if len(known) == 0 {
			return Decision{Up: true, Reason: "alone"}
		}
		oldest := slices.MinFunc(known, func(a, b cluster.Member) int {
			if a.Incarnation != b.Incarnation {
				if a.Incarnation < b.Incarnation {
					return -1
				}
				return 1
			}
			return strings.Compare(a.Name, b.Name)
		})
		if oldest.Status.Up() && !oldest.Joining {
			if !keepOldestAlone && len(up) == 1 && len(known) > 1 {
				return Decision{Up: false, Reason: fmt.Sprintf("the oldest member %s is cut off alone: it downs itself", oldest.Name)}
			}
			return Decision{Up: true, Reason: fmt.Sprintf("this side holds the oldest member %s", oldest.Name)}
		}
		if !keepOldestAlone && len(known)-len(up) == 1 {
			return Decision{Up: true, Reason: fmt.Sprintf("the oldest member %s is the only one missing: it is alone and downs itself", oldest.Name)}
		}
		return Decision{Up: false, Reason: fmt.Sprintf("the oldest member %s is on the other side", oldest.Name)}
	case DownAll:
		if v.Partition.State == cluster.Healthy {
			return Decision{Up: true, Reason: "every expected member is up"}
		}
		return Decision{Up: false, Reason: fmt.Sprintf("%d of %d expected members up: down-all downs every side", v.Partition.Up, v.Partition.Expected)}
	default:
		ps := v.Partition
		switch {
		case ps.State == cluster.Healthy:
			return Decision{Up: true, Reason: "every expected member is up"}
		case ps.State == cluster.Partial && ps.TieBreak:
			return Decision{Up: true, Reason: fmt.Sprintf("%d of %d up, exactly half, and this side holds the lowest node name", ps.Up, ps.Expected)}
		case ps.State == cluster.Partial:
			return Decision{Up: true, Reason: fmt.Sprintf("%d of %d up: a majority", ps.Up, ps.Expected)}
		case ps.TieBreak:
			return Decision{Up: false, Reason: fmt.Sprintf("%d of %d up, exactly half, and the lowest node name is on the other side", ps.Up, ps.Expected)}
		}
		return Decision{Up: false, Reason: fmt.Sprintf("%d of %d up: a minority", ps.Up, ps.Expected)}
	}
}

// score is the rendezvous (highest random weight) hash of a child on a
// node: FNV-1a of both, through a 64-bit finaliser so that close inputs
// spread.
func score(id, node string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(node))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// RendezvousChoice returns the node of nodes with the highest score for id (ties
// by name), or "" for no nodes. Removing a node moves only its own
// children; adding one moves about 1/N of them.
func RendezvousChoice(id string, nodes []string) string {
	best, bestScore := "", uint64(0)
	for _, n := range nodes {
		s := score(id, n)
		if best == "" || s > bestScore || (s == bestScore && n < best) {
			best, bestScore = n, s
		}
	}
	return best
}
