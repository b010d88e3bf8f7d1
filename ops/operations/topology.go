package operations

import (
	"context"
	"time"

	"github.com/arsenal-go/arsenal/inspect"
	"github.com/arsenal-go/arsenal/ops"
)

type topologyNode struct {
	Name        string    `json:"name"`
	Status      string    `json:"status"`
	Incarnation uint64    `json:"incarnation"`
	NodeAddr    string    `json:"node_addr"`
	HTTPAddr    string    `json:"http_addr,omitempty"`
	Since       time.Time `json:"since"`
	Self        bool      `json:"self"`
}

type distribution struct {
	Count      int      `json:"count"`
	SamplePIDs []string `json:"sample_pids"`
}

func topology(env *Env) ops.Operation {
	return ops.Operation{
		Name: "cluster.topology", Category: "cluster",
		Summary:     "Nodes of the cluster with their status, this node, formation time, mode and partition status",
		Description: "The membership as this node sees it. Optionally the process distribution (count and a few sample PIDs per node, asked of every node) and each node's health facts (collected in the background).",
		Method:      "GET", Path: "/api/v1/cluster/topology",
		Params: []ops.Param{
			{Name: "include_processes", Type: ops.TypeBool, In: ops.InQuery, Default: false, Description: "add the process count and up to 5 sample PIDs per node"},
			{Name: "include_health", Type: ops.TypeBool, In: ops.InQuery, Default: true, Description: "add each node's last collected facts"},
		},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			n := env.Node
			top := n.Cluster().Topology()
			nodes := make([]topologyNode, 0, len(top.Nodes))
			var connected []string
			for _, m := range top.Nodes {
				nodes = append(nodes, topologyNode{Name: m.Name, Status: string(m.Status), Incarnation: m.Incarnation,
					NodeAddr: m.NodeAddr, HTTPAddr: m.HTTPAddr, Since: m.Since, Self: m.Name == n.Name()})
				if m.Status.Up() && m.Name != n.Name() {
					connected = append(connected, m.Name)
				}
			}
			data := map[string]any{
				"cluster_name": top.ClusterName, "current_node": top.Self, "nodes": nodes,
				"connected_nodes": nonNil(connected), "total_nodes": top.Members, "alive_nodes": top.Alive,
				"suspect_nodes": top.Suspect, "started_at": top.StartedAt, "formed_at": top.FormedAt,
				"mode": top.Mode, "partition_status": top.Partition,
			}
			meta := map[string]any{"cluster_size": top.Members, "mode": top.Mode}
			if req.Params.Bool("include_processes") {
				pages, failed := inspect.Distribution(ctx, n, 5)
				dist := map[string]distribution{}
				for name, p := range pages {
					d := distribution{Count: p.Total, SamplePIDs: []string{}}
					for _, e := range p.Entries {
						d.SamplePIDs = append(d.SamplePIDs, e.PID.String())
					}
					dist[name] = d
				}
				data["process_distribution"] = dist
				for k, v := range unreachableMeta(failed) {
					meta[k] = v
				}
			}
			if req.Params.Bool("include_health") {
				data["node_health"] = n.Facts()
			}
			return &ops.Result{Data: data, Meta: meta}, nil
		},
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
