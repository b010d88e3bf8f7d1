// Package placement is the distributed supervisor: it starts children
// anywhere in the cluster, restarts them on a live node when theirs is
// lost, hands them off when their node leaves, and decides, when the
// cluster splits, which side keeps running them (a split-brain policy).
//
// A child is data: (ID, kind, arguments, optional registry name, restart
// type). The behaviour comes from the factory every node registered for
// the kind (RegisterKind), so any node can start any child.
//
// # State
//
// Every node holds a replica of the children's records (a state-based CRDT
// over the cluster's gossip, as the registry's): per child ID, the
// greatest record under one total order. A record says which node, of
// which incarnation, is to run the child (an assignment: generation,
// hybrid-clock time, node), and the PID its owner last started. A higher
// generation wins; in one generation the earliest assignment; a tombstone
// (the child was stopped) wins over its assignment; the owner's later
// start (Seq) wins over its earlier one.
// The map, its hybrid clock, the retirement of tombstones (TombstoneTTL
// after the stop, unless the child still runs here) and the wire encoding
// are the replicated-state engine's (cluster/crdt); State is its map.
//
// Every node reconciles on every change and every ReconcileInterval: it
// runs the children assigned to it (restarting them after exits, by their
// restart type and a restart intensity), stops those assigned elsewhere,
// and takes over, as the next generation, the children of a lost node for
// which it is the rendezvous choice among the members it sees up. Every
// survivor with the same view picks the same node, without talking.
//
// # Placement strategies
//
// StartChild runs on any node and picks the node to start on: Rendezvous
// (default: highest random weight hash of the ID over the live members),
// RoundRobin, LeastLoaded (fewest children in the replica) or Local. The
// chosen node starts the child, records it, and tells the child's
// successor (the node that would take it over) directly before answering,
// so an acknowledged start survives the crash of its node.
//
// # Split-brain policies and timing
//
// Each node applies the policy (Decide) to its own view, but only once the
// membership has been stable (no member up, down or left; a removal does
// not count, see membershipChange) for StableAfter; until then it keeps its last
// decision. A view still forming (cluster.Forming: the node has not had
// its first full view) is down, and the first decision after it applies at
// once (nothing ran before it), so a start right after formation is
// accepted. A side that decides "down" stops its children (they stay
// assigned to it) and refuses new ones (an Error with code unavailable:
// HTTP 503); it runs them again when a later stable view says "up". The
// policies count live members only (cluster.PartitionOf over the
// cluster's replicated membership records: members that left, were
// removed or are not admitted yet are not candidates), and Start installs
// the policy as the cluster's removal gate, so only a side that the
// policy keeps up removes its dead; and only once its decision has been
// up for RemovalMargin, the membership stable for StableAfter and its
// last lease round up on the view of its own links (removalGate), so the
// dead time that counts is time spent up on a settled view, not a
// partition spent on the losing side or a brief heal. A node that does
// not count itself (not admitted yet, or removed: cluster.Member.Joining,
// Removed) is down under every policy at once, and its first decision
// after its admission applies at once.
//
// # Admission and removal: the sides agree
//
// A removal is a record every node adopts (package cluster, standing.go),
// so the members a side removed learn it, and count nothing, from the
// first record they get from that side. The lease carries the records:
// every request has the asker's, every answer the answerer's, both merge
// them, and a round is decided on what every member it reached knows (a
// removed node's round is down from the first answer of a member of the
// side that removed it). Start also installs the cluster's admission gate
// (admissionGate): this node admits a member (joining, restarted, back
// after its removal) only on a full lease round, one in which every
// member it counts answered over its own link with the incarnation the
// view has, the newcomer included; a restarted member answering with its
// new incarnation stands for its old one (leaseView). So a newcomer is
// admitted only by a node that no other side can share a counted member
// with, never needs to remove a dead node itself (it adopts the removal
// the side that runs made), and a removed side that never heard of its
// removal still counts the members of the side that removed it, which it
// cannot reach: it admits nobody and is not a majority.
// docs/REGISTRY.md, "Admission and removal", has the argument step by
// step and its limits (concurrent admissions on both sides of a cut,
// among others).
//
// A child of a lost node is restarted elsewhere when (a) the survivor's
// side is up and its view stable, (b) the node has been dead in its view
// for StableAfter + RemovalMargin, counted from when this side was up, (c)
// the survivor holds its own lease and has not answered a lease renewal of
// that node for LeaseTimeout + the fence, and (d) the survivor is the
// child's rendezvous choice. A node that left, or came back with a new
// incarnation, runs nothing of its old assignments: its children move
// after StableAfter alone.
//
// The lease is what keeps a child from running twice. memberlist on a node
// cut off notices late (Lifeguard slows its suspicion of the others when
// its own probes fail), so a node runs children only while it holds a
// lease: every LeaseRenew it asks every live member over its own node
// links, merges the membership records of the answers, applies the policy
// to the view where those that answered are up,
// and if that side is up the lease holds until the round's start +
// LeaseTimeout. Without it, it stops its children (reason lease_expired),
// killing those that have not stopped within the fence. After a cut at tc
// the other side cannot declare the node dead before tc +
// ProfileSettings.MinDetection, so it starts nothing before tc +
// EarliestTakeover (MinDetection + StableAfter + RemovalMargin); the node
// cut off has stopped by tc + LeaseTimeout + fence. The defaults
// (LeaseTimeout = EarliestTakeover/2, fence = EarliestTakeover/10) leave
// a safety margin of 0.4 × EarliestTakeover (1.24 s on fast, 16.6 s on
// lan; Config.SafetyMargin, Status.SafetyMargin). Only monotonic
// durations on each node are compared, from the same event; a process
// paused past EarliestTakeover can still run a child a moment after it
// resumes (a lease alone cannot fence a paused process). docs/REGISTRY.md
// has the table per profile and what breaks the bound.
//
// # Starting what does not run here
//
// A record can be stale: another node took the child over (a later
// generation) while this one was cut off from it, restarted, or missed the
// broadcast. So a node starts a copy of a child it does not run (a
// takeover, or its own assignment after a restart, a lost lease or a down
// decision; not the restart of a child that ran here under the same
// assignment) only when (1) every member it does not see up has been out
// of its view, counted from when its side was up, for StableAfter +
// RemovalMargin and has not asked it for a lease renewal for LeaseTimeout
// + the fence (quietLocked: whoever took the child over may be any of
// them, not only the node the record names), and (2) right before, it has
// pulled the state of every member it sees up (placement.sync), every one
// answered, and it planned again from the merged state (the merge gate in
// reconcile). The guarantee: any other copy runs on a member it sees up,
// whose record it has merged (the CRDT says which assignment wins, and
// two nodes that see each other up are never both the rendezvous
// choice), or on a member it has not seen for longer than the earliest
// takeover, which by the lease has stopped it. The clock assumptions are
// the lease's: monotonic durations on each node from the same event.
//
// The policies (see Decide; docs/REGISTRY.md says when each downs the
// wrong side):
//
//   - KeepMajority (default): a side survives unless the cluster's
//     partition status is Minority (or Forming): more than half of the
//     live members, or exactly half with the lowest live node name. Three
//     sides without a majority all go down.
//   - StaticQuorum: a side survives with at least Quorum members up.
//   - KeepOldest: the side of the oldest live member (lowest
//     incarnation) survives; if the oldest is alone, it goes down and the rest survive
//     (unless KeepOldestAlone).
//   - DownAll: children run only while every expected member is up.
//
// # Leaving
//
// Stop hands every local child off: it stops here, its record is assigned
// (next generation) to its rendezvous choice among the other members, that
// node is told directly and starts it. Close ends the placement without a
// hand-off. Rebalance hands off the children whose rendezvous choice is
// another node (after a node joined).
package placement
