package cluster

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/memberlist"
)

// Healing. memberlist never re-merges a healed partition by itself: each
// side marks the other dead, gossips to the dead only for
// GossipToTheDeadTime, and its periodic push-pull only picks alive members.
// So every RejoinInterval this node joins (a push-pull) every address that
// should be in the cluster but is not up in its view:
//
//   - what discovery returns now,
//   - every member it has seen and now holds dead (for ReconnectTimeout),
//   - the rival address of a name conflict whose holder is dead.
//
// Why a quick retry: right after a partition both sides hold each other
// dead at incarnation i. The first push-pull carries "X alive at i", which
// the other side ignores (not newer than its "X dead at i"); but it also
// carries "you are dead", which makes each contacted node refute with i+1.
// A second push-pull a moment later carries the refuted incarnations and
// the sides merge. So when a join succeeded but the member is still not up,
// the next round comes after ProbeInterval instead of RejoinInterval (at
// most three times in a row).

type joinTarget struct {
	addr string
	name string // the member behind addr, when known
}

const maxQuickRetries = 3

// Settling. Joining every discovered peer gives this node its seeds'
// views at that moment, but a node that joined the same seed at the same
// time can be missed: its alive message reaches the others by gossip,
// with a bounded retransmit budget, and only the periodic push-pull
// (PushPullInterval, 5 to 60 s) repairs a miss. Measured here: a 5-node
// start through one seed had a 5 to 9 s tail in about one join of four.
// So a starting node runs a few extra push-pulls with random up members,
// at short intervals, before leaving the rest to gossip.
const (
	settleRounds = 3
	settlePeers  = 2
)

func (c *Cluster) settleLoop() {
	defer c.loops.Done()
	every := max(4*c.settings.GossipInterval, 100*time.Millisecond)
	for i := 0; i < settleRounds; i++ {
		select {
		case <-c.stop:
			return
		case <-time.After(every):
		}
		c.joinTargets(c.randomUpTargets(settlePeers), 0)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.settled = true
		c.afterChangeLocked()
	}
}

// randomUpTargets picks up to k up members other than this node.
func (c *Cluster) randomUpTargets(k int) []joinTarget {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leaving || c.closed {
		return nil
	}
	var all []joinTarget
	for name, m := range c.members {
		if name != c.cfg.NodeName && m.Status.Up() && m.GossipAddr != "" {
			all = append(all, joinTarget{addr: m.GossipAddr, name: name})
		}
	}
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	return all[:min(k, len(all))]
}

func (c *Cluster) rejoinLoop() {
	defer c.loops.Done()
	quick := 0
	timer := time.NewTimer(c.settings.RejoinInterval)
	defer timer.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-timer.C:
		}
		began := time.Now()
		// Rounds start every RejoinInterval from the start of the last
		// one, whatever its joins still wait for (see Joins in flight).
		next := c.settings.RejoinInterval
		if c.rejoinRound(c.ctx, false) && quick < maxQuickRetries {
			quick++
			next = c.settings.ProbeInterval
		} else {
			quick = 0
		}
		timer.Reset(max(next-time.Since(began), 0))
	}
}

// rejoinRound runs discovery and joins the missing. It reports whether a
// member it reached is still not up (worth a quick retry).
func (c *Cluster) rejoinRound(ctx context.Context, initial bool) (unsettled bool) {
	var discovered []string
	discoveryOK := true
	if p := c.cfg.Discovery; p != nil {
		dctx, cancel := context.WithTimeout(ctx, discoverTimeout)
		addrs, err := p.Discover(dctx)
		cancel()
		if err != nil {
			discoveryOK = false
			c.mu.Lock()
			first := !c.discoverErr
			c.discoverErr = true
			c.mu.Unlock()
			if first {
				c.log.Warn("cluster: discovery failed; retrying every rejoin interval", "provider", p.Name(), "err", err)
			} else {
				c.log.Debug("cluster: discovery failed", "provider", p.Name(), "err", err)
			}
		} else {
			discovered = addrs
		}
	}

	targets := c.rejoinTargets(discovered)
	wait := c.rejoinWait()
	if initial {
		wait = 0 // Start returns once its first round is over
	}
	errs := c.joinTargets(targets, wait)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.rounds++
	if initial {
		c.initialDone = true
		if !c.closed {
			c.afterChangeLocked()
		}
	}
	if discoveryOK {
		if c.discoverErr {
			c.log.Info("cluster: discovery works again")
		}
		c.discoverErr = false
		self := normalizeAddr(c.gossipAddr)
		peers := 0
		for _, a := range discovered {
			if normalizeAddr(a) != self {
				peers++
			}
		}
		c.discovered = peers
	}
	for i, t := range targets {
		if errs[i] != nil || t.name == "" {
			continue
		}
		if m, ok := c.members[t.name]; !ok || !m.Status.Up() {
			unsettled = true
		}
	}
	return unsettled
}

