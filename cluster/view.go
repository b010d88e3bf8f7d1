package cluster

import (
	"maps"
	"time"

	"github.com/hashicorp/memberlist"
)

// The view: this node's members with their status, kept from memberlist's
// callbacks. Every change goes through c.mu, emits its events in the same
// critical section (so Seq order is the order of changes) and ends with
// afterChangeLocked, which recomputes partition status and mode.

// nodeAlive handles NotifyJoin (update=false) and NotifyUpdate (update=true).
func (c *Cluster) nodeAlive(n *memberlist.Node, update bool) {
	wm, metaErr := decodeMeta(n.Meta)
	addr := joinHostPort(n.Addr, int(n.Port))
	now := time.Now()

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.cancelGoneLocked(n.Name)
	m, known := c.members[n.Name]
	if !known {
		m = &Member{Name: n.Name}
		c.members[n.Name] = m
	}
	old := m.clone()
	m.GossipAddr = addr
	if metaErr == nil {
		m.Incarnation = wm.Incarnation
		m.NodeAddr = wm.NodeAddr
		m.HTTPAddr = wm.HTTPAddr
		m.Meta = maps.Clone(wm.Tags)
	}
	if inc, ok := c.leaveIntents[n.Name]; ok && inc != m.Incarnation {
		delete(c.leaveIntents, n.Name)
	}
	if other, ok := c.conflicts[n.Name]; ok && normalizeAddr(other) == normalizeAddr(addr) {
		delete(c.conflicts, n.Name)
	}
	restarted := known && old.Incarnation != m.Incarnation

	switch {
	case !known || !old.Status.Up():
		// New, or back from dead/left (NotifyJoin). A removed member
		// counts again once admitted (standing.go).
		m.Status, m.Since = StatusAlive, now
		e := Event{Type: NodeUp, OldStatus: old.Status, NewStatus: StatusAlive}
		if restarted {
			e.Restarted, e.OldIncarnation = true, old.Incarnation
		}
		c.emitMemberLocked(e, m)
		c.log.Info("cluster: node up", "peer", n.Name, "addr", addr, "was", string(old.Status), "restarted", restarted)
	case restarted:
		// The node restarted before anyone declared it dead: memberlist saw
		// only new metadata. For the layers above, the old incarnation is
		// gone and a new one is up.
		gone := old
		gone.Status = StatusDead
		c.emitMemberLocked(Event{Type: NodeDown, OldStatus: old.Status, NewStatus: StatusDead, Restarted: true}, &gone)
		m.Status, m.Since = StatusAlive, now
		c.emitMemberLocked(Event{Type: NodeUp, OldStatus: StatusDead, NewStatus: StatusAlive, Restarted: true, OldIncarnation: old.Incarnation}, m)
		c.log.Info("cluster: node restarted", "peer", n.Name, "addr", addr, "old_incarnation", old.Incarnation, "incarnation", m.Incarnation)
	default:
		if old.Status == StatusSuspect {
			// An alive message with a new incarnation is a refutation.
			m.Status, m.Since = StatusAlive, now
			c.emitMemberLocked(Event{Type: NodeUp, OldStatus: StatusSuspect, NewStatus: StatusAlive}, m)
		}
		if update {
			c.emitMemberLocked(Event{Type: NodeUpdated, OldStatus: m.Status, NewStatus: m.Status}, m)
		}
	}
	c.afterChangeLocked()
}

