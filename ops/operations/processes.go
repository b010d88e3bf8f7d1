package operations

import (
	"context"

	"github.com/arsenal-go/arsenal/inspect"
	"github.com/arsenal-go/arsenal/ops"
)

// ProcessList is the answer of cluster.processes.
type ProcessList struct {
	Processes []inspect.Process `json:"processes"`
	Total     int               `json:"total" doc:"every matching process on the nodes that answered, not only this page"`
}

func processes(env *Env) ops.Operation {
	return ops.Operation{
		Name: "cluster.processes", Category: "process",
		Summary:     "Every process on every node, filtered, sorted and paged, with the true total",
		Description: "Asks all nodes (or one) in parallel, one request per node; each node filters and sorts its own processes and returns the first offset+limit, and the pages are merged. Nodes that did not answer are listed in meta.unreachable_nodes.",
		Method:      "GET", Path: "/api/v1/cluster/processes",
		Response: ProcessList{},
		Params: []ops.Param{
			{Name: "node", Type: ops.TypeNode, In: ops.InQuery, Description: "only this node"},
			{Name: "behaviour", Type: ops.TypeString, In: ops.InQuery, Max: f(200), Description: "substring of the behaviour name (e.g. supervisor), case-insensitive"},
			{Name: "name", Type: ops.TypeString, In: ops.InQuery, Max: f(200), Description: "regular expression on the registered name"},
			{Name: "status", Type: ops.TypeEnum, In: ops.InQuery, Enum: []string{"running", "waiting", "exiting"}},
			{Name: "min_mailbox", Type: ops.TypeInt, In: ops.InQuery, Default: 0, Min: f(0), Description: "only processes with at least this many queued messages"},
			{Name: "sort", Type: ops.TypeEnum, In: ops.InQuery, Enum: []string{"pid", "mailbox", "messages", "restarts", "age"}, Default: "pid", Description: "mailbox, messages and restarts sort largest first, age oldest first"},
			{Name: "limit", Type: ops.TypeInt, In: ops.InQuery, Default: 100, Min: f(1), Max: f(10000)},
			{Name: "offset", Type: ops.TypeInt, In: ops.InQuery, Default: 0, Min: f(0), Max: f(1000000)},
			{Name: "include_details", Type: ops.TypeBool, In: ops.InQuery, Default: false, Description: "add links, monitors, parent and current call"},
		},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			p := req.Params
			nodes, err := nodesParam(env.Node, req)
			if err != nil {
				return nil, err
			}
			l, err := inspect.ListProcesses(ctx, env.Node, nodes, inspect.Filter{
				Behaviour: p.String("behaviour"), NamePattern: p.String("name"), Status: p.String("status"),
				MinMailbox: p.Int("min_mailbox"), Sort: p.String("sort"), Limit: p.Int("limit"), Offset: p.Int("offset"),
				Details: p.Bool("include_details"),
			})
			if err != nil {
				return nil, err
			}
			meta := unreachableMeta(env, !p.Has("node"), l.Unreachable)
			meta["total"] = l.Total
			meta["nodes_queried"] = l.Nodes
			meta["limit"], meta["offset"] = p.Int("limit"), p.Int("offset")
			procs := l.Processes
			if procs == nil {
				procs = []inspect.Process{}
			}
			return &ops.Result{Data: ProcessList{Processes: procs, Total: l.Total}, Meta: meta}, nil
		},
	}
}
