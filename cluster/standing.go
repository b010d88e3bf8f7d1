package cluster

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/arsenal-go/arsenal/cluster/crdt"
)

// Standing: the sides agree on removal (issue 14; doc.go, "Admission and
// removal").
//
// Whether a member counts in the decisions (the denominator of
// keep-majority, the tie-break and keep-oldest candidates) is not each
// node's own verdict: it is a replicated record per member, the greatest
// entry under one total order, on the cluster/crdt engine. A member
// counts if its record admits its current incarnation; it stops counting
// when a record removes that incarnation. A node adopts every record it
// receives, so a member that one side removed is removed for every node
// that hears of it (the member itself included), and a node that joined
// after a crash never has to remove the dead node itself: it adopts the
// removal the side that runs made.
//
// The records travel as one small state (every record), never as a
// single record: by gossip on every change, in every push-pull, and both
// ways in every lease request of package placement (MergeStanding,
// StandingState). So a node that holds a record also holds every record
// its writer held when it wrote it.

// standingReplica is the name of the records among the replicated state.
const standingReplica = "cluster.standing"

// Standing is the replicated record of one member's standing: its
// incarnation Inc is admitted (counted), or removed (not counted).
//
// Order (Compare), per member name: a record a member wrote beats the
// bootstrap's (Boot); then the higher incarnation; then the higher
// epoch (each re-admission of one incarnation after its removal takes
// the next); then, in one epoch, the removal beats the admission; the
// writer and its clock only make the order total.
type Standing struct {
	Node    string `cbor:"1,keyasint" json:"node"`
	Inc     uint64 `cbor:"2,keyasint" json:"incarnation"`
	Epoch   uint64 `cbor:"3,keyasint,omitempty" json:"epoch,omitempty"`
	Removed bool   `cbor:"4,keyasint,omitempty" json:"removed,omitempty"`
	// Boot: written from a node's first full view when it found no
	// record at all (a cluster forming). Any other record beats it.
	Boot bool   `cbor:"5,keyasint,omitempty" json:"boot,omitempty"`
	By   string `cbor:"6,keyasint,omitempty" json:"by,omitempty"`
	TS   uint64 `cbor:"7,keyasint,omitempty" json:"ts,omitempty"` // hybrid clock
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// Key, Compare, Stamp and Tombstone make a Standing a value of the
// replicated-state engine.

// Key returns the member's name.
func (a *Standing) Key() string { return a.Node }

// Compare orders two records of one member: > 0 means a wins.
func (a *Standing) Compare(b *Standing) int {
	return cmp.Or(
		-boolCmp(a.Boot, b.Boot),
		cmp.Compare(a.Inc, b.Inc),
		cmp.Compare(a.Epoch, b.Epoch),
		boolCmp(a.Removed, b.Removed),
		strings.Compare(a.By, b.By),
		cmp.Compare(a.TS, b.TS))
}

// Stamp returns the record's hybrid-clock time.
func (a *Standing) Stamp() uint64 { return a.TS }

// Tombstone: a removal is a record like any other, never retired (one
// record per member name).
func (a *Standing) Tombstone() (uint64, bool) { return 0, false }

type standingMap = crdt.Map[Standing, *Standing]

// standingOf derives a member's standing from its record r (nil: none)
// and its current incarnation inc: removed (it does not count at all) and
// joining (its incarnation is not admitted). Joining and not removed: an
// earlier incarnation is admitted and still counts, as a dead member,
// until an up side removes it or admits the new one.
func standingOf(r *Standing, inc uint64) (removed, joining bool) {
	switch {
	case r == nil:
		return true, true
	case r.Inc == inc:
		return r.Removed, false
	case r.Inc < inc:
		return r.Removed, true
	}
	// The record is about a later incarnation than this node has seen:
	// the one it sees is gone.
	return r.Removed, true
}

// counted reports whether a member counts (admitted, not left).
func (m *Member) counted() bool { return m.Status != StatusLeft && !m.Removed && !m.Joining }

// refreshStandingLocked recomputes every member's Removed and Joining
// from the records, with a NodeRemoved event for a member that stops
// counting and a NodeAdmitted event for one that starts. With no record
// at all (before the cluster's first full view) every member counts.
func (c *Cluster) refreshStandingLocked() {
	for name, m := range c.members {
		removed, joining := false, false
		if len(c.standing) > 0 {
			removed, joining = standingOf(c.standing[name], m.Incarnation)
		}
		if removed == m.Removed && joining == m.Joining {
			continue
		}
		was := m.counted()
		m.Removed, m.Joining = removed, joining
		switch now := m.counted(); {
		case was && !now && removed:
			c.emitMemberLocked(Event{Type: NodeRemoved, OldStatus: m.Status, NewStatus: m.Status}, m)
			c.log.Warn("cluster: member removed from the decisions", "peer", name, "incarnation", m.Incarnation, "by", byOf(c.standing[name]))
		case !was && now:
			c.emitMemberLocked(Event{Type: NodeAdmitted, OldStatus: m.Status, NewStatus: m.Status}, m)
			c.log.Info("cluster: member admitted", "peer", name, "incarnation", m.Incarnation, "by", byOf(c.standing[name]))
		}
	}
}

func byOf(r *Standing) string {
	if r == nil {
		return ""
	}
	return r.By
}

// writeStandingLocked records a decision of this node.
func (c *Cluster) writeStandingLocked(s Standing) {
	s.By, s.TS = c.cfg.NodeName, c.stClock.Tick()
	if c.standing == nil {
		c.standing = standingMap{}
	}
	if c.standing.Merge(&s) {
		c.stDirty.Store(true)
	}
}

// mergeStandingLocked merges records from a peer and reports whether any
// changed this node's. A record that admits a member this node has never
// seen adds it, dead (with no address), so that it counts here as it does
// for the writer.
func (c *Cluster) mergeStandingLocked(es []*Standing) bool {
	changed := false
	if c.standing == nil {
		c.standing = standingMap{}
	}
	for _, e := range es {
		c.stClock.Observe(e.TS)
		if c.standing.Merge(e) {
			changed = true
		}
	}
	if !changed {
		return false
	}
	now := time.Now()
	for name, r := range c.standing {
		if _, ok := c.members[name]; !ok && !r.Removed && name != c.cfg.NodeName {
			c.members[name] = &Member{Name: name, Incarnation: r.Inc, Status: StatusDead, Since: now}
			c.log.Debug("cluster: a member known only from the records", "peer", name, "incarnation", r.Inc)
		}
	}
	c.stDirty.Store(true)
	c.afterChangeLocked()
	return true
}

// StandingState encodes every record (for package placement's lease
// requests and answers; MergeStanding reads it).
func (c *Cluster) StandingState() []byte {
	c.mu.Lock()
	rs := c.standing.Values()
	c.mu.Unlock()
	return crdt.Encode(rs)
}

// MergeStanding merges records a peer sent (its StandingState). A state
// that does not decode is refused as a whole.
func (c *Cluster) MergeStanding(b []byte) error {
	rs, err := crdt.Decode[Standing](b)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if !c.closed {
		c.mergeStandingLocked(rs)
	}
	c.mu.Unlock()
	c.flushStanding()
	return nil
}

// Standings returns a copy of the records, sorted by member name.
func (c *Cluster) Standings() []Standing {
	c.mu.Lock()
	out := make([]Standing, 0, len(c.standing))
	for _, r := range c.standing {
		out = append(out, *r)
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b Standing) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// flushStanding broadcasts the records if this node changed them (its own
// decision, or a merge: an epidemic, as the other replicas do). Called
// without c.mu.
func (c *Cluster) flushStanding() {
	if c.ml == nil || !c.stDirty.Swap(false) {
		return
	}
	c.BroadcastKey(standingReplica, "all", c.StandingState())
}

// Review applies the removal and admission rules now (the sweep does
// every probe interval). Package placement calls it after each lease
// round, whose outcome its gates read.
func (c *Cluster) Review() {
	c.mu.Lock()
	if !c.closed {
		c.reviewLocked(time.Now())
	}
	c.mu.Unlock()
	c.flushStanding()
}

// reviewLocked bootstraps the records, removes the dead and admits the
// new, each if due. It reports whether it changed anything.
func (c *Cluster) reviewLocked(now time.Time) bool {
	b := c.bootstrapLocked(now)
	r := c.removeDeadLocked(now)
	a := c.admitLocked()
	return b || r || a
}

// bootstrapLocked writes the first records, from this node's first full
// view, if it has none a probe interval after that view (a push-pull that
// formed the view delivers the peers' records just after the members):
// every member it knows, not left, admitted at its incarnation. Only a
// forming cluster has no records; a node joining a running one receives
// them on its first push-pull, and waits to be admitted.
func (c *Cluster) bootstrapLocked(now time.Time) bool {
	if len(c.standing) > 0 || !c.formed || !c.initialDone || c.fullViewAt.IsZero() || now.Sub(c.fullViewAt) < c.settings.ProbeInterval {
		return false
	}
	var names []string
	for name, m := range c.members {
		if m.Status != StatusLeft {
			c.writeStandingLocked(Standing{Node: name, Inc: m.Incarnation, Boot: true})
			names = append(names, name)
		}
	}
	slices.Sort(names)
	c.log.Info("cluster: membership records started from the first full view", "members", names)
	c.afterChangeLocked()
	return true
}

// admitLocked admits the members alive in this node's view whose
// incarnation is not admitted (new, restarted, or removed and back), if
// this node counts itself and the admission gate agrees (asked per
// member).
func (c *Cluster) admitLocked() bool {
	self := c.members[c.cfg.NodeName]
	if len(c.standing) == 0 || !c.formed || self == nil || !self.counted() {
		return false
	}
	var due []*Member
	for name, m := range c.members {
		if name == c.cfg.NodeName || m.Status != StatusAlive {
			continue
		}
		if r := c.standing[name]; r == nil || r.Inc < m.Incarnation || r.Inc == m.Incarnation && r.Removed {
			due = append(due, m)
		}
	}
	if len(due) == 0 {
		return false
	}
	gate := c.admit
	if gate == nil {
		gate = defaultAdmissionGate
	}
	ms := c.membersLocked()
	admitted := false
	for _, m := range due {
		if !gate(m.clone(), ms, c.partition) {
			continue
		}
		s := Standing{Node: m.Name, Inc: m.Incarnation}
		if r := c.standing[m.Name]; r != nil && r.Inc == m.Incarnation {
			s.Epoch = r.Epoch + 1
		}
		c.writeStandingLocked(s)
		admitted = true
	}
	if admitted {
		c.afterChangeLocked()
	}
	return admitted
}

// SetAdmissionGate installs the rule that says whether this node may
// admit a member (see AdmissionGate); nil restores the default. Package
// placement installs one that asks its last lease round.
func (c *Cluster) SetAdmissionGate(g AdmissionGate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.admit = g
}

// standingRepl carries the records over gossip and push-pull (a Replica).
type standingRepl Cluster

func (r *standingRepl) LocalState() []byte { return (*Cluster)(r).StandingState() }
func (r *standingRepl) MergeRemoteState(b []byte) {
	c := (*Cluster)(r)
	if err := c.MergeStanding(b); err != nil {
		c.log.Warn("cluster: membership records from a peer refused", "err", err)
	}
}
func (r *standingRepl) NotifyMsg(b []byte) { r.MergeRemoteState(b) }
