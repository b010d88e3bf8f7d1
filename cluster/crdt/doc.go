// Package crdt is the replicated-state engine of the packages that ride on
// cluster.Replica (the registry and placement): a state-based CRDT map of
// keyed entries where, per key, the greatest entry wins.
//
// # The map
//
// A Map holds, per key, the greatest entry it has seen under the entry
// type's own total order (Value.Compare). Merging one entry keeps the
// greater of it and the held one; merging a state merges each of its
// entries. Because the order is total, the merge is a join: commutative,
// associative and idempotent, so deltas (one entry, sent by gossip) and
// full states (push-pull) may arrive in any order, more than once, or not
// at all, and every replica that has seen the same entries holds the same
// map. The order is the entry type's business (the registry's and
// placement's differ: higher generation, then the earliest hybrid-clock
// time, then a tie-break on the writer, then the tombstone); the engine
// asks only that it be total and that a tombstone beat the entry it ends.
//
// # Tombstones and their retirement
//
// A deleted key is kept as a tombstone, an entry that says it is deleted
// and when (Value.Tombstone). A tombstone may be forgotten (retired) only
// when no replica can still send the entry it ended: otherwise that entry
// comes back (a resurrection). Retirement here is by a margin on the
// deletion's own hybrid-clock time: a tombstone deleted at D is retired by
// a replica whose clock reads past D + margin (Map.Retire with
// Clock.Horizon), and a tombstone that arrives already past the horizon
// is dropped (Map.Accept), so a retired tombstone does not bounce between
// replicas, nor delete a write made after its retirement. Because every
// replica measures from D, they retire it at about the same moment (clock
// skew apart), not margin after each one happened to receive it.
//
// It is safe, that is no deleted key comes back, when every replica that
// may hold an older entry of the key merges the tombstone, or a state
// that contains it, within the margin of the deletion: the margin must
// exceed the longest time a replica stays out of touch (a partition, a
// pause) and keeps its state, plus one anti-entropy round (push-pull),
// plus the clock skew between nodes. A replica out of touch for longer
// can bring an old entry back; the tests show both sides of that line
// (TestRetirementNeverResurrectsWithinMargin and
// TestRetirementPastMarginCanResurrect). dskit's memberlist KV and
// Cassandra's gc_grace_seconds make the same trade. The registry and
// placement use one hour; their own rules then handle an entry that does
// come back (the registry hides and reaps entries whose owner is gone).
//
// # The clock
//
// Clock is a hybrid logical clock in one 64-bit word: wall-clock
// nanoseconds, moved past every timestamp observed from peers, and one
// past its last reading when the wall clock has not moved (or went back),
// so the timestamps one node writes strictly increase. A timestamp more
// than MaxAhead into the local future is not observed, so one node with a
// wrong clock cannot drag the others along.
//
// # The wire
//
// Encode writes a version byte (Version) and a CBOR array of entries;
// the same encoding carries a delta (one entry) and a full state. Decode
// refuses, with an error and never a panic, a message of another version,
// one larger than its Limits (bytes, entries, nesting), one that is not
// well-formed, and one with a null entry or an entry with an empty key.
// The fields of an entry are the entry type's (CBOR struct tags).
package crdt
