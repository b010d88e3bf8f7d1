package operations

import (
	"time"

	"context"

	"github.com/arsenal-go/arsenal/inspect"
	"github.com/arsenal-go/arsenal/ops"
)

var pidParam = ops.Param{Name: "pid", Type: ops.TypePID, In: ops.InPath, Description: "process id, ID.INCARNATION@NODE"}

func processInfo(env *Env) ops.Operation {
	return ops.Operation{
		Name: "process.info", Category: "process",
		Summary: "One process on any node: status, mailbox, messages in and out, behaviour, name, parent, links, monitors, restarts, start time, current call",
		Method:  "GET", Path: "/api/v1/processes/{pid}/info",
		Params: []ops.Param{pidParam}, Response: inspect.ProcessInfo{},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			pid := req.Params.PID("pid")
			in, err := inspect.Info(ctx, env.Node, pid)
			if err != nil {
				return nil, err
			}
			return &ops.Result{Data: inspect.NewProcessInfo(in), Meta: map[string]any{"target_node": pid.Node}}, nil
		},
	}
}

func processKill(env *Env) ops.Operation {
	return ops.Operation{
		Name: "process.kill", Category: "process",
		Summary:     "Send an exit signal to a process on any node and wait for it to exit",
		Description: "System processes and supervisors are protected (403) unless force is set. The answer says whether the process exited within the wait, and with which reason. Reason kill cannot be trapped; shutdown and other reasons can be.",
		Method:      "DELETE", Path: "/api/v1/processes/{pid}",
		Dangerous: true, Role: ops.RoleOperator, Response: inspect.KillResult{},
		Timeout: 35 * time.Second, // wait is at most 30 s
		Params: []ops.Param{
			pidParam,
			{Name: "reason", Type: ops.TypeString, In: ops.InQuery, Default: "kill", Max: f(200), Pattern: `^[A-Za-z0-9_.:-]+( [^\x00-\x1f]*)?$`, Description: "kill (untrappable), shutdown, normal, or your own reason"},
			{Name: "force", Type: ops.TypeBool, In: ops.InQuery, Default: false, Description: "allow killing system processes and supervisors"},
			{Name: "wait", Type: ops.TypeDuration, In: ops.InQuery, Default: 5 * time.Second, MinDuration: time.Millisecond, MaxDuration: 30 * time.Second, Description: "how long to wait for the exit"},
		},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			p := req.Params
			res, err := inspect.Kill(ctx, env.Node, inspect.KillRequest{PID: p.PID("pid"), Reason: p.String("reason"), Force: p.Bool("force"), Wait: p.Duration("wait")})
			if err != nil {
				return nil, err
			}
			return &ops.Result{Data: res, Meta: map[string]any{"target_node": res.PID.Node}}, nil
		},
	}
}

func processSend(env *Env) ops.Operation {
	return ops.Operation{
		Name: "process.send", Category: "process",
		Summary: "Send, cast or call a message to a process on any node",
		Method:  "POST", Path: "/api/v1/processes/{pid}/message",
		Role: ops.RoleOperator,
		Params: []ops.Param{
			pidParam,
			{Name: "message", Type: ops.TypeObject, In: ops.InBody, Required: true, Description: "the message, a JSON object (delivered as map[string]any)"},
			{Name: "mode", Type: ops.TypeEnum, In: ops.InBody, Enum: []string{"send", "cast", "call"}, Default: "send"},
			{Name: "call_timeout", Type: ops.TypeDuration, In: ops.InBody, Default: 5 * time.Second, MinDuration: time.Millisecond, MaxDuration: 60 * time.Second, Description: "how long a call waits for the reply"},
		},
		Timeout: 65 * time.Second, Response: inspect.SendResult{},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			p := req.Params
			res, err := inspect.Send(ctx, env.Node, inspect.SendRequest{PID: p.PID("pid"), Mode: p.String("mode"), Message: p.Object("message"), Timeout: p.Duration("call_timeout")})
			if err != nil {
				return nil, err
			}
			return &ops.Result{Data: res, Meta: map[string]any{"target_node": res.PID.Node}}, nil
		},
	}
}

func processRestart(env *Env) ops.Operation {
	return ops.Operation{
		Name: "process.restart", Category: "process",
		Summary: "Restart a process through its supervisor (on any node)",
		Method:  "POST", Path: "/api/v1/processes/{pid}/restart",
		Dangerous: true, Role: ops.RoleOperator, Response: inspect.RestartResult{},
		Params: []ops.Param{pidParam},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			res, err := inspect.Restart(ctx, env.Node, req.Params.PID("pid"))
			if err != nil {
				return nil, err
			}
			return &ops.Result{Data: res, Meta: map[string]any{"target_node": res.OldPID.Node}}, nil
		},
	}
}
