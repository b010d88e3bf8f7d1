package inspect

import (
	"context"
	"time"

	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/supervisor"
)

// Tree is a supervisor and its children, recursively.
type Tree struct {
	PID           process.PID `json:"pid"`
	Name          string      `json:"name,omitempty"`
	Strategy      string      `json:"strategy"`
	MaxRestarts   int         `json:"max_restarts"`
	PeriodMS      float64     `json:"period_ms"` // the restart intensity window
	TotalRestarts int         `json:"total_restarts"`
	Children      []TreeChild `json:"children"`
	Truncated     bool        `json:"truncated,omitempty"` // max_depth reached below this supervisor
}

// TreeChild is one child of a supervisor.
type TreeChild struct {
	ID         string                 `json:"id"`
	PID        process.PID            `json:"pid,omitzero"`
	Type       supervisor.ChildType   `json:"type"`
	Restart    supervisor.RestartType `json:"restart"`
	ShutdownMS float64                `json:"shutdown_ms"` // how long the supervisor waits for it to stop, then kills it
	State      string                 `json:"state" enum:"running,restarting,stopped"`
	Restarts   int                    `json:"restarts"`
	Name       string                 `json:"name,omitempty"`
	Behaviour  string                 `json:"behaviour,omitempty"`
	MailboxLen int                    `json:"mailbox_len"`
	Tree       *Tree                  `json:"tree,omitempty"` // for child supervisors
}

// NodeTrees is one node's supervision trees.
type NodeTrees struct {
	Node  string `json:"node"`
	Trees []Tree `json:"trees"`
}

type treesReq struct {
	MaxDepth int `cbor:"1,keyasint"`
}

// LocalTrees describes every root supervision tree of rt: supervisors whose
// parent is not a supervisor, down to maxDepth levels (0: no limit).
func LocalTrees(ctx context.Context, rt *process.Runtime, maxDepth int) NodeTrees {
	out := NodeTrees{Node: rt.Node(), Trees: []Tree{}}
	infos := rt.Processes()
	byPID := make(map[process.PID]process.Info, len(infos))
	for _, in := range infos {
		byPID[in.PID] = in
	}
	for _, in := range infos {
		if !in.Supervisor {
			continue
		}
		if p, ok := byPID[in.Parent]; ok && p.Supervisor {
			continue
		}
		if t, ok := describe(ctx, rt, in, byPID, 1, maxDepth); ok {
			out.Trees = append(out.Trees, t)
		}
	}
	return out
}

func describe(ctx context.Context, rt *process.Runtime, in process.Info, byPID map[process.PID]process.Info, depth, maxDepth int) (Tree, bool) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	d, err := supervisor.Describe(cctx, rt, in.PID)
	if err != nil {
		return Tree{}, false // exited meanwhile, or too busy to answer
	}
	t := Tree{PID: in.PID, Name: in.Name, Strategy: string(d.Strategy), MaxRestarts: d.MaxRestarts,
		PeriodMS: periodMS(d.Period), TotalRestarts: d.TotalRestarts, Children: []TreeChild{}}
	for _, c := range d.Children {
		tc := TreeChild{ID: c.ID, PID: c.PID, Type: c.Type, Restart: c.Restart, ShutdownMS: Millis(c.Shutdown), State: c.State, Restarts: c.Restarts}
		if ci, ok := byPID[c.PID]; ok {
			tc.Name, tc.Behaviour, tc.MailboxLen = ci.Name, ci.Behaviour, ci.MailboxLen
			if c.Type == supervisor.SupervisorType && !c.PID.IsZero() {
				if maxDepth > 0 && depth >= maxDepth {
					t.Truncated = true
				} else if sub, ok := describe(ctx, rt, ci, byPID, depth+1, maxDepth); ok {
					tc.Tree = &sub
				}
			}
		}
		t.Children = append(t.Children, tc)
	}
	return t, true
}

func (h *handlers) trees(ctx context.Context, _ string, body []byte) (any, error) {
	r, err := decode[treesReq](body)
	if err != nil {
		return nil, err
	}
	return LocalTrees(ctx, h.n.Runtime(), r.MaxDepth), nil
}

// Trees gathers the supervision trees of the given nodes (all up nodes
// when empty).
func Trees(ctx context.Context, n *node.Node, nodes []string, maxDepth int) ([]NodeTrees, map[string]string) {
	if len(nodes) == 0 {
		nodes = UpNodes(n)
	}
	got, failed := Fanout[NodeTrees](ctx, n, nodes, reqTrees, treesReq{MaxDepth: maxDepth})
	out := make([]NodeTrees, 0, len(got))
	for _, name := range nodes {
		if t, ok := got[name]; ok {
			out = append(out, t)
		}
	}
	return out, failed
}

// periodMS reads a supervisor's period (a Go duration string) as
// milliseconds; an unreadable one is 0.
func periodMS(s string) float64 {
	d, _ := time.ParseDuration(s)
	return Millis(d)
}
