package operations

import (
	"context"
	"fmt"

	"github.com/arsenal-go/arsenal/inspect"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/ops"
	"github.com/arsenal-go/arsenal/process"
)

// nodesParam returns the optional "node" parameter as a node list (nil:
// every node), checked to be an up member.
func nodesParam(n *node.Node, req *ops.Request) ([]string, error) {
	if !req.Params.Has("node") {
		return nil, nil
	}
	name := req.Params.String("node")
	if err := knownNode(n, name); err != nil {
		return nil, err
	}
	return []string{name}, nil
}

// knownNode fails with 404 for a node that is not a member and 503 for one
// that is not up.
func knownNode(n *node.Node, name string) error {
	for _, m := range n.Cluster().Members() {
		if m.Name == name {
			if !m.Status.Up() {
				return ops.NewError(503, "node_unreachable", fmt.Sprintf("node %s is %s", name, m.Status))
			}
			return nil
		}
	}
	return ops.NotFound(fmt.Sprintf("no node %s in the cluster", name))
}

// SupervisionTrees is the answer of cluster.supervision_trees.
type SupervisionTrees struct {
	Nodes []inspect.NodeTrees `json:"nodes"`
}

// SupervisorList is the answer of supervisors.list.
type SupervisorList struct {
	Supervisors []SupervisorEntry `json:"supervisors"`
	Total       int               `json:"total"`
}

func supervisionTrees(env *Env) ops.Operation {
	return ops.Operation{
		Name: "cluster.supervision_trees", Category: "supervisor",
		Summary: "Every supervision tree on every node, with children, real strategies and restart counts",
		Method:  "GET", Path: "/api/v1/cluster/supervision-trees",
		Response: SupervisionTrees{},
		Params: []ops.Param{
			{Name: "node", Type: ops.TypeNode, In: ops.InQuery, Description: "only this node"},
			{Name: "max_depth", Type: ops.TypeInt, In: ops.InQuery, Default: 0, Min: f(0), Max: f(64), Description: "levels of supervisors to descend (0: all)"},
		},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			nodes, err := nodesParam(env.Node, req)
			if err != nil {
				return nil, err
			}
			trees, failed := inspect.Trees(ctx, env.Node, nodes, req.Params.Int("max_depth"))
			total := 0
			for _, t := range trees {
				total += len(t.Trees)
			}
			meta := unreachableMeta(env, !req.Params.Has("node"), failed)
			meta["total_trees"] = total
			if trees == nil {
				trees = []inspect.NodeTrees{}
			}
			return &ops.Result{Data: SupervisionTrees{Nodes: trees}, Meta: meta}, nil
		},
	}
}

// SupervisorEntry is one supervisor in supervisors.list.
type SupervisorEntry struct {
	Node          string      `json:"node"`
	PID           process.PID `json:"pid"`
	Name          string      `json:"name,omitempty"`
	Strategy      string      `json:"strategy"`
	Children      int         `json:"children"`
	ActiveWorkers int         `json:"active_children"`
	TotalRestarts int         `json:"total_restarts"`
	Depth         int         `json:"depth"`
}

func flatten(nodeName string, t inspect.Tree, depth int, out *[]SupervisorEntry) {
	active := 0
	for _, c := range t.Children {
		if !c.PID.IsZero() {
			active++
		}
	}
	*out = append(*out, SupervisorEntry{Node: nodeName, PID: t.PID, Name: t.Name, Strategy: t.Strategy,
		Children: len(t.Children), ActiveWorkers: active, TotalRestarts: t.TotalRestarts, Depth: depth})
	for _, c := range t.Children {
		if c.Tree != nil {
			flatten(nodeName, *c.Tree, depth+1, out)
		}
	}
}

func supervisors(env *Env) ops.Operation {
	return ops.Operation{
		Name: "supervisors.list", Category: "supervisor",
		Summary: "Supervisors on every node, paged",
		Method:  "GET", Path: "/api/v1/supervisors",
		Response: SupervisorList{},
		Params: []ops.Param{
			{Name: "node", Type: ops.TypeNode, In: ops.InQuery, Description: "only this node"},
			{Name: "page", Type: ops.TypeInt, In: ops.InQuery, Default: 1, Min: f(1), Max: f(100000)},
			{Name: "per_page", Type: ops.TypeInt, In: ops.InQuery, Default: 50, Min: f(1), Max: f(100)},
		},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			nodes, err := nodesParam(env.Node, req)
			if err != nil {
				return nil, err
			}
			trees, failed := inspect.Trees(ctx, env.Node, nodes, 0)
			all := []SupervisorEntry{}
			for _, nt := range trees {
				for _, t := range nt.Trees {
					flatten(nt.Node, t, 0, &all)
				}
			}
			page, per := req.Params.Int("page"), req.Params.Int("per_page")
			from := min((page-1)*per, len(all))
			to := min(from+per, len(all))
			meta := unreachableMeta(env, !req.Params.Has("node"), failed)
			meta["total"], meta["page"], meta["per_page"] = len(all), page, per
			return &ops.Result{Data: SupervisorList{Supervisors: all[from:to], Total: len(all)}, Meta: meta}, nil
		},
	}
}
