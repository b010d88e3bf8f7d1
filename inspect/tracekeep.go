package inspect

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
)

// Bounds on the traces one node keeps. A trace holds at most 100 000
// events of at most about 700 bytes (the message text is cut to 512), so
// MaxTraceEvents bounds a node's trace memory to roughly 70 MB.
const (
	// TraceRetention is how long a stopped trace stays readable before
	// it is removed.
	TraceRetention = 10 * time.Minute
	// MaxTraces is how many traces a node keeps, running or stopped.
	// Starting one more removes the oldest stopped trace, or is refused
	// (409) when all are running.
	MaxTraces = 32
	// MaxTraceEvents bounds the events all traces of a node may hold
	// together (the sum of their max_events).
	MaxTraceEvents = 100000
)

// traceKeeper removes the traces of one node after they stop and their
// retention passes, and bounds their number and size. It sweeps on every
// trace request and on a timer that runs only while traces are kept.
type traceKeeper struct {
	rt        *process.Runtime
	retention time.Duration

	mu      sync.Mutex
	kept    map[string]*keptTrace // local id →
	timer   *time.Timer
	stopped bool
}

type keptTrace struct {
	t         *process.Trace
	started   time.Time
	maxEvents int
	stoppedAt time.Time // zero while running (as last seen)
}

func newTraceKeeper(rt *process.Runtime, retention time.Duration) *traceKeeper {
	return &traceKeeper{rt: rt, retention: retention, kept: map[string]*keptTrace{}}
}

// sweepLocked notes traces that stopped and removes the ones past their
// retention.
func (k *traceKeeper) sweepLocked(now time.Time) {
	for id, kt := range k.kept {
		if kt.stoppedAt.IsZero() && !kt.t.Snapshot().Running {
			kt.stoppedAt = now
		}
		if !kt.stoppedAt.IsZero() && now.Sub(kt.stoppedAt) >= k.retention {
			k.rt.RemoveTrace(id)
			delete(k.kept, id)
		}
	}
	k.armLocked()
}

// armLocked keeps a timer running while traces are kept, so that traces
// nobody reads again are still removed.
func (k *traceKeeper) armLocked() {
	if len(k.kept) == 0 || k.timer != nil || k.stopped {
		return
	}
	k.timer = time.AfterFunc(max(k.retention/4, time.Millisecond), func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		k.timer = nil
		k.sweepLocked(time.Now())
	})
}

// admit makes room for a trace of maxEvents, or says why there is none.
func (k *traceKeeper) admit(maxEvents int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sweepLocked(time.Now())
	for {
		total := 0
		for _, kt := range k.kept {
			total += kt.maxEvents
		}
		if len(k.kept) < MaxTraces && total+maxEvents <= MaxTraceEvents {
			return nil
		}
		var oldest *keptTrace
		var oldestID string
		for id, kt := range k.kept {
			if !kt.stoppedAt.IsZero() && (oldest == nil || kt.stoppedAt.Before(oldest.stoppedAt)) {
				oldest, oldestID = kt, id
			}
		}
		if oldest == nil {
			return codedErr(CodeConflict, "this node keeps %d traces holding up to %d events, all running; the limits are %d traces and %d events: stop one first",
				len(k.kept), total, MaxTraces, MaxTraceEvents)
		}
		k.rt.RemoveTrace(oldestID)
		delete(k.kept, oldestID)
	}
}

func (k *traceKeeper) add(t *process.Trace, maxEvents int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kept[t.ID] = &keptTrace{t: t, started: t.Started, maxEvents: maxEvents}
	k.armLocked()
}

// expiresAt is when a stopped trace will be removed (zero while it runs).
func (k *traceKeeper) expiresAt(id string) time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sweepLocked(time.Now())
	if kt, ok := k.kept[id]; ok && !kt.stoppedAt.IsZero() {
		return kt.stoppedAt.Add(k.retention)
	}
	return time.Time{}
}

// TraceSummary is a trace in a list: what it records, not its events.
type TraceSummary struct {
	ID          string      `json:"trace_id"`
	PID         process.PID `json:"pid"`
	Node        string      `json:"node"`
	StartedAt   time.Time   `json:"started_at"`
	Running     bool        `json:"running"`
	StopReason  string      `json:"stop_reason,omitempty"`
	MaxEvents   int         `json:"max_events"`
	DurationMS  float64     `json:"duration_ms"`
	Events      int         `json:"event_count"`
	FilteredOut int         `json:"filtered_out"`
	ExpiresAt   *time.Time  `json:"expires_at,omitempty" doc:"when a stopped trace will be removed"`
}

func (k *traceKeeper) list(nodeName string) []TraceSummary {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sweepLocked(time.Now())
	out := make([]TraceSummary, 0, len(k.kept))
	for id, kt := range k.kept {
		s := kt.t.Snapshot()
		ts := TraceSummary{ID: TraceID(id, nodeName), PID: s.PID, Node: nodeName, StartedAt: s.Started, Running: s.Running,
			StopReason: s.StopReason, MaxEvents: s.MaxEvents, DurationMS: periodMS(s.Duration), Events: len(s.Events), FilteredOut: s.Filtered}
		if !kt.stoppedAt.IsZero() {
			e := kt.stoppedAt.Add(k.retention)
			ts.ExpiresAt = &e
		}
		out = append(out, ts)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out
}

func (h *handlers) traceList(_ context.Context, _ string, _ []byte) (any, error) {
	return h.traces.list(h.n.Name()), nil
}

// TraceList is the traces of the nodes that answered, oldest first, and
// the nodes that did not.
type TraceList struct {
	Traces      []TraceSummary
	Unreachable map[string]string
}

// ListTraces lists the traces kept by every up node.
func ListTraces(ctx context.Context, n *node.Node) TraceList {
	got, failed := Fanout[[]TraceSummary](ctx, n, UpNodes(n), reqTraceList, struct{}{})
	out := TraceList{Traces: []TraceSummary{}, Unreachable: failed}
	for _, l := range got {
		out.Traces = append(out.Traces, l...)
	}
	sort.Slice(out.Traces, func(i, j int) bool {
		if !out.Traces[i].StartedAt.Equal(out.Traces[j].StartedAt) {
			return out.Traces[i].StartedAt.Before(out.Traces[j].StartedAt)
		}
		return out.Traces[i].ID < out.Traces[j].ID
	})
	return out
}
