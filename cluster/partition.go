package cluster

import "time"

// PartitionState says whether this node's side of the cluster is whole.
type PartitionState string

const (
	// Healthy: every live member is up.
	Healthy PartitionState = "healthy"
	// Partial: some members are missing, but this side holds a majority
	// (or exactly half and the tie-break).
	Partial PartitionState = "partial"
	// Minority: this side holds less than half, or exactly half without the
	// tie-break. A split-brain resolver stops work here.
	Minority PartitionState = "minority"
	// Forming: the node has not had its first full view yet (it has never
	// seen Config.ExpectedSize members up at once, or, with no expected
	// size, its first join and settle rounds are not over) and would
	// otherwise call itself minority. A starting node does not decide
	// before it knows; a split-brain resolver runs nothing new here.
	Forming PartitionState = "forming"
)

// PartitionStatus is the partition state with the numbers behind it.
type PartitionStatus struct {
	State PartitionState `json:"state"`
	// Expected is the denominator: the live members (neither left nor
	// removed), and, until the first full view, at least
	// Config.ExpectedSize.
	Expected int  `json:"expected"`
	Up       int  `json:"up"`        // members alive or suspect, this node included
	TieBreak bool `json:"tie_break"` // Up is exactly half of Expected; State came from the tie-break
	// Removed counts the members removed from the decisions (dead past
	// the removal margin on a side that was up, by the replicated
	// records: see doc.go).
	Removed int `json:"removed,omitempty"`
	// Joining counts the members up whose incarnation is not admitted
	// yet: they are not counted (an earlier incarnation of one may be, as
	// a dead member).
	Joining int `json:"joining,omitempty"`
	// ProfileWarning, when set, says the membership profile does not fit
	// the network: probe round trips measured by this node come close to
	// the probe timeout, or its suspicions of live members keep being
	// refuted. Failure detection then declares healthy nodes dead, and the
	// status above cannot be trusted. See Cluster.observeRTT.
	ProfileWarning string `json:"profile_warning,omitempty"`
}

// PartitionOf applies the partition rule (doc.go) to a list of members:
// the live members are those neither left nor removed (a joining member
// whose earlier incarnation is admitted counts as that one: dead); the
// members up are the live ones alive or suspect and not joining; the
// tie-break candidates are the live members, dead ones included.
// expectedSize is a floor on the denominator that applies only while
// forming, and a would-be minority while forming is reported as Forming.
// It is the one rule behind Cluster.Partition, the split-brain policies
// of package placement and its lease.
func PartitionOf(members []Member, expectedSize int, forming bool) PartitionStatus {
	up, live, removed, joining := 0, 0, 0, 0
	lowest, lowestUp := "", false
	for _, m := range members {
		if m.Status == StatusLeft {
			continue
		}
		if m.Joining && m.Status.Up() {
			joining++
		}
		if m.Removed {
			if !m.Joining {
				removed++
			}
			continue
		}
		live++
		isUp := m.Status.Up() && !m.Joining
		if isUp {
			up++
		}
		if lowest == "" || m.Name < lowest {
			lowest, lowestUp = m.Name, isUp
		}
	}
	expected := live
	if forming {
		expected = max(expected, expectedSize)
	}
	ps := partitionStatus(max(up, 1), max(expected, 1), lowestUp || live == 0)
	ps.Removed, ps.Joining = removed, joining
	if forming && ps.State == Minority {
		ps.State, ps.TieBreak = Forming, false
	}
	return ps
}

// partitionStatus applies the rule documented in doc.go. holdsLowest tells
// whether the lowest name among the live members is up on this side.
func partitionStatus(up, expected int, holdsLowest bool) PartitionStatus {
	ps := PartitionStatus{Expected: expected, Up: up}
	switch {
	case up >= expected:
		ps.State = Healthy
	case 2*up > expected:
		ps.State = Partial
	case 2*up == expected:
		ps.TieBreak = true
		ps.State = Minority
		if holdsLowest {
			ps.State = Partial
		}
	default:
		ps.State = Minority
	}
	return ps
}

// RemovalGate decides whether this side may remove members that have been
// dead past the removal margin: it is asked with the view that still
// counts them, and must say whether this side is the one that keeps
// running. Only a side that keeps running removes anyone, so a minority
// never shrinks its denominator into a majority. The default is the
// partition status (Healthy or Partial); package placement installs its
// split-brain policy (SetRemovalGate).
type RemovalGate func(members []Member, ps PartitionStatus) bool

func defaultRemovalGate(_ []Member, ps PartitionStatus) bool {
	return ps.State == Healthy || ps.State == Partial
}

// AdmissionGate decides whether this node may admit member m (alive in
// its view, its incarnation not admitted), given its view members and
// partition status; it is asked only when this node itself counts. The
// rule (doc.go) is Akka's convergence: a node admits only when it sees
// every member it counts, so that no other side can hold a member it
// counts. The default asks the view: every counted member is up (a
// restarted member's new incarnation stands for its old one). Package
// placement installs one that asks its last lease round, over its own
// node links (SetAdmissionGate).
type AdmissionGate func(m Member, members []Member, ps PartitionStatus) bool

func defaultAdmissionGate(m Member, members []Member, _ PartitionStatus) bool {
	return m.Status == StatusAlive && FullView(members)
}

// FullView reports whether every member that counts (neither left nor
// removed; a joining one standing for its admitted earlier incarnation)
// is up in members.
func FullView(members []Member) bool {
	for _, m := range members {
		if m.Status != StatusLeft && !m.Removed && !m.Status.Up() {
			return false
		}
	}
	return true
}

// RemovalMargin is how long a member must have been dead in this node's
// view before it may be removed from the decisions: Config.RemovalMargin,
// or the profile's upper estimate of crash detection for n members (at
// least 5): by then every node of this side has seen it dead too, since
// each detects a crash within that bound.
func (s ProfileSettings) RemovalMargin(n int) time.Duration {
	_, upper := s.CrashDetection(max(n, 5))
	return upper
}

// Mode is how the node runs: alone, in a cluster, or in the simulator.
type Mode string

const (
	SingleNode Mode = "single_node" // this node is the only member up
	MultiNode  Mode = "multi_node"  // at least one other member is up
	Simulated  Mode = "simulated"   // set by the simulator (SetSimulated)
)

func deriveMode(up int, simulated bool) Mode {
	switch {
	case simulated:
		return Simulated
	case up > 1:
		return MultiNode
	default:
		return SingleNode
	}
}