// rejoinTargets lists the addresses to join: see the comment at the top.
func (c *Cluster) rejoinTargets(discovered []string) []joinTarget {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leaving || c.closed {
		return nil
	}
	skip := map[string]bool{normalizeAddr(c.gossipAddr): true}
	for _, m := range c.members {
		if m.Status.Up() {
			skip[normalizeAddr(m.GossipAddr)] = true
		}
	}
	var out []joinTarget
	add := func(addr, name string) {
		n := normalizeAddr(addr)
		if addr == "" || skip[n] {
			return
		}
		skip[n] = true
		out = append(out, joinTarget{addr: addr, name: name})
	}
	// Known members first, so a target keeps its name when discovery
	// returns the same address.
	for name, m := range c.members {
		if m.Status == StatusDead {
			add(m.GossipAddr, name)
		}
	}
	for name, addr := range c.conflicts {
		if m, ok := c.members[name]; ok && m.Status.Up() {
			continue // the holder is up: a real duplicate, not a restart
		}
		add(addr, name)
	}
	for _, a := range discovered {
		add(a, "")
	}
	return out
}

// Joins in flight. A join to an address the cut made unreachable waits
// for memberlist's TCPTimeout (a dropped SYN is never refused), longer
// than RejoinInterval in every profile. If a rejoin round waited for it,
// the round that heals would start up to TCPTimeout late. So the rejoin
// loop waits for its joins only up to rejoinWait (ProbeInterval, capped
// at RejoinInterval), long enough for any join that will succeed on a
// working network, and leaves the rest to finish on their own; the next
// round starts on schedule and joins the same address afresh. A join
// cannot outlive TCPTimeout (memberlist's dial and stream deadline), so
// the rejoin loop has at most ceil(TCPTimeout / RejoinInterval) + 1 joins
// to one address in flight at once; joinLimit is that plus one for the
// checks of a death or suspicion (verifyDeath, checkSuspect), not
// counting joins already past their timeout.

// errJoinPending marks a join still in flight when its round stopped
// waiting, or not started because the address had joinLimit in flight.
var errJoinPending = errors.New("cluster: join still in flight")

// rejoinWait is how long a rejoin round waits for its joins.
func (c *Cluster) rejoinWait() time.Duration {
	return min(c.settings.ProbeInterval, c.settings.RejoinInterval)
}

// joinLimit is the most joins to one address in flight at once.
func (c *Cluster) joinLimit() int {
	r := max(c.settings.RejoinInterval, time.Millisecond)
	return min(int((c.settings.TCPTimeout+r-1)/r)+2, 16)
}

type joinResult struct {
	i   int
	err error
}

// joinTargets joins every target in parallel (one memberlist.Join, so one
// push-pull, each) and waits for all of them, or for wait when wait > 0.
// errs[i] is nil when target i answered, errJoinPending when it had not
// answered by then (it goes on in the background).
func (c *Cluster) joinTargets(targets []joinTarget, wait time.Duration) []error {
	errs := make([]error, len(targets))
	results := make(chan joinResult, len(targets))
	started := 0
	for i, t := range targets {
		addr := normalizeAddr(t.addr)
		at, ok := c.startJoin(addr)
		if !ok {
			errs[i] = errJoinPending
			continue
		}
		run := c.goWork(func() {
			defer c.endJoin(addr, at)
			if _, err := c.ml.Join([]string{t.addr}); err != nil {
				c.log.Debug("cluster: join failed", "addr", t.addr, "member", t.name, "err", err)
				results <- joinResult{i, err}
				return
			}
			c.log.Debug("cluster: join ok", "addr", t.addr, "member", t.name)
			results <- joinResult{i, nil}
		})
		if !run {
			c.endJoin(addr, at)
			errs[i] = ErrClosed
			continue
		}
		errs[i] = errJoinPending
		started++
	}
	var timeout <-chan time.Time
	if wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		timeout = timer.C
	}
	for ; started > 0; started-- {
		select {
		case r := <-results:
			errs[r.i] = r.err
		case <-timeout:
			return errs
		}
	}
	return errs
}

