package clustertest

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The double-run checker: from the History's record of every start and
// stop of every copy of every distributed child (placement), with node and
// time, the intervals in which two copies of one child ran at once.
//
// The node processes keep their placement events (the "service_history"
// command); WatchChildren polls every running node for them and adds the
// new ones to the History as KindChild entries, at the time the node
// stamped them (one host, one clock). A copy runs from its "started" to
// its "stopped" or "exited"; a copy still open when its node was killed
// (or left) ends at the kill (the leave). Blind spot: events of a node in
// the last poll interval before a kill -9 are lost with it, so a copy
// started there in that interval is not seen at all.

// ChildEvent is one placement event of a node: a copy of a child started,
// stopped (on purpose: reason split_brain, lease_expired, handoff,
// reassigned, stopped, shutdown) or exited.
type ChildEvent struct {
	Type   string    `json:"type"` // started, stopped, exited (others are kept but unused)
	Time   time.Time `json:"time"`
	ID     string    `json:"id"`
	PID    string    `json:"pid"`
	Node   string    `json:"node"`
	Reason string    `json:"reason"`
}

// ChildRun is one copy of a child: on Node, as PID, from Start to End
// (End zero: still running when the check ran).
type ChildRun struct {
	ID, Node, PID string
	Start, End    time.Time
	EndReason     string // the stop reason, "killed", "left", or "" while running
}

// DoubleRun is an interval in which two copies of one child ran at once.
type DoubleRun struct {
	ID       string
	A, B     ChildRun // A started first
	From, To time.Time
}

// Duration is how long both copies ran.
func (d DoubleRun) Duration() time.Duration { return d.To.Sub(d.From) }

func (d DoubleRun) String() string {
	return fmt.Sprintf("%s: %s on %s [%s, %s) and %s on %s [%s, %s): both for %s from %s",
		d.ID, d.A.PID, d.A.Node, clock(d.A.Start), clockOr(d.A.End, d.A.EndReason), d.B.PID, d.B.Node, clock(d.B.Start),
		clockOr(d.B.End, d.B.EndReason), d.Duration().Round(time.Millisecond), clock(d.From))
}

func clock(t time.Time) string { return t.Format("15:04:05.000") }

func clockOr(t time.Time, reason string) string {
	if t.IsZero() {
		return "running"
	}
	if reason != "" {
		return clock(t) + " " + reason
	}
	return clock(t)
}

// addChild adds a child event at the time the node stamped it, keeping
// the entries in time order; it reports false for an event already there.
func (h *History) addChild(ev ChildEvent) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := fmt.Sprintf("%s %s %s %s %d", ev.Node, ev.Type, ev.PID, ev.ID, ev.Time.UnixNano())
	if h.childSeen == nil {
		h.childSeen = map[string]bool{}
	}
	if h.childSeen[key] {
		return false
	}
	h.childSeen[key] = true
	e := Entry{At: ev.Time.Sub(h.start), Kind: KindChild, Node: ev.Node, Child: ev}
	i := sort.Search(len(h.entries), func(i int) bool { return h.entries[i].At > e.At })
	h.entries = append(h.entries, Entry{})
	copy(h.entries[i+1:], h.entries[i:])
	h.entries[i] = e
	return true
}

// ChildEvents returns every child event in the History, in time order.
func (h *History) ChildEvents() []ChildEvent {
	var out []ChildEvent
	for _, e := range h.Entries() {
		if e.Kind == KindChild {
			out = append(out, e.Child)
		}
	}
	return out
}

// ChildRuns builds every copy of every child from the History's child
// events; a copy open when a fault of kind kill or leave hit its node
// ends there (node names by index: nodeName).
func (h *History) ChildRuns(nodeName func(int) string) []ChildRun {
	type end struct {
		at     time.Time
		reason string
	}
	ends := map[string][]end{} // node → kill and leave times
	for _, f := range h.Faults() {
		if (f.Kind == "kill" || f.Kind == "leave") && len(f.Nodes) == 1 {
			r := "killed"
			if f.Kind == "leave" {
				r = "left"
			}
			n := nodeName(f.Nodes[0])
			ends[n] = append(ends[n], end{h.start.Add(f.Injected), r})
		}
	}
	var runs []ChildRun
	open := map[string]int{} // node+pid → index in runs
	for _, ev := range h.ChildEvents() {
		k := ev.Node + " " + ev.PID
		switch ev.Type {
		case "started":
			open[k] = len(runs)
			runs = append(runs, ChildRun{ID: ev.ID, Node: ev.Node, PID: ev.PID, Start: ev.Time})
		case "stopped", "exited":
			if i, ok := open[k]; ok {
				runs[i].End, runs[i].EndReason = ev.Time, ev.Reason
				if ev.Type == "exited" {
					runs[i].EndReason = "exited: " + ev.Reason
				}
				delete(open, k)
			}
		}
	}
	for _, i := range open {
		for _, e := range ends[runs[i].Node] {
			if e.at.After(runs[i].Start) && (runs[i].End.IsZero() || e.at.Before(runs[i].End)) {
				runs[i].End, runs[i].EndReason = e.at, e.reason
			}
		}
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].Start.Before(runs[j].Start) })
	return runs
}

