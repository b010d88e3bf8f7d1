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
// membership has been stable (no member up, down or left, no partition
// status change) for StableAfter; until then it keeps its last decision.
// A side that decides "down" stops its children (they stay assigned to it)
// and refuses new ones (an Error with code unavailable: HTTP 503); it runs
// them again when a later stable view says "up".
//
// A child of a lost node is restarted elsewhere when (a) the survivor's
// side is up and its view stable, (b) the node has been dead in its view
// for StableAfter + RemovalMargin, counted from when this side was up, and
// (c) the survivor is the child's rendezvous choice. A node that left, or
// came back with a new incarnation, runs nothing of its old assignments:
// its children move after StableAfter alone.
//
// The margin is what keeps a child from running twice. If the two sides
// of a split notice it at times tA (the side that loses) and tB (the side
// that keeps the children), the loser stops at tA + StableAfter and the
// winner starts at tB + StableAfter + RemovalMargin: no overlap as long as
// tA − tB < RemovalMargin, that is, as long as failure detection on the two
// sides differs by less than the margin. The default margin is the
// profile's upper estimate of crash detection (cluster.ProfileSettings
// CrashDetection), at least StableAfter: a side cannot notice later than
// that after the other, short of overload or a paused process.
//
// The policies (see Decide; docs/REGISTRY.md says when each downs the
// wrong side):
//
//   - KeepMajority (default): a side survives unless the cluster's
//     partition status is Minority: more than half of the expected members,
//     or exactly half with the lowest node name. Three sides without a
//     majority all go down.
//   - StaticQuorum: a side survives with at least Quorum members up.
//   - KeepOldest: the side of the oldest member (lowest incarnation)
//     survives; if the oldest is alone, it goes down and the rest survive
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
