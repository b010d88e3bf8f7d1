package operations

import (
	"context"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/inspect"
	"github.com/arsenal-go/arsenal/ops"
	"github.com/arsenal-go/arsenal/placement"
	"github.com/arsenal-go/arsenal/process"
)

// PlacementChild is a child of the distributed supervisor.
type PlacementChild struct {
	ID       string      `json:"id"`
	Kind     string      `json:"kind"`
	Name     string      `json:"name,omitempty"`
	Restart  string      `json:"restart" enum:"permanent,transient,temporary"`
	Node     string      `json:"node"`
	PID      process.PID `json:"pid,omitzero"`
	Status   string      `json:"status" enum:"running,starting,orphaned,stopped" doc:"as this node sees it"`
	Gen      uint64      `json:"gen" arsenal:"count"`
	Restarts uint64      `json:"starts" arsenal:"count"`
}

func wireChild(c placement.Child) PlacementChild {
	return PlacementChild{ID: c.ID, Kind: c.Kind, Name: c.Name, Restart: c.Restart, Node: c.Node, PID: c.PID,
		Status: c.Status, Gen: c.Gen, Restarts: c.Restarts}
}

// PlacementStatus is one node's split-brain decision.
type PlacementStatus struct {
	Node            string                  `json:"node"`
	Policy          string                  `json:"policy"`
	Strategy        string                  `json:"strategy"`
	Up              bool                    `json:"up" doc:"this side runs children"`
	Reason          string                  `json:"reason"`
	Pending         *placement.Decision     `json:"pending,omitempty" doc:"what the policy says now, until the view is stable"`
	DecidedAt       time.Time               `json:"decided_at"`
	StableForMS     float64                 `json:"stable_for_ms"`
	StableAfterMS   float64                 `json:"stable_after_ms"`
	RemovalMarginMS float64                 `json:"removal_margin_ms"`
	Partition       cluster.PartitionStatus `json:"partition"`
	LocalChildren   int                     `json:"local_children"`
	Leaving         bool                    `json:"leaving"`
}

func wireStatus(s placement.Status) PlacementStatus {
	return PlacementStatus{Node: s.Node, Policy: string(s.Policy), Strategy: string(s.Strategy), Up: s.Up, Reason: s.Reason,
		Pending: s.Pending, DecidedAt: s.DecidedAt, StableForMS: inspect.Millis(s.StableFor), StableAfterMS: inspect.Millis(s.StableAfter),
		RemovalMarginMS: inspect.Millis(s.RemovalMargin), Partition: s.Partition, LocalChildren: s.LocalChildren, Leaving: s.Leaving}
}

// PlacementView is the answer of cluster.placement.
type PlacementView struct {
	Children []PlacementChild           `json:"children"`
	Owners   map[string]int             `json:"owners" doc:"children per node"`
	Status   PlacementStatus            `json:"status"`
	Side     string                     `json:"side" enum:"up,down"`
	Nodes    map[string]PlacementStatus `json:"nodes,omitempty" doc:"only with include_nodes"`
}

// PlacementStopped is the answer of placement.stop.
type PlacementStopped struct {
	ID      string `json:"id"`
	Stopped bool   `json:"stopped"`
}

func placementOrUnavailable(env *Env) (*placement.Placement, error) {
	if env.Placement == nil {
		return nil, ops.Unavailable("this node runs without the distributed supervisor")
	}
	return env.Placement, nil
}

var childIDParam = ops.Param{Name: "id", Type: ops.TypeString, In: ops.InPath, Min: f(1), Max: f(255), Pattern: `^[A-Za-z0-9._:@-]+$`, Description: "child id"}

