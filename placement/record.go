package placement

import (
	"bytes"
	"cmp"
	"strings"

	"github.com/arsenal-go/arsenal/cluster/crdt"
	"github.com/arsenal-go/arsenal/process"
)

// Record is one child in the replicated state: its spec, the node it is
// assigned to, and the PID its owner last started. Every node keeps, per
// child ID, the greatest Record it has seen under compareRecords; that is
// the whole CRDT (the same construction as the registry's).
type Record struct {
	ID      string `cbor:"1,keyasint" json:"id"`
	Kind    string `cbor:"2,keyasint" json:"kind"`
	Args    []byte `cbor:"3,keyasint,omitempty" json:"args,omitempty"`
	Name    string `cbor:"4,keyasint,omitempty" json:"name,omitempty"`
	Restart string `cbor:"5,keyasint,omitempty" json:"restart,omitempty"`

	// The assignment: generation, hybrid-clock time, and the node (with
	// its incarnation) that is to run the child. A new assignment (a
	// start, a failover, a hand-off) has the next generation.
	Gen  uint64 `cbor:"6,keyasint" json:"gen"`
	TS   uint64 `cbor:"7,keyasint" json:"ts"`
	Node string `cbor:"8,keyasint" json:"node"`
	Inc  uint64 `cbor:"9,keyasint" json:"incarnation"`

	// Seq counts the owner's starts of the child under this assignment;
	// PID is the latest.
	Seq uint64      `cbor:"10,keyasint,omitempty" json:"seq"`
	PID process.PID `cbor:"11,keyasint,omitempty" json:"pid,omitzero"`

	// A stopped child (StopChild, or an exit its restart type does not
	// restart) is a tombstone.
	Deleted bool   `cbor:"12,keyasint,omitempty" json:"deleted,omitempty"`
	DelTS   uint64 `cbor:"13,keyasint,omitempty" json:"del_ts,omitempty"`
	DelBy   string `cbor:"14,keyasint,omitempty" json:"del_by,omitempty"`
	Reason  string `cbor:"15,keyasint,omitempty" json:"reason,omitempty"`
}

// sameAssignment reports whether a and b are one assignment.
func sameAssignment(a, b *Record) bool {
	return a.Gen == b.Gen && a.TS == b.TS && a.Node == b.Node && a.Inc == b.Inc
}

// compareRecords orders two records of one child: > 0 means a wins.
//
//  1. the higher generation wins (a later assignment);
//  2. in one generation (assignments made concurrently, as on two sides of
//     a partition), the earliest wins: lower TS, then lower node name,
//     then lower incarnation;
//  3. for one assignment, its tombstone wins; of two tombstones the later
//     deletion wins;
//  4. for one live assignment, the owner's latest start (higher Seq) wins;
//  5. the remaining fields only make the order total.
func compareRecords(a, b *Record) int {
	if c := cmp.Compare(a.Gen, b.Gen); c != 0 {
		return c
	}
	if c := cmp.Or(cmp.Compare(a.TS, b.TS), strings.Compare(a.Node, b.Node), cmp.Compare(a.Inc, b.Inc)); c != 0 {
		return -c
	}
	if c := crdt.CompareDeletions(a.deletion(), b.deletion()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
		return c
	}
	return cmp.Or(
		strings.Compare(a.PID.Node, b.PID.Node), cmp.Compare(a.PID.Incarnation, b.PID.Incarnation), cmp.Compare(a.PID.ID, b.PID.ID),
		strings.Compare(a.Kind, b.Kind), bytes.Compare(a.Args, b.Args), strings.Compare(a.Name, b.Name), strings.Compare(a.Restart, b.Restart))
}

// Beats reports whether a replaces b in a merge.
func (a *Record) Beats(b *Record) bool { return compareRecords(a, b) > 0 }

// Key, Compare, Stamp and Tombstone make a Record a value of the
// replicated-state engine (cluster/crdt).

func (a *Record) deletion() crdt.Deletion {
	return crdt.Deletion{Deleted: a.Deleted, At: a.DelTS, By: a.DelBy, Reason: a.Reason}
}

// Key returns the child ID the record is stored under.
func (a *Record) Key() string { return a.ID }

// Compare orders two records of one child (compareRecords): > 0 means a wins.
func (a *Record) Compare(b *Record) int { return compareRecords(a, b) }

// Stamp returns the record's latest hybrid-clock time.
func (a *Record) Stamp() uint64 { return max(a.TS, a.DelTS) }

// Tombstone reports whether the record is a tombstone, and its deletion time.
func (a *Record) Tombstone() (uint64, bool) { return a.DelTS, a.Deleted }

// State is a replica's content: child ID → greatest record. It is the
// engine's map (cluster/crdt.Map): Merge, MergeState, Clone, Equal, Retire.
type State = crdt.Map[Record, *Record]