// nodeGone handles NotifyLeave: dead, unless the member announced its leave.
//
// A death this node learned only from others (the member is alive in its
// view: its own probes never suspected it) is held for deathGrace before
// it is applied: a refutation that arrives meanwhile (NotifyJoin) cancels
// it. That is what a healthy member declared dead by another node's stale
// or hasty verdict looks like: a returning node's old "dead" gossip after
// a heal, or a slow node whose probes time out. A real death is applied
// at the end of the grace, with Since set to when it was first reported.
//
// A death (not a leave) of another member also raises this node's own
// incarnation, so that the verdicts about it that the other side of a cut
// holds are stale before the heal delivers them (heal.go, Stale verdicts).
//
// A held death is also checked at the source: this node push-pulls with
// the accused at once (verifyDeath). A live accused answers with its
// current incarnation, which cancels the hold; that is what repairs a
// node that missed the accused's one refutation broadcast (memberlist
// then has no second chance: the accused ignores accusations below its
// incarnation, so it does not refute again).
func (c *Cluster) nodeGone(name string) {
	raise := false
	var verify joinTarget
	defer func() { // after c.mu is released: both take it
		if raise {
			c.raiseIncarnation()
		}
		if verify.addr != "" {
			c.verifyDeath(verify)
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	m, ok := c.members[name]
	if !ok || !m.Status.Up() {
		return
	}
	left := name == c.cfg.NodeName && c.leaving
	if inc, ok := c.leaveIntents[name]; ok && inc == m.Incarnation {
		left = true
	}
	raise = !left && name != c.cfg.NodeName
	if !left && name != c.cfg.NodeName && m.Status == StatusAlive {
		if grace := c.deathGrace(); grace > 0 {
			if _, held := c.pendingDown[name]; !held {
				since := time.Now()
				c.pendingDown[name] = &pendingDown{since: since, timer: time.AfterFunc(grace, func() { c.confirmGone(name, since) })}
				c.log.Debug("cluster: holding a death learned from others", "peer", name, "grace", grace)
				verify = joinTarget{addr: m.GossipAddr, name: name}
			}
			return
		}
	}
	c.goneLocked(m, left, time.Now())
}

// deathGrace is how long a death learned from others is held:
// Config.DeathGrace, by default two probe intervals (0.4 s on fast, 2 s on
// lan), long enough for a refutation to spread, short against crash
// detection.
func (c *Cluster) deathGrace() time.Duration {
	switch {
	case c.cfg.DeathGrace < 0:
		return 0
	case c.cfg.DeathGrace > 0:
		return c.cfg.DeathGrace
	}
	return 2 * c.settings.ProbeInterval
}

// pendingDown is a death held for deathGrace.
type pendingDown struct {
	since time.Time
	timer *time.Timer
}

// confirmGone applies a held death that no refutation cancelled.
func (c *Cluster) confirmGone(name string, since time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pd := c.pendingDown[name]
	if c.closed || pd == nil || !pd.since.Equal(since) {
		return
	}
	delete(c.pendingDown, name)
	m, ok := c.members[name]
	if !ok || !m.Status.Up() {
		return
	}
	left := false
	if inc, ok := c.leaveIntents[name]; ok && inc == m.Incarnation {
		left = true
	}
	c.goneLocked(m, left, since)
}

// cancelGoneLocked drops a held death: the member is alive after all.
func (c *Cluster) cancelGoneLocked(name string) {
	if pd := c.pendingDown[name]; pd != nil {
		pd.timer.Stop()
		delete(c.pendingDown, name)
		c.refutedDeaths++
		c.log.Info("cluster: a death reported by others was refuted within the grace; not applied", "peer", name,
			"after", time.Since(pd.since).Round(time.Millisecond))
	}
}

func (c *Cluster) goneLocked(m *Member, left bool, since time.Time) {
	old := m.Status
	m.Since = since
	if left {
		m.Status = StatusLeft
		c.emitMemberLocked(Event{Type: NodeLeft, OldStatus: old, NewStatus: StatusLeft}, m)
		c.log.Info("cluster: node left", "peer", m.Name)
	} else {
		m.Status = StatusDead
		c.emitMemberLocked(Event{Type: NodeDown, OldStatus: old, NewStatus: StatusDead}, m)
		c.log.Warn("cluster: node down", "peer", m.Name, "addr", m.GossipAddr)
	}
	c.afterChangeLocked()
}

// leaveAnnounced records a peer's leave intent. If memberlist already
// reported the member gone (the intent was slower than the leave), the
// member is corrected from dead to left.
func (c *Cluster) leaveAnnounced(li leaveIntent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	m, ok := c.members[li.Name]
	if !ok || li.Name == c.cfg.NodeName {
		return // only current members announce to us; ignore the rest
	}
	c.leaveIntents[li.Name] = li.Incarnation
	if m.Status == StatusDead && m.Incarnation == li.Incarnation {
		m.Status, m.Since = StatusLeft, time.Now()
		c.emitMemberLocked(Event{Type: NodeLeft, OldStatus: StatusDead, NewStatus: StatusLeft}, m)
		c.log.Info("cluster: node left", "peer", li.Name)
		c.afterChangeLocked()
	}
}

// markSuspect is called when memberlist logs that this node's probe of name
// failed; memberlist marks it suspect right after. The suspicion is also
// checked with the member directly (checkSuspect, after c.mu is released).
func (c *Cluster) markSuspect(name string) {
	var check joinTarget
	defer func() {
		if check.addr != "" {
			c.checkSuspect(check)
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.members[name]
	if c.closed || !ok || m.Status != StatusAlive {
		return
	}
	check = joinTarget{addr: m.GossipAddr, name: name}
	m.Status, m.Since = StatusSuspect, time.Now()
	c.emitMemberLocked(Event{Type: NodeSuspect, OldStatus: StatusAlive, NewStatus: StatusSuspect}, m)
	c.log.Info("cluster: node suspect", "peer", name)
	c.afterChangeLocked()
}

// probeOK clears a suspicion once a direct probe succeeds again.
func (c *Cluster) probeOK(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearSuspectLocked(name)
}

func (c *Cluster) clearSuspectLocked(name string) {
	m, ok := c.members[name]
	if c.closed || !ok || m.Status != StatusSuspect {
		return
	}
	c.fit.refuted(time.Now()) // a suspicion of a live member: maybe the profile is too tight
	defer c.judgeFitLocked(time.Now())
	m.Status, m.Since = StatusAlive, time.Now()
	c.emitMemberLocked(Event{Type: NodeUp, OldStatus: StatusSuspect, NewStatus: StatusAlive}, m)
	c.afterChangeLocked()
}

// nameConflict logs two nodes claiming one name, and remembers the rival's
// address: if the name's current holder is dead, the rejoin loop joins the
// rival once memberlist lets it reclaim the name (DeadNodeReclaimTime), so
// a node restarted on a new address comes back without waiting for
// anti-entropy.
func (c *Cluster) nameConflict(existing, other *memberlist.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	status := Status("unknown")
	if m, ok := c.members[existing.Name]; ok {
		status = m.Status
	}
	otherAddr := joinHostPort(other.Addr, int(other.Port))
	repeat := c.conflicts[other.Name] == otherAddr
	c.conflicts[other.Name] = otherAddr
	level := c.log.Error
	switch {
	case repeat:
		level = c.log.Debug // memberlist reports it on every alive message; say it loudly once
	case !status.Up():
		level = c.log.Info // a restarted node on a new address; memberlist lets it reclaim the name
	}
	level("cluster: name conflict: two nodes claim one name",
		"name", existing.Name, "existing_addr", existing.Address(), "existing_status", string(status),
		"other_addr", otherAddr)
}

func (c *Cluster) emitMemberLocked(e Event, m *Member) {
	e.Node = m.Name
	e.Member = m.clone()
	c.emitLocked(e)
}

func (c *Cluster) emitLocked(e Event) {
	c.seq++
	e.Seq = c.seq
	e.Time = time.Now()
	c.feed.publish(e)
}

// afterChangeLocked recomputes the members' standing (standing.go),
// partition status and mode from the view, emits their events when they
// change, and wakes waiters.
func (c *Cluster) afterChangeLocked() {
	c.refreshStandingLocked()
	up := 0
	for _, m := range c.members {
		if m.Status.Up() {
			up++
		}
	}
	if !c.formed {
		if c.cfg.ExpectedSize > 0 {
			c.formed = up >= c.cfg.ExpectedSize
		} else {
			c.formed = c.initialDone && c.settled
		}
		if c.formed {
			c.fullViewAt = time.Now()
			c.log.Info("cluster: first full view", "up", up, "expected_size", c.cfg.ExpectedSize)
		}
	}
	ps := PartitionOf(c.membersLocked(), c.cfg.ExpectedSize, !c.formed)
	if self := c.members[c.cfg.NodeName]; self != nil && !self.counted() && self.Status != StatusLeft {
		// This node does not count itself: it is not admitted yet
		// (forming, for what it decides: nothing runs here yet), or the
		// side that runs removed it (a minority of one).
		ps.TieBreak = false
		ps.State = Minority
		if self.Joining {
			ps.State = Forming
		}
	}
	ps.ProfileWarning = c.fit.warning
	if ps.State != c.partition.State {
		c.emitLocked(Event{Type: PartitionChanged, OldPartition: c.partition.State, Partition: ps})
		c.log.Info("cluster: partition status changed", "from", string(c.partition.State), "to", string(ps.State),
			"up", ps.Up, "expected", ps.Expected, "removed", ps.Removed)
	}
	c.partition = ps

	mode := deriveMode(up, c.simulated)
	if mode != c.mode {
		c.emitLocked(Event{Type: ModeChanged, OldMode: c.mode, Mode: mode})
		c.log.Info("cluster: mode changed", "from", string(c.mode), "to", string(mode))
		c.mode = mode
	}
	if up > 1 && c.formedAt.IsZero() {
		c.formedAt = time.Now()
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

// removalMarginLocked is Config.RemovalMargin or the profile's.
func (c *Cluster) removalMarginLocked() time.Duration {
	if c.cfg.RemovalMargin > 0 {
		return c.cfg.RemovalMargin
	}
	return c.settings.RemovalMargin(len(c.members))
}

// removeDeadLocked removes the members dead for longer than the removal
// margin whose incarnation the records admit, if the removal gate says
// this side is the one that keeps running (asked with the view that still
// counts them): it writes their removal into the replicated records,
// which every node adopts (standing.go). It reports whether it removed
// any.
func (c *Cluster) removeDeadLocked(now time.Time) bool {
	if len(c.standing) == 0 || !c.formed {
		return false
	}
	margin := c.removalMarginLocked()
	var due []*Member
	for name, m := range c.members {
		r := c.standing[name]
		if name != c.cfg.NodeName && m.Status == StatusDead && r != nil && !r.Removed && now.Sub(m.Since) > margin {
			due = append(due, m)
		}
	}
	if len(due) == 0 {
		return false
	}
	gate := c.gate
	if gate == nil {
		gate = defaultRemovalGate
	}
	if !gate(c.membersLocked(), c.partition) {
		return false
	}
	for _, m := range due {
		r := c.standing[m.Name]
		c.writeStandingLocked(Standing{Node: m.Name, Inc: r.Inc, Epoch: r.Epoch, Removed: true})
		c.log.Warn("cluster: dead member removed from the decisions", "peer", m.Name, "incarnation", r.Inc,
			"dead_for", now.Sub(m.Since).Round(time.Millisecond), "margin", margin)
	}
	c.afterChangeLocked()
	return true
}

// SetRemovalGate installs the rule that says whether this side may remove
// dead members (see RemovalGate); nil restores the default (this side is
// Healthy or Partial). Package placement installs its split-brain policy,
// so that the side that removes is the side that keeps running.
func (c *Cluster) SetRemovalGate(g RemovalGate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gate = g
}