// DoubleRuns returns every interval in which two copies of one child ran
// at once, by child and start.
func DoubleRuns(runs []ChildRun) []DoubleRun {
	by := map[string][]ChildRun{}
	for _, r := range runs {
		by[r.ID] = append(by[r.ID], r)
	}
	far := time.Now().Add(24 * time.Hour)
	endOf := func(r ChildRun) time.Time {
		if r.End.IsZero() {
			return far
		}
		return r.End
	}
	var out []DoubleRun
	for id, list := range by {
		sort.Slice(list, func(i, j int) bool { return list[i].Start.Before(list[j].Start) })
		for j := 1; j < len(list); j++ {
			for _, a := range list[:j] {
				b := list[j]
				from, to := b.Start, endOf(a)
				if e := endOf(b); e.Before(to) {
					to = e
				}
				if to.After(from) {
					if to.Equal(far) {
						to = time.Now()
					}
					out = append(out, DoubleRun{ID: id, A: a, B: b, From: from, To: to})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].From.Before(out[j].From)
	})
	return out
}

// childWatch polls the nodes for their placement events.
type childWatch struct {
	once sync.Once
	stop chan struct{}
	done chan struct{}
}

var childWatches sync.Map // *Cluster → *childWatch

// WatchChildren starts recording every node's placement events into the
// History (KindChild entries), polling each running, unpaused node every
// 100 ms until the test ends. Call it before the faults; calling it again
// is a no-op.
func (c *Cluster) WatchChildren() {
	w := &childWatch{stop: make(chan struct{}), done: make(chan struct{})}
	if prev, loaded := childWatches.LoadOrStore(c, w); loaded {
		_ = prev
		return
	}
	c.CollectChildren()
	go func() {
		defer close(w.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				c.CollectChildren()
			}
		}
	}()
	c.t.Cleanup(func() {
		w.once.Do(func() { close(w.stop) })
		<-w.done
		childWatches.Delete(c)
	})
}

// CollectChildren adds to the History the placement events of every
// running, unpaused node that are not there yet, and returns how many it
// added.
func (c *Cluster) CollectChildren() int {
	added := 0
	for _, n := range c.Nodes() {
		if !n.Alive() || n.isPaused() {
			continue
		}
		var sh struct {
			Placement []ChildEvent `json:"placement"`
		}
		if err := n.Do("service_history", nil, &sh); err != nil {
			continue // exited or paused meanwhile; its events so far are in
		}
		for _, ev := range sh.Placement {
			if ev.Node == "" {
				ev.Node = n.Name
			}
			if c.hist.addChild(ev) {
				added++
			}
		}
	}
	return added
}

// ChildRuns is every copy of every child this cluster's History records.
func (c *Cluster) ChildRuns() []ChildRun {
	c.CollectChildren()
	return c.hist.ChildRuns(func(i int) string { return c.NodeName(i) })
}

// AssertNoDoubleRuns fails the test for every interval in which two copies
// of one distributed child ran at once, as the History records them, and
// returns the runs it checked. On a backend without distributed children
// (the simulator) it logs that and checks nothing.
func AssertNoDoubleRuns(t testing.TB, h Harness) []ChildRun {
	t.Helper()
	c, ok := h.(*Cluster)
	if !ok {
		t.Logf("double-run check: the %s backend runs no distributed children", h.Backend())
		return nil
	}
	runs := c.ChildRuns()
	ids := map[string]bool{}
	for _, r := range runs {
		ids[r.ID] = true
	}
	t.Logf("double-run check: %d copies of %d children", len(runs), len(ids))
	if bad := DoubleRuns(runs); len(bad) > 0 {
		lines := make([]string, len(bad))
		for i, d := range bad {
			lines[i] = d.String()
		}
		t.Errorf("%d double runs (two copies of one child at once):\n  %s", len(bad), strings.Join(lines, "\n  "))
	}
	return runs
}
