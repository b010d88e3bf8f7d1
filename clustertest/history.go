package clustertest

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/arsenal-go/arsenal/control"
)

// EntryKind says what an Entry of a History records.
type EntryKind string

const (
	// KindFault: the test injected a fault (partition, blackhole, delay,
	// kill, leave, pause).
	KindFault EntryKind = "fault"
	// KindUndo: the test undid faults (heal, delay removed, resume,
	// restart).
	KindUndo EntryKind = "undo"
	// KindEffect: a wait saw a fault in effect.
	KindEffect EntryKind = "in-effect"
	// KindRecovered: a wait saw the cluster converged after an undo.
	KindRecovered EntryKind = "recovered"
	// KindNote: the harness or the test noted something (starts, waits,
	// checks, seeds).
	KindNote EntryKind = "note"
	// KindFailed: a wait or check failed.
	KindFailed EntryKind = "FAILED"
	// KindMember: a node reported a change of its membership view.
	KindMember EntryKind = "member"
	// KindDown, KindExit, KindMessage: a watcher process (Monitor, Link,
	// Spawn "sink") received a DOWN, an EXIT or a message.
	KindDown    EntryKind = "down"
	KindExit    EntryKind = "exit"
	KindMessage EntryKind = "message"
	// KindChild: a node started, stopped, or saw the exit of a copy of a
	// distributed child (placement), as collected by WatchChildren.
	KindChild EntryKind = "child"
)

// Entry is one thing that happened.
type Entry struct {
	At     time.Duration // since the cluster's start
	Kind   EntryKind
	Node   string // the node that reported it; "" for the harness
	Text   string // faults, undos, notes
	Member control.MemberEvent
	Signal control.Signal
	Child  ChildEvent // KindChild (doublerun.go)
}

func (e Entry) String() string {
	var what string
	switch e.Kind {
	case KindMember:
		m := e.Member
		switch m.Type {
		case "partition_changed":
			what = "partition " + m.Partition
		case "mode_changed":
			what = "mode " + m.Mode
		default:
			what = fmt.Sprintf("%s %s (%s -> %s)", m.Type, m.Node, or(m.OldStatus, "new"), m.NewStatus)
			if m.Restarted {
				what += " restarted"
			}
		}
	case KindDown, KindExit:
		what = fmt.Sprintf("%s %s: %s %s", e.Signal.Watcher, e.Kind, e.Signal.PID, e.Signal.Reason)
	case KindMessage:
		what = fmt.Sprintf("%s got %v", e.Signal.Watcher, e.Signal.Message)
	case KindChild:
		what = fmt.Sprintf("child %s %s (%s)", e.Child.ID, e.Child.Type, e.Child.PID)
		if e.Child.Reason != "" {
			what += ": " + e.Child.Reason
		}
	default:
		what = string(e.Kind) + ": " + e.Text
	}
	if e.Node != "" {
		what = "[" + e.Node + "] " + what
	}
	return fmt.Sprintf("%8.3fs  %s", e.At.Seconds(), what)
}