func clusterPlacement(env *Env) ops.Operation {
	return ops.Operation{
		Name: "cluster.placement", Category: "supervisor",
		Summary:     "Children of the distributed supervisor: where each runs, owners, the split-brain policy and which side this node is on",
		Description: "Children and owners come from this node's replica of the placement state. status is this node's split-brain decision (up: this side runs children). include_nodes asks every up node for its own decision, in parallel; nodes that did not answer are listed in meta.unreachable_nodes.",
		Method:      "GET", Path: "/api/v1/cluster/placement", Response: PlacementView{},
		Params: []ops.Param{
			{Name: "node", Type: ops.TypeNode, In: ops.InQuery, Description: "only children assigned to this node"},
			{Name: "include_nodes", Type: ops.TypeBool, In: ops.InQuery, Default: false, Description: "add every up node's split-brain decision"},
		},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			pl, err := placementOrUnavailable(env)
			if err != nil {
				return nil, err
			}
			p := req.Params
			children := []PlacementChild{}
			owners := map[string]int{}
			for _, c := range pl.Children() {
				owners[c.Node]++
				if p.Has("node") && c.Node != p.String("node") {
					continue
				}
				children = append(children, wireChild(c))
			}
			st := pl.Status()
			data := PlacementView{Children: children, Owners: owners, Status: wireStatus(st), Side: side(st.Up)}
			meta := map[string]any{"answered_by": env.Node.Name(), "children": len(children)}
			if p.Bool("include_nodes") {
				answers, failed := inspect.Fanout[placement.Status](ctx, env.Node, inspect.UpNodes(env.Node), "placement.status", nil)
				data.Nodes = map[string]PlacementStatus{}
				for k, v := range answers {
					data.Nodes[k] = wireStatus(v)
				}
				for k, v := range unreachableMeta(env, true, failed) {
					meta[k] = v
				}
			}
			return &ops.Result{Data: data, Meta: meta}, nil
		},
	}
}

func side(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

func placementStart(env *Env) ops.Operation {
	return ops.Operation{
		Name: "placement.start", Category: "supervisor",
		Summary:     "Start a child of the distributed supervisor on the node its strategy picks",
		Description: "The child is (id, kind, args): kind names a factory every node registered with placement.RegisterKind. Answers 503 on a side of a partition that is down by the split-brain policy, 409 if the id runs already.",
		Method:      "POST", Path: "/api/v1/cluster/placement/children",
		Role: ops.RoleOperator,
		Params: []ops.Param{
			{Name: "id", Type: ops.TypeString, In: ops.InBody, Required: true, Min: f(1), Max: f(255), Pattern: childIDParam.Pattern},
			{Name: "kind", Type: ops.TypeString, In: ops.InBody, Required: true, Min: f(1), Max: f(200)},
			{Name: "args", Type: ops.TypeString, In: ops.InBody, Max: f(65536), Payload: true, Description: "the factory's argument, as text"},
			{Name: "name", Type: ops.TypeString, In: ops.InBody, Max: f(255), Description: "register the child under this cluster-wide name"},
			{Name: "restart", Type: ops.TypeEnum, In: ops.InBody, Enum: []string{placement.Permanent, placement.Transient, placement.Temporary}, Default: placement.Permanent},
			{Name: "strategy", Type: ops.TypeEnum, In: ops.InBody, Enum: []string{"rendezvous", "round_robin", "least_loaded", "local"}, Description: "default: the node's"},
		},
		Timeout: 15 * time.Second, Response: PlacementChild{},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			pl, err := placementOrUnavailable(env)
			if err != nil {
				return nil, err
			}
			p := req.Params
			c, err := pl.StartChild(ctx, placement.ChildSpec{
				ID: p.String("id"), Kind: p.String("kind"), Args: []byte(p.String("args")), Name: p.String("name"),
				Restart: p.String("restart"), Strategy: placement.Strategy(p.String("strategy")),
			})
			if err != nil {
				return nil, err
			}
			return &ops.Result{Data: wireChild(c), Meta: map[string]any{"target_node": c.Node}}, nil
		},
	}
}

func placementStop(env *Env) ops.Operation {
	return ops.Operation{
		Name: "placement.stop", Category: "supervisor",
		Summary: "Stop a child of the distributed supervisor wherever it runs, and forget it",
		Method:  "DELETE", Path: "/api/v1/cluster/placement/children/{id}",
		Dangerous: true, Role: ops.RoleOperator, Idempotent: true,
		Params: []ops.Param{childIDParam}, Response: PlacementStopped{},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			pl, err := placementOrUnavailable(env)
			if err != nil {
				return nil, err
			}
			id := req.Params.String("id")
			if err := pl.StopChild(ctx, id); err != nil {
				return nil, err
			}
			return &ops.Result{Data: PlacementStopped{ID: id, Stopped: true}}, nil
		},
	}
}
