package crdt

import (
	"cmp"
	"strings"
)

// Deletion is the part of an entry's order that a tombstone adds: whether
// it is one, and when, by whom and why it was deleted.
type Deletion struct {
	Deleted bool
	At      uint64
	By      string
	Reason  string
}

// CompareDeletions orders the deletion states of two entries that are
// otherwise one (the same write): the tombstone beats the live entry, and
// of two tombstones the later deletion (At, then By, then Reason) wins.
// It returns 0 when both are live or both are the same deletion; the
// entry's order then goes on to its remaining fields.
func CompareDeletions(a, b Deletion) int {
	if a.Deleted != b.Deleted {
		if a.Deleted {
			return 1
		}
		return -1
	}
	if !a.Deleted {
		return 0
	}
	return cmp.Or(cmp.Compare(a.At, b.At), strings.Compare(a.By, b.By), strings.Compare(a.Reason, b.Reason))
}