func or(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

// Fault is the life cycle of one injected fault: when it was injected,
// first seen in effect, undone, and when the cluster was seen converged
// after the undo. Times are since the cluster's start; zero means "not
// (yet)".
type Fault struct {
	ID    int
	Kind  string // partition, blackhole, delay, kill, leave, pause
	What  string
	Nodes []int // the nodes it acts on (all of them for a partition)

	Injected, InEffect, Undone, Recovered time.Duration
	inEffect, undone, recovered           bool
}

// EffectAfter is how long after the injection the fault was seen in
// effect.
func (f Fault) EffectAfter() (time.Duration, bool) { return f.InEffect - f.Injected, f.inEffect }

// RecoveryAfter is how long after the undo the cluster was seen converged.
func (f Fault) RecoveryAfter() (time.Duration, bool) { return f.Recovered - f.Undone, f.recovered }

func (f Fault) String() string {
	s := fmt.Sprintf("#%d %s: injected at %.3fs", f.ID, f.What, f.Injected.Seconds())
	if d, ok := f.EffectAfter(); ok {
		s += fmt.Sprintf(", in effect after %s", d.Round(time.Millisecond))
	} else {
		s += ", never seen in effect"
	}
	if f.undone {
		s += fmt.Sprintf(", undone at %.3fs", f.Undone.Seconds())
		if d, ok := f.RecoveryAfter(); ok {
			s += fmt.Sprintf(", recovered %s after the undo", d.Round(time.Millisecond))
		} else {
			s += ", recovery never seen"
		}
	} else {
		s += ", never undone"
	}
	return s
}

// History records what happened in one cluster, in order: the faults the
// test injected and undid (with their life cycle), what the harness
// waited for, every change of membership each node reported, and every
// DOWN, EXIT and message its watcher processes received. Scenarios check
// their invariants on it, during the fault and after, and the diagnostics
// print it. It is safe for concurrent use.
type History struct {
	start time.Time

	mu      sync.Mutex
	entries []Entry
	faults  []*Fault
	formed  time.Duration // Start to converged; 0 if unknown
	ready   time.Duration // Start to every node ready (launched)
	// drain: traffic sent under a delay that has been removed may still
	// arrive until then (like packets already in a netem queue).
	drain time.Duration
	// childSeen: the child events already added (doublerun.go).
	childSeen map[string]bool
}

func newHistory(start time.Time) *History { return &History{start: start} }

func (h *History) now() time.Duration { return time.Since(h.start) }

func (h *History) add(e Entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.At == 0 {
		e.At = h.now()
	}
	h.entries = append(h.entries, e)
}

// Note records a line of the test's own in the timeline.
func (h *History) Note(format string, args ...any) {
	h.add(Entry{Kind: KindNote, Text: fmt.Sprintf(format, args...)})
}

func (h *History) failed(format string, args ...any) {
	h.add(Entry{Kind: KindFailed, Text: fmt.Sprintf(format, args...)})
}

// inject opens a fault.
func (h *History) inject(kind, what string, nodes ...int) *Fault {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := &Fault{ID: len(h.faults) + 1, Kind: kind, What: what, Nodes: nodes, Injected: h.now()}
	h.faults = append(h.faults, f)
	h.entries = append(h.entries, Entry{At: f.Injected, Kind: KindFault, Text: fmt.Sprintf("#%d %s", f.ID, what)})
	return f
}

// undo closes the open faults match selects.
func (h *History) undo(what string, match func(*Fault) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	var ids []string
	for _, f := range h.faults {
		if !f.undone && match(f) {
			f.undone, f.Undone = true, now
			ids = append(ids, fmt.Sprintf("#%d", f.ID))
		}
	}
	text := what
	if len(ids) > 0 {
		text += " (undoes " + strings.Join(ids, " ") + ")"
	}
	h.entries = append(h.entries, Entry{At: now, Kind: KindUndo, Text: text})
}

// inEffect marks the open faults match selects as in effect, if not yet.
func (h *History) inEffect(why string, match func(*Fault) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	for _, f := range h.faults {
		if !f.inEffect && !f.undone && match(f) {
			f.inEffect, f.InEffect = true, now
			h.entries = append(h.entries, Entry{At: now, Kind: KindEffect,
				Text: fmt.Sprintf("#%d %s: %s, %s after injection", f.ID, f.What, why, (now - f.Injected).Round(time.Millisecond))})
		}
	}
}

// delayRemoved records that a delay of up to d was removed: what was sent
// under it is still in flight for d.
func (h *History) delayRemoved(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.drain = max(h.drain, h.now()+d)
}

// drainUntil is when the traffic of every removed delay has arrived.
func (h *History) drainUntil() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.drain
}

// MarkInEffect records that every open fault not yet seen in effect is in
// effect now, for faults whose effect only the test can tell (a one-way
// cut that nobody's status shows).
func (h *History) MarkInEffect(why string) { h.inEffect(why, func(*Fault) bool { return true }) }

// recoveredNow marks every undone, unrecovered fault recovered.
func (h *History) recoveredNow(why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	for _, f := range h.faults {
		if f.undone && !f.recovered {
			f.recovered, f.Recovered = true, now
			h.entries = append(h.entries, Entry{At: now, Kind: KindRecovered,
				Text: fmt.Sprintf("#%d %s: %s, %s after the undo", f.ID, f.What, why, (now - f.Undone).Round(time.Millisecond))})
		}
	}
}

// Len is the number of entries so far: a mark for Since.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.entries)
}

// Entries returns a copy of every entry.
func (h *History) Entries() []Entry { return h.Since(0) }

// Since returns the entries from mark (a Len) on.
func (h *History) Since(mark int) []Entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	if mark > len(h.entries) {
		mark = len(h.entries)
	}
	return append([]Entry(nil), h.entries[mark:]...)
}

// Faults returns the life cycle of every fault injected so far.
func (h *History) Faults() []Fault {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Fault, len(h.faults))
	for i, f := range h.faults {
		out[i] = *f
	}
	return out
}

// Formation is how long Start took until every node saw every other alive
// (0 if Start did not wait).
func (h *History) Formation() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.formed
}

// Ready is how long Start took until every node had reported ready (its
// processes launched, addresses known), before convergence.
func (h *History) Ready() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ready
}

// Signals returns the DOWN (kind "down"), EXIT ("exit") or message
// ("message") signals watchers on node received since mark, in order
// (node "" for every node).
func (h *History) Signals(mark int, kind EntryKind, node string) []control.Signal {
	var out []control.Signal
	for _, e := range h.Since(mark) {
		if e.Kind == kind && (node == "" || e.Node == node) {
			out = append(out, e.Signal)
		}
	}
	return out
}

// Messages returns what the sink watcher received since mark, in order.
func (h *History) Messages(mark int, watcher string) []string {
	var out []string
	for _, e := range h.Since(mark) {
		if e.Kind == KindMessage && e.Signal.Watcher == watcher {
			out = append(out, fmt.Sprint(e.Signal.Message))
		}
	}
	return out
}

