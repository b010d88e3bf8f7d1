package operations

import (
	"time"

	"context"

	"github.com/arsenal-go/arsenal/inspect"
	"github.com/arsenal-go/arsenal/ops"
)

var traceIDParam = ops.Param{Name: "id", Type: ops.TypeString, In: ops.InPath, Pattern: `^[0-9a-f]{16}@[A-Za-z0-9._@:\[\]-]+$`, Description: "trace id, as returned by process.trace"}

func traceStart(env *Env) ops.Operation {
	return ops.Operation{
		Name: "process.trace", Category: "tracing",
		Summary:     "Record a process's messages in and out, bounded by duration and count",
		Description: "Returns a trace id; read the events with GET /api/v1/traces/{id} while it runs or after. The trace stops by itself at its bounds.",
		Method:      "POST", Path: "/api/v1/processes/{pid}/trace",
		Role: ops.RoleOperator, Response: inspect.TraceStarted{},
		Params: []ops.Param{
			pidParam,
			{Name: "duration", Type: ops.TypeDuration, In: ops.InBody, Default: 60 * time.Second, MinDuration: time.Millisecond, MaxDuration: 3600 * time.Second},
			{Name: "max_events", Type: ops.TypeInt, In: ops.InBody, Default: 1000, Min: f(1), Max: f(100000)},
			{Name: "filter", Type: ops.TypeString, In: ops.InBody, Max: f(200), Description: "keep only messages whose Go type name contains this"},
		},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			p := req.Params
			res, err := inspect.StartTrace(ctx, env.Node, inspect.TraceRequest{PID: p.PID("pid"), Duration: p.Duration("duration"), MaxEvents: p.Int("max_events"), Filter: p.String("filter")})
			if err != nil {
				return nil, err
			}
			return &ops.Result{Data: res, Meta: map[string]any{"target_node": res.Node}}, nil
		},
	}
}

func traceGet(env *Env) ops.Operation {
	return ops.Operation{
		Name: "trace.get", Category: "tracing",
		Summary:   "Read a trace's events (also while it runs)",
		Sensitive: true,
		Method:    "GET", Path: "/api/v1/traces/{id}",
		Params: []ops.Param{traceIDParam}, Response: inspect.Trace{},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			s, err := inspect.GetTrace(ctx, env.Node, req.Params.String("id"))
			if err != nil {
				return nil, err
			}
			return &ops.Result{Data: s, Meta: map[string]any{"events": len(s.Events), "running": s.Running}}, nil
		},
	}
}

func traceStop(env *Env) ops.Operation {
	return ops.Operation{
		Name: "trace.stop", Category: "tracing",
		Summary: "Stop a trace and return its events",
		Method:  "DELETE", Path: "/api/v1/traces/{id}",
		Role: ops.RoleOperator, Idempotent: true,
		Params: []ops.Param{traceIDParam}, Response: inspect.Trace{},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			s, err := inspect.StopTrace(ctx, env.Node, req.Params.String("id"))
			if err != nil {
				return nil, err
			}
			return &ops.Result{Data: s, Meta: map[string]any{"events": len(s.Events)}}, nil
		},
	}
}

// TraceList is the answer of trace.list.
type TraceList struct {
	Traces []inspect.TraceSummary `json:"traces"`
}

func traceList(env *Env) ops.Operation {
	return ops.Operation{
		Name: "trace.list", Category: "tracing",
		Summary:     "Traces kept on every node, running or stopped, without their events",
		Description: "A node keeps at most 32 traces holding at most 100 000 events together; a stopped trace is removed 10 minutes after it stopped (expires_at). Nodes that did not answer are listed in meta.unreachable_nodes.",
		Method:      "GET", Path: "/api/v1/traces",
		Response: TraceList{},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			l := inspect.ListTraces(ctx, env.Node)
			meta := unreachableMeta(env, true, l.Unreachable)
			meta["total"] = len(l.Traces)
			return &ops.Result{Data: TraceList{Traces: l.Traces}, Meta: meta}, nil
		},
	}
}
