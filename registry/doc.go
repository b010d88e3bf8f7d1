// Package registry is the cluster-wide name registry: a name → PID map
// (with optional metadata) that every node holds a replica of, so a
// lookup is a local map read and a send or call by name reaches the
// process wherever it runs.
//
// It is built on the cluster package's replicated state
// (cluster.AddReplica): each change goes out as a delta by gossip, and
// every push-pull (join, rejoin after a partition, and every
// PushPullInterval) exchanges the full state as anti-entropy. It is AP:
// both sides of a partition keep registering and resolving names, and the
// replicas converge after the heal.
//
// # The CRDT
//
// Per name, a node keeps the greatest Entry it has seen under one total
// order (compareEntries), so merging is taking the maximum: commutative,
// associative and idempotent, whatever the order, duplication or loss of
// deltas. An Entry is a registration (generation, hybrid-clock time TS,
// PID, metadata) or its tombstone (the same plus deletion time, deleting
// node and reason). The order:
//
//  1. a higher generation wins. A registration of a name never seen has
//     generation 1; registering a name again after its tombstone, or
//     taking over a name whose owner's node is down, uses the generation
//     after the one it replaces;
//  2. within a generation (registrations that did not know of each other,
//     as on two sides of a partition) the earliest wins: lower TS, then
//     lower node name, then lower PID;
//  3. a registration's tombstone wins over the registration itself.
//
// So after a heal there is one winner per name on every node. The node
// whose process lost sends it an exit signal with a *ConflictError
// (errors.Is ErrNameConflict; its text starts with "name_conflict"), or,
// with Config.OnConflict = NotifyOnConflict, a ConflictMsg. Conflict events
// are published on the loser's node (and on any node that held both).
//
// # Liveness
//
// A name dies with its process: the owner node watches each registered
// process (Runtime.Watch) and writes a tombstone when it exits (and checks
// again every SweepInterval). Only the owner node writes registrations of
// its processes and their tombstones.
//
// A name dies with its node, in two steps, because a partition looks like
// a crash:
//
//   - while the owner's node is dead in this node's view (memberlist has
//     confirmed it: suspicion alone changes nothing), its entries are
//     hidden: Whereis and List do not return them and the name can be
//     registered again here (a takeover, next generation). They stay in
//     the state: if the node comes back (a healed partition), they are
//     visible again, unless a takeover replaced them, in which case the
//     old holder loses as in any conflict;
//   - entries of a node that left, or came back with a new incarnation,
//     are deleted at once (tombstones); so are those of a node the
//     cluster removed (cluster.Member.Removed: dead past the removal
//     margin, on a side that keeps running; the rule the split-brain
//     decisions use), and those of a node dead for longer than ReapAfter
//     (default 10 min). If the node was only cut
//     off, its registry re-registers, on the heal, those of its processes
//     that still run (next generation).
//
// After convergence no visible name points to a dead process: a process's
// node deletes its names when it exits, and a dead node's names are hidden
// everywhere and then deleted.
//
// The map, its hybrid clock, tombstone retirement and wire encoding are
// the replicated-state engine's (cluster/crdt); State is its map.
//
// Tombstones are kept for TombstoneTTL (default 1 h) after the deletion
// (by its timestamp, so every node forgets one at about the same time),
// then forgotten; a copy that a peer sends afterwards is dropped. A
// replica cut off for longer than that may bring an old live entry back;
// if its process is gone, its node deletes it again; if its node is gone,
// it is hidden and reaped. A registration made in the meantime can lose to
// such an entry only if that entry has a higher generation (dskit's
// memberlist KV has the same limit).
//
// # Events
//
// Subscribe returns Registered, Unregistered (with a reason: unregistered,
// exit, node_down, node_left, node_restarted, node_removed, replaced,
// conflict, reaped) and Conflict events as this node sees them: what a
// name resolves to on this node changed. node_removed: the owner's node
// was removed from the cluster's decisions.
package registry