// MemberEvents returns the membership changes observer reported since
// mark (observer "" for every node), each with the node that reported it.
func (h *History) MemberEvents(mark int, observer string) []Entry {
	var out []Entry
	for _, e := range h.Since(mark) {
		if e.Kind == KindMember && (observer == "" || e.Node == observer) {
			out = append(out, e)
		}
	}
	return out
}

// Transitions counts, per "observer -> member" pair, the status changes
// reported since mark whose new status is one of statuses (all changes of
// node status when none is given).
func (h *History) Transitions(mark int, statuses ...string) map[string]int {
	want := map[string]bool{}
	for _, s := range statuses {
		want[s] = true
	}
	out := map[string]int{}
	for _, e := range h.MemberEvents(mark, "") {
		m := e.Member
		if m.Node == "" || m.Node == e.Node || m.OldStatus == m.NewStatus {
			continue
		}
		if len(want) > 0 && !want[m.NewStatus] {
			continue
		}
		out[e.Node+" -> "+m.Node]++
	}
	return out
}

// SawStatus reports whether observer reported target with status since
// mark.
func (h *History) SawStatus(mark int, observer, target, status string) bool {
	for _, e := range h.MemberEvents(mark, observer) {
		if e.Member.Node == target && e.Member.NewStatus == status {
			return true
		}
	}
	return false
}

// Timeline is what the test did and waited for (no member events or
// signals), one line per entry.
func (h *History) Timeline() string {
	var b strings.Builder
	for _, e := range h.Entries() {
		switch e.Kind {
		case KindMember, KindDown, KindExit, KindMessage:
			continue
		}
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Summary is one line per fault (time to effect, time to recovery) and
// the formation time, for t.Log and docs/TESTING.md.
func (h *History) Summary() string {
	var b strings.Builder
	if d := h.Formation(); d > 0 {
		fmt.Fprintf(&b, "formation: every node ready %s after Start, converged %s after Start\n",
			h.Ready().Round(time.Millisecond), d.Round(time.Millisecond))
	}
	for _, f := range h.Faults() {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// changes is the membership-change part of the history, for diagnostics:
// the last max lines.
func (h *History) changes(max int) string {
	var lines []string
	for _, e := range h.Entries() {
		switch e.Kind {
		case KindMember, KindDown, KindExit:
			lines = append(lines, e.String())
		}
	}
	var b strings.Builder
	if len(lines) > max {
		fmt.Fprintf(&b, "… %d earlier lines …\n", len(lines)-max)
		lines = lines[len(lines)-max:]
	}
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// SeqCheck is the result of checking numbered messages ("msg:n") of one
// sender–receiver pair against per-pair FIFO and at-most-once delivery.
type SeqCheck struct {
	Received   int
	Duplicates []int // numbers received more than once
	Reordered  []int // numbers received after a larger one
	Missing    []int // numbers in [0, sent) never received
	Foreign    int   // messages without the pair's prefix
}

// OK reports no duplicate and no reordering (gaps are judged by the
// caller: they are allowed only where the pair was cut).
func (s SeqCheck) OK() bool { return len(s.Duplicates) == 0 && len(s.Reordered) == 0 }

func (s SeqCheck) String() string {
	return fmt.Sprintf("received %d, duplicates %v, reordered %v, missing %s, foreign %d",
		s.Received, trim(s.Duplicates), trim(s.Reordered), ranges(s.Missing), s.Foreign)
}

// CheckSeq checks the messages a sink received: those "prefix:n" must be
// strictly increasing in n; sent is how many numbers were sent (0..sent-1).
func CheckSeq(msgs []string, prefix string, sent int) SeqCheck {
	var s SeqCheck
	seen := map[int]bool{}
	last := -1
	for _, m := range msgs {
		var n int
		rest, ok := strings.CutPrefix(m, prefix+":")
		if !ok {
			s.Foreign++
			continue
		}
		if _, err := fmt.Sscanf(rest, "%d", &n); err != nil {
			s.Foreign++
			continue
		}
		s.Received++
		if seen[n] {
			s.Duplicates = append(s.Duplicates, n)
			continue
		}
		seen[n] = true
		if n < last {
			s.Reordered = append(s.Reordered, n)
		}
		last = max(last, n)
	}
	for n := 0; n < sent; n++ {
		if !seen[n] {
			s.Missing = append(s.Missing, n)
		}
	}
	return s
}

func trim(xs []int) string {
	if len(xs) > 10 {
		return fmt.Sprintf("%v… (%d)", xs[:10], len(xs))
	}
	return fmt.Sprint(xs)
}

// ranges prints sorted numbers as "[3-7 9]".
func ranges(xs []int) string {
	xs = append([]int(nil), xs...)
	sort.Ints(xs)
	var parts []string
	for i := 0; i < len(xs); {
		j := i
		for j+1 < len(xs) && xs[j+1] == xs[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", xs[i], xs[j]))
		} else {
			parts = append(parts, fmt.Sprint(xs[i]))
		}
		i = j + 1
	}
	return "[" + strings.Join(parts, " ") + "]"
}
