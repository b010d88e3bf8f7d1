package process

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// TraceOptions bound a trace. Both bounds apply; zero picks the default.
type TraceOptions struct {
	MaxEvents int           // default 1000, at most 100000
	Duration  time.Duration // default 60 s, at most 1 h
	// Filter, if set, keeps only messages whose Go type name (as printed
	// by %T) contains it.
	Filter string
}

// TraceEvent is one message in or out of a traced process.
type TraceEvent struct {
	Time    time.Time `json:"time"`
	PID     PID       `json:"pid"`
	Dir     string    `json:"direction"` // "in", "out" or "exit"
	Kind    string    `json:"kind"`      // info, cast, call or exit
	Peer    PID       `json:"peer,omitzero"`
	Type    string    `json:"type,omitempty"`
	Message string    `json:"message"` // %+v, cut to 512 bytes
}

// Trace records a process's messages until it is stopped or reaches its
// bounds.
type Trace struct {
	ID      string
	PID     PID
	Started time.Time
	opts    TraceOptions
	rt      *Runtime

	mu      sync.Mutex
	events  []TraceEvent
	stopped bool
	why     string
	dropped int
	timer   *time.Timer
}

// TraceSnapshot is a trace's state at one moment.
type TraceSnapshot struct {
	ID         string       `json:"id"`
	PID        PID          `json:"pid"`
	Started    time.Time    `json:"started_at"`
	Running    bool         `json:"running"`
	StopReason string       `json:"stop_reason,omitempty"`
	MaxEvents  int          `json:"max_events"`
	Duration   string       `json:"duration"`
	Events     []TraceEvent `json:"events"`
	Filtered   int          `json:"filtered_out"`
}

// Trace starts recording pid's messages in and out.
func (rt *Runtime) Trace(pid PID, opts TraceOptions) (*Trace, error) {
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = 1000
	}
	if opts.MaxEvents > 100000 {
		return nil, fmt.Errorf("trace: MaxEvents %d is over the limit of 100000", opts.MaxEvents)
	}
	if opts.Duration <= 0 {
		opts.Duration = time.Minute
	}
	if opts.Duration > time.Hour {
		return nil, fmt.Errorf("trace: Duration %s is over the limit of 1h", opts.Duration)
	}
	p := rt.lookup(pid)
	if p == nil || p.state.Load() == stateDead {
		return nil, &CallError{PID: pid, Err: NoProc}
	}
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	t := &Trace{ID: hex.EncodeToString(idb[:]), PID: pid, Started: time.Now(), opts: opts, rt: rt}
	rt.tracesMu.Lock()
	rt.traces[t.ID] = t
	rt.tracesMu.Unlock()
	p.mu.Lock()
	old := p.tracers.Load()
	var list []*Trace
	if old != nil {
		list = append(list, *old...)
	}
	list = append(list, t)
	p.tracers.Store(&list)
	p.mu.Unlock()
	t.timer = time.AfterFunc(opts.Duration, func() { t.stop("duration reached") })
	return t, nil
}

// LookupTrace finds a trace by id (running or finished, until removed).
func (rt *Runtime) LookupTrace(id string) (*Trace, bool) {
	rt.tracesMu.Lock()
	defer rt.tracesMu.Unlock()
	t, ok := rt.traces[id]
	return t, ok
}

// RemoveTrace stops a trace and forgets it.
func (rt *Runtime) RemoveTrace(id string) bool {
	rt.tracesMu.Lock()
	t, ok := rt.traces[id]
	delete(rt.traces, id)
	rt.tracesMu.Unlock()
	if ok {
		t.Stop()
	}
	return ok
}

func (rt *Runtime) stopAllTraces() {
	rt.tracesMu.Lock()
	list := make([]*Trace, 0, len(rt.traces))
	for _, t := range rt.traces {
		list = append(list, t)
	}
	rt.tracesMu.Unlock()
	for _, t := range list {
		t.stop("runtime shut down")
	}
}

// Stop ends the trace; its events stay readable.
func (t *Trace) Stop() { t.stop("stopped") }

func (t *Trace) stop(why string) {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	t.stopped, t.why = true, why
	if t.timer != nil {
		t.timer.Stop()
	}
	t.mu.Unlock()
	if p := t.rt.lookup(t.PID); p != nil {
		p.mu.Lock()
		if old := p.tracers.Load(); old != nil {
			var list []*Trace
			for _, x := range *old {
				if x != t {
					list = append(list, x)
				}
			}
			if len(list) == 0 {
				p.tracers.Store(nil)
			} else {
				p.tracers.Store(&list)
			}
		}
		p.mu.Unlock()
	}
}

// Snapshot returns the events recorded so far.
func (t *Trace) Snapshot() TraceSnapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TraceSnapshot{
		ID: t.ID, PID: t.PID, Started: t.Started, Running: !t.stopped, StopReason: t.why,
		MaxEvents: t.opts.MaxEvents, Duration: t.opts.Duration.String(),
		Events: append([]TraceEvent(nil), t.events...), Filtered: t.dropped,
	}
}

func (t *Trace) record(ev TraceEvent) {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	if t.opts.Filter != "" && ev.Dir != "exit" && !containsFold(ev.Type, t.opts.Filter) {
		t.dropped++
		t.mu.Unlock()
		return
	}
	if len(t.events) >= t.opts.MaxEvents {
		t.mu.Unlock()
		return
	}
	t.events = append(t.events, ev)
	full := len(t.events) >= t.opts.MaxEvents
	t.mu.Unlock()
	if full {
		go t.stop("max events reached")
	}
}

func containsFold(s, sub string) bool {
	if len(sub) > len(s) {
		return false
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		match := true
		for j := 0; j < len(sub); j++ {
			a, b := s[i+j], sub[j]
			if a >= 'A' && a <= 'Z' {
				a += 'a' - 'A'
			}
			if b >= 'A' && b <= 'Z' {
				b += 'a' - 'A'
			}
			if a != b {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

var kindNames = [...]string{kindInfo: "info", kindCast: "cast", kindCall: "call"}

func render(msg any) string {
	s := fmt.Sprintf("%+v", msg)
	if len(s) > 512 {
		s = s[:512] + "…"
	}
	return s
}

func traceIn(ts []*Trace, pid PID, e *letter) {
	ev := TraceEvent{Time: time.Now(), PID: pid, Dir: "in", Kind: kindNames[e.kind()], Peer: e.sender(), Type: fmt.Sprintf("%T", e.body), Message: render(e.body)}
	for _, t := range ts {
		t.record(ev)
	}
}

func traceOut(ts []*Trace, pid, to PID, kind uint8, msg any) {
	ev := TraceEvent{Time: time.Now(), PID: pid, Dir: "out", Kind: kindNames[kind], Peer: to, Type: fmt.Sprintf("%T", msg), Message: render(msg)}
	for _, t := range ts {
		t.record(ev)
	}
}
