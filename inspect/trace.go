package inspect

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
)

// TraceRequest starts a trace of one process.
type TraceRequest struct {
	PID       process.PID   `cbor:"1,keyasint"`
	Duration  time.Duration `cbor:"2,keyasint"`
	MaxEvents int           `cbor:"3,keyasint"`
	Filter    string        `cbor:"4,keyasint,omitempty"`
}

// TraceStarted identifies a running trace. Its ID names the node it runs
// on, so any node can route reads to it.
type TraceStarted struct {
	ID        string      `json:"trace_id"`
	PID       process.PID `json:"pid"`
	Node      string      `json:"node"`
	MaxEvents int         `json:"max_events"`
	// DurationMS is how long the trace records at most.
	DurationMS float64 `json:"duration_ms"`
}

// Trace is a trace as the operations API sends it, the same whether it
// was read, stopped or listed.
type Trace struct {
	ID          string               `json:"trace_id"`
	PID         process.PID          `json:"pid"`
	Node        string               `json:"node"`
	StartedAt   time.Time            `json:"started_at"`
	Running     bool                 `json:"running"`
	StopReason  string               `json:"stop_reason,omitempty"`
	MaxEvents   int                  `json:"max_events"`
	DurationMS  float64              `json:"duration_ms"`
	Events      []process.TraceEvent `json:"events"`
	FilteredOut int                  `json:"filtered_out"`
}

// NewTrace converts a snapshot taken on node nodeName (whose ID is
// already the cluster-wide trace id).
func NewTrace(s process.TraceSnapshot, nodeName string) Trace {
	d, _ := time.ParseDuration(s.Duration)
	return Trace{ID: s.ID, PID: s.PID, Node: nodeName, StartedAt: s.Started, Running: s.Running, StopReason: s.StopReason,
		MaxEvents: s.MaxEvents, DurationMS: Millis(d), Events: orEmpty(s.Events), FilteredOut: s.Filtered}
}

type traceIDReq struct {
	ID string `cbor:"1,keyasint"`
}

// TraceID joins a node-local trace id and its node.
func TraceID(local, nodeName string) string { return local + "@" + nodeName }

// SplitTraceID returns the local id and the node of a trace id.
func SplitTraceID(id string) (local, nodeName string, err error) {
	i := strings.IndexByte(id, '@')
	if i <= 0 || i == len(id)-1 {
		return "", "", codedErr(CodeBadRequest, "trace id %q: want LOCALID@NODE", id)
	}
	return id[:i], id[i+1:], nil
}

func (h *handlers) traceStart(_ context.Context, _ string, body []byte) (any, error) {
	r, err := decode[TraceRequest](body)
	if err != nil {
		return nil, err
	}
	maxEvents := r.MaxEvents
	if maxEvents <= 0 {
		maxEvents = 1000 // the runtime's default
	}
	if err := h.traces.admit(maxEvents); err != nil {
		return nil, err
	}
	t, err := h.n.Runtime().Trace(r.PID, process.TraceOptions{MaxEvents: r.MaxEvents, Duration: r.Duration, Filter: r.Filter})
	if err != nil {
		if !h.n.Runtime().Alive(r.PID) {
			return nil, codedErr(CodeNoProc, "no process %s on %s", r.PID, h.n.Name())
		}
		return nil, codedErr(CodeBadRequest, "%v", err)
	}
	h.traces.add(t, maxEvents)
	s := t.Snapshot()
	return TraceStarted{ID: TraceID(t.ID, h.n.Name()), PID: r.PID, Node: h.n.Name(), MaxEvents: s.MaxEvents, DurationMS: periodMS(s.Duration)}, nil
}

func (h *handlers) lookupTrace(body []byte) (*process.Trace, error) {
	r, err := decode[traceIDReq](body)
	if err != nil {
		return nil, err
	}
	local, _, err := SplitTraceID(r.ID)
	if err != nil {
		return nil, err
	}
	t, ok := h.n.Runtime().LookupTrace(local)
	if !ok {
		return nil, codedErr(CodeNotFound, "no trace %s on %s", r.ID, h.n.Name())
	}
	return t, nil
}

func (h *handlers) traceGet(_ context.Context, _ string, body []byte) (any, error) {
	t, err := h.lookupTrace(body)
	if err != nil {
		return nil, err
	}
	s := t.Snapshot()
	s.ID = TraceID(s.ID, h.n.Name())
	return s, nil
}

func (h *handlers) traceStop(_ context.Context, _ string, body []byte) (any, error) {
	t, err := h.lookupTrace(body)
	if err != nil {
		return nil, err
	}
	t.Stop()
	s := t.Snapshot()
	s.ID = TraceID(s.ID, h.n.Name())
	return s, nil
}

// StartTrace starts a trace of a process on any node.
func StartTrace(ctx context.Context, n *node.Node, r TraceRequest) (TraceStarted, error) {
	return ask[TraceStarted](ctx, n, r.PID, reqTrace, r)
}

func traceNode(n *node.Node, id string) (string, error) {
	_, nodeName, err := SplitTraceID(id)
	if err != nil {
		return "", err
	}
	if nodeName == n.Name() {
		return nodeName, nil
	}
	for _, m := range n.Cluster().Members() {
		if m.Name == nodeName {
			return nodeName, nil
		}
	}
	return "", &node.RequestError{Node: nodeName, Code: CodeNotFound, Message: fmt.Sprintf("trace %s: no node %s in the cluster", id, nodeName)}
}

// GetTrace reads a trace's events (also while it runs).
func GetTrace(ctx context.Context, n *node.Node, id string) (Trace, error) {
	var s process.TraceSnapshot
	target, err := traceNode(n, id)
	if err != nil {
		return Trace{}, err
	}
	if err := n.Request(ctx, target, reqTraceGet, traceIDReq{ID: id}, &s); err != nil {
		return Trace{}, err
	}
	return NewTrace(s, target), nil
}

// StopTrace stops a trace and returns its events.
func StopTrace(ctx context.Context, n *node.Node, id string) (Trace, error) {
	var s process.TraceSnapshot
	target, err := traceNode(n, id)
	if err != nil {
		return Trace{}, err
	}
	if err := n.Request(ctx, target, reqTraceStop, traceIDReq{ID: id}, &s); err != nil {
		return Trace{}, err
	}
	return NewTrace(s, target), nil
}
