package crdt

import "maps"

// Value is what an entry type gives the engine. T is the entry struct; its
// pointer carries the methods. Entries are immutable once merged: a Map
// keeps the pointer it is given and shares it with its clones.
type Value[T any] interface {
	*T
	// Key is the key the entry is stored under; never empty.
	Key() string
	// Compare orders two entries of one key: > 0 means the receiver wins,
	// 0 that they are the same entry. It must be a total order (no two
	// different entries compare 0), and a tombstone must beat the entry
	// it deletes.
	Compare(other *T) int
	// Stamp is the greatest hybrid-clock time the entry carries: a
	// replica's Clock observes it when the entry is merged.
	Stamp() uint64
	// Tombstone reports whether the entry is a tombstone and, if so, the
	// hybrid-clock time of the deletion (what retirement measures from).
	Tombstone() (deletedAt uint64, deleted bool)
}

// Map is a replica's content: key → greatest entry seen. It is a plain
// map (make it with Map[T, P]{} or make), not safe for concurrent use: its
// owner's lock guards it.
type Map[T any, P Value[T]] map[string]P

// Merge merges e into m and reports whether m changed (e won, or the key
// was absent). e is kept, not copied.
func (m Map[T, P]) Merge(e P) bool {
	k := e.Key()
	if old, ok := m[k]; ok && e.Compare(old) <= 0 {
		return false
	}
	m[k] = e
	return true
}

// Accept is Merge for entries from peers, with retirement: a tombstone
// deleted before horizon (Clock.Horizon of the retirement margin) is
// dropped, whatever m holds for its key. This replica retires such a
// tombstone anyway (Retire), and within the margin every replica has
// merged it already; merging it again would only let it bounce between
// replicas whose clocks differ, and delete a write made after this
// replica retired it.
func (m Map[T, P]) Accept(e P, horizon uint64) bool {
	if at, del := e.Tombstone(); del && at < horizon {
		return false
	}
	return m.Merge(e)
}

// MergeState merges every entry of o into m and returns the keys that
// changed.
func (m Map[T, P]) MergeState(o Map[T, P]) []string {
	var changed []string
	for _, e := range o {
		if m.Merge(e) {
			changed = append(changed, e.Key())
		}
	}
	return changed
}

// Clone returns a copy of m sharing its (immutable) entries.
func (m Map[T, P]) Clone() Map[T, P] { return maps.Clone(m) }

// Equal reports whether m and o hold the same entries.
func (m Map[T, P]) Equal(o Map[T, P]) bool {
	if len(m) != len(o) {
		return false
	}
	for k, e := range m {
		f, ok := o[k]
		if !ok || e.Compare(f) != 0 {
			return false
		}
	}
	return true
}

// Values returns m's entries, in no particular order (for Encode).
func (m Map[T, P]) Values() []P {
	out := make([]P, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	return out
}

// Retire forgets the tombstones deleted before horizon (Clock.Horizon of
// the retirement margin), except those keep (when not nil) says to keep,
// and returns them.
func (m Map[T, P]) Retire(horizon uint64, keep func(P) bool) []P {
	var out []P
	for k, e := range m {
		if at, del := e.Tombstone(); del && at < horizon && (keep == nil || !keep(e)) {
			delete(m, k)
			out = append(out, e)
		}
	}
	return out
}
