package registry

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/arsenal-go/arsenal/cluster/crdt"
	"github.com/arsenal-go/arsenal/process"
)

// Entry is one name's record in the replicated state: a registration, or
// the tombstone that ended it. Every node holds, per name, the greatest
// Entry it has seen under the order of Beats; that is the whole CRDT.
type Entry struct {
	Name string `cbor:"1,keyasint" json:"name"`
	// Gen is the name's generation: 1 for a name never seen, and one more
	// than the entry it replaces when a name is registered again after a
	// tombstone, or taken over from an owner that was lost.
	Gen uint64 `cbor:"2,keyasint" json:"gen"`
	// TS is the registration's hybrid logical clock (nanoseconds).
	TS   uint64            `cbor:"3,keyasint" json:"ts"`
	PID  process.PID       `cbor:"4,keyasint" json:"pid"`
	Meta map[string]string `cbor:"5,keyasint,omitempty" json:"meta,omitempty"`

	// A tombstone keeps the registration's fields and adds these.
	Deleted bool   `cbor:"6,keyasint,omitempty" json:"deleted,omitempty"`
	DelTS   uint64 `cbor:"7,keyasint,omitempty" json:"del_ts,omitempty"`
	DelBy   string `cbor:"8,keyasint,omitempty" json:"del_by,omitempty"`
	Reason  string `cbor:"9,keyasint,omitempty" json:"reason,omitempty"`
}

// sameRegistration reports whether a and b are the same registration
// (one may be its tombstone).
func sameRegistration(a, b *Entry) bool {
	return a.Gen == b.Gen && a.TS == b.TS && a.PID == b.PID
}

func comparePID(a, b process.PID) int {
	return cmp.Or(strings.Compare(a.Node, b.Node), cmp.Compare(a.Incarnation, b.Incarnation), cmp.Compare(a.ID, b.ID))
}

// compareEntries orders two entries of one name: > 0 means a wins.
//
//  1. the higher generation wins: a registration made after the previous
//     one ended (or its owner was lost) replaces it;
//  2. in one generation (concurrent registrations, as on two sides of a
//     partition), the earliest registration wins: lower TS, then lower
//     node name, then lower PID;
//  3. for one registration, its tombstone wins over it;
//  4. of two tombstones of one registration, the later deletion (DelTS,
//     then DelBy, then Reason) wins.
//
// The last step compares the metadata, so the order is total even for
// entries no node would make (two registrations with one PID and TS but
// different metadata). A total order makes merge-by-max commutative,
// associative and idempotent.
func compareEntries(a, b *Entry) int {
	if c := cmp.Compare(a.Gen, b.Gen); c != 0 {
		return c
	}
	if c := cmp.Compare(a.TS, b.TS); c != 0 {
		return -c
	}
	if c := comparePID(a.PID, b.PID); c != 0 {
		return -c
	}
	if c := crdt.CompareDeletions(a.deletion(), b.deletion()); c != 0 {
		return c
	}
	return -strings.Compare(metaKey(a.Meta), metaKey(b.Meta))
}

func metaKey(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	var sb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		sb.WriteString(k)
		sb.WriteByte(0)
		sb.WriteString(m[k])
		sb.WriteByte(0)
	}
	return sb.String()
}

// Beats reports whether a replaces b in a merge.
func (a *Entry) Beats(b *Entry) bool { return compareEntries(a, b) > 0 }

// Key, Compare, Stamp and Tombstone make an Entry a value of the
// replicated-state engine (cluster/crdt).

func (a *Entry) deletion() crdt.Deletion {
	return crdt.Deletion{Deleted: a.Deleted, At: a.DelTS, By: a.DelBy, Reason: a.Reason}
}

// Key returns the name the entry is stored under.
func (a *Entry) Key() string { return a.Name }

// Compare orders two entries of one name (compareEntries): > 0 means a wins.
func (a *Entry) Compare(b *Entry) int { return compareEntries(a, b) }

// Stamp returns the entry's latest hybrid-clock time.
func (a *Entry) Stamp() uint64 { return max(a.TS, a.DelTS) }

// Tombstone reports whether the entry is a tombstone, and its deletion time.
func (a *Entry) Tombstone() (uint64, bool) { return a.DelTS, a.Deleted }

// State is a replica's content: name → greatest entry. It is the engine's
// map (cluster/crdt.Map): Merge, MergeState, Clone, Equal, Retire.
type State = crdt.Map[Entry, *Entry]