// startJoin records a join to addr, unless joinLimit joins to it are in
// flight and within their timeout.
func (c *Cluster) startJoin(addr string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	live := 0
	for _, at := range c.joining[addr] {
		if now.Sub(at) < c.settings.TCPTimeout {
			live++
		}
	}
	if live >= c.joinLimit() {
		return time.Time{}, false
	}
	if c.joining == nil {
		c.joining = make(map[string][]time.Time)
	}
	c.joining[addr] = append(c.joining[addr], now)
	return now, true
}

func (c *Cluster) endJoin(addr string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.joining[addr]
	for k, t := range list {
		if t.Equal(at) {
			list = append(list[:k], list[k+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(c.joining, addr)
	} else {
		c.joining[addr] = list
	}
}

// verifyDeath push-pulls with a member whose death this node only heard
// of (view.go, nodeGone), waiting at most the death grace: if it answers
// it is alive, and its current incarnation cancels the held death.
func (c *Cluster) verifyDeath(t joinTarget) {
	if c.ml == nil { // a view without memberlist (unit tests)
		return
	}
	c.goWork(func() {
		c.verifies.Add(1)
		c.joinTargets([]joinTarget{t}, c.deathGrace())
	})
}

// checkSuspect: this node's own probe of a member failed. memberlist
// gossips the suspicion and the member refutes once; a node that misses
// that one broadcast lets its suspicion timer declare a live member dead
// (seen on a starved machine: a probe times out, the refutation goes to
// two other peers). So the suspicion is also checked with the member
// directly: one push-pull at once, which tells it of the suspicion (it
// refutes), and, if it is still suspect in this view one probe interval
// later, a second, which brings back the refuted incarnation (memberlist
// then drops its suspicion timer). A member really gone refuses both or
// never answers; its death is unchanged.
func (c *Cluster) checkSuspect(t joinTarget) {
	if c.ml == nil { // a view without memberlist (unit tests)
		return
	}
	c.goWork(func() {
		c.joinTargets([]joinTarget{t}, c.rejoinWait())
		timer := time.NewTimer(c.settings.ProbeInterval)
		defer timer.Stop()
		select {
		case <-c.stop:
			return
		case <-timer.C:
		}
		c.mu.Lock()
		m, ok := c.members[t.name]
		still := ok && m.Status == StatusSuspect && !c.closed
		c.mu.Unlock()
		if still {
			c.joinTargets([]joinTarget{t}, c.rejoinWait())
		}
	})
}

// Stale verdicts. During a cut each side declares the other dead at the
// incarnation it last heard (i). memberlist accepts "X dead (or suspect)
// at i" for an X it holds alive at i, until X refutes with i+1; so after a
// heal, the first push-pull hands each side the other's stale verdicts
// about its own, healthy, members, and they are suspected and sometimes
// declared dead before the refutations arrive (measured: 3 heals of 15
// with a false death, docs/BENCHMARKS.md). The remedy is to refute before
// the accusation: when this node sees a member die, it raises its own
// incarnation (memberlist's UpdateNode: an alive message at i+1, gossiped
// to the members it can still reach). Whoever declared it dead across a
// cut did so at an older incarnation, which every member that got the
// raise ignores (memberlist drops suspect and dead messages below the
// incarnation it holds), while the other side takes the alive at i+1 in
// the first push-pull of the heal, which so needs no second round.
//
// The raise must reach every member of this node's side: the accused
// ignores an accusation below its incarnation and so does not refute it,
// and a member that missed the raise takes the stale verdict, suspects
// and then declares the accused dead (measured: 1 heal of 15 with the
// raise gossiped only). Gossip alone can miss one: each broadcast is sent
// RetransmitMult × log10 N times, and right after the cut memberlist
// still gossips to the other side's members (GossipToTheDeadTime), where
// the copies are lost. So after the raise this node also push-pulls with
// up to raisePeers up members (over TCP, and each of them re-gossips the
// alive message it took). One raise covers every death seen while one is
// queued; a crash costs one broadcast and up to raisePeers push-pulls per
// survivor.
const raisePeers = 8

// raiseIncarnation queues one incarnation raise (see above).
func (c *Cluster) raiseIncarnation() {
	if c.ml == nil { // a view without memberlist (unit tests)
		return
	}
	if !c.raising.CompareAndSwap(false, true) {
		return
	}
	started := c.goWork(func() {
		c.raising.Store(false)
		c.mu.Lock()
		skip := c.leaving || c.closed
		c.mu.Unlock()
		if skip {
			return
		}
		c.raises.Add(1)
		// UpdateNode raises the incarnation at once and then waits for
		// the broadcast to go out (the next gossip round). The push-pulls
		// below carry the raise whether or not it went out, so the wait
		// is kept short: Shutdown waits for this goroutine.
		c.updateSem <- struct{}{}
		err := c.ml.UpdateNode(2 * c.settings.GossipInterval)
		<-c.updateSem
		if err != nil {
			c.log.Debug("cluster: incarnation raised; broadcast not confirmed", "err", err)
		}
		c.joinTargets(c.randomUpTargets(raisePeers), c.rejoinWait())
	})
	if !started {
		c.raising.Store(false)
	}
}

// sweepLoop clears suspicions that were refuted without our noticing, and
// forgets members gone for longer than ReconnectTimeout.
func (c *Cluster) sweepLoop() {
	defer c.loops.Done()
	ticker := time.NewTicker(c.settings.ProbeInterval)
	defer ticker.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-ticker.C:
			c.sweep(time.Now())
		}
	}
}

// sweep: a suspect that memberlist still lists after the longest suspicion
// timeout (plus two probe intervals) was refuted: our own suspicion timer
// would have declared it dead otherwise. memberlist reports refutations
// only when the metadata changes, so this is how we learn of the rest,
// besides a successful direct probe (probeOK).
func (c *Cluster) sweep(now time.Time) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	_, maxSuspicion := c.settings.SuspicionTimeout(len(c.members))
	grace := maxSuspicion + 2*c.settings.ProbeInterval
	var stale []string
	pruned := false
	for name, m := range c.members {
		switch {
		case m.Status == StatusSuspect && now.Sub(m.Since) > grace:
			stale = append(stale, name)
		case !m.Status.Up() && name != c.cfg.NodeName && now.Sub(m.Since) > c.cfg.ReconnectTimeout:
			delete(c.members, name)
			delete(c.leaveIntents, name)
			delete(c.conflicts, name)
			pruned = true
		}
	}
	if !c.reviewLocked(now) && pruned {
		c.afterChangeLocked()
	}
	c.mu.Unlock()
	c.flushStanding()
	if len(stale) == 0 {
		return
	}
	listed := make(map[string]bool)
	for _, n := range c.ml.Members() { // alive and suspect, per memberlist
		listed[n.Name] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, name := range stale {
		if listed[name] {
			c.clearSuspectLocked(name)
		}
	}
}

// announceLeave sends our leave intent to every other member directly and
// waits up to wait for the sends.
func (c *Cluster) announceLeave(wait time.Duration) {
	msg := encodeLeaveIntent(leaveIntent{Name: c.cfg.NodeName, Incarnation: c.cfg.Incarnation})
	var peers []*memberlist.Node
	for _, n := range c.ml.Members() {
		if n.Name != c.cfg.NodeName {
			cp := *n // memberlist owns n; SendReliable only needs the address
			peers = append(peers, &cp)
		}
	}
	if len(peers) == 0 {
		return
	}
	done := make(chan error, len(peers))
	for _, n := range peers {
		if !c.goWork(func() { done <- c.ml.SendReliable(n, msg) }) {
			done <- ErrClosed
		}
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var errs []error
	for range peers {
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, err)
			}
		case <-timer.C:
			c.log.Warn("cluster: leave announcement timed out; some peers may see this node dead, not left")
			return
		}
	}
	if len(errs) > 0 {
		c.log.Warn("cluster: leave announcement failed for some peers; they may see this node dead, not left",
			"failed", len(errs), "err", errors.Join(errs...))
	}
}
