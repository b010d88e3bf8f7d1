package cluster

// PartitionState says whether this node's side of the cluster is whole.
type PartitionState string

const (
	// Healthy: every expected member is up.
	Healthy PartitionState = "healthy"
	// Partial: some members are missing, but this side holds a majority
	// (or exactly half and the tie-break).
	Partial PartitionState = "partial"
	// Minority: this side holds less than half, or exactly half without the
	// tie-break. A split-brain resolver stops work here.
	Minority PartitionState = "minority"
)

// PartitionStatus is the partition state with the numbers behind it.
type PartitionStatus struct {
	State    PartitionState `json:"state"`
	Expected int            `json:"expected"`  // Config.ExpectedSize, or the high-water mark of Up
	Up       int            `json:"up"`        // members alive or suspect, this node included
	TieBreak bool           `json:"tie_break"` // Up is exactly half of Expected; State came from the tie-break
}

// partitionStatus applies the rule documented in doc.go. holdsLowest tells
// whether the lowest name among the members this node knows (left ones
// excluded) is up on this side.
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
