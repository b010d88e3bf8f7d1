package operations

import (
	"context"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/inspect"
	"github.com/arsenal-go/arsenal/ops"
	"github.com/arsenal-go/arsenal/process"
)

// TopologyNode is one member as this node sees it.
type TopologyNode struct {
	Name        string    `json:"name"`
	Status      string    `json:"status" enum:"alive,suspect,dead,left"`
	Incarnation uint64    `json:"incarnation,string" doc:"changes on every restart of the node"`
	NodeAddr    string    `json:"node_addr"`
	HTTPAddr    string    `json:"http_addr,omitempty"`
	Since       time.Time `json:"since" doc:"when the status last changed in this node's view"`
	Self        bool      `json:"self"`
}

// Distribution is one node's process count and a few of its PIDs.
type Distribution struct {
	Count      int           `json:"count"`
	SamplePIDs []process.PID `json:"sample_pids"`
}

// Topology is the answer of cluster.topology.
type Topology struct {
	ClusterName    string                  `json:"cluster_name"`
	CurrentNode    string                  `json:"current_node"`
	Nodes          []TopologyNode          `json:"nodes"`
	ConnectedNodes []string                `json:"connected_nodes" doc:"the other members that are up"`
	TotalNodes     int                     `json:"total_nodes"`
	AliveNodes     int                     `json:"alive_nodes"`
	SuspectNodes   int                     `json:"suspect_nodes"`
	StartedAt      time.Time               `json:"started_at"`
	FormedAt       time.Time               `json:"formed_at"`
	Mode           string                  `json:"mode" enum:"single_node,multi_node,simulated"`
	Partition      cluster.PartitionStatus `json:"partition_status"`
	// Only with include_processes and include_health.
	Distribution map[string]Distribution `json:"process_distribution,omitempty"`
	NodeHealth   map[string]FactsEntry   `json:"node_health,omitempty"`
}

func topology(env *Env) ops.Operation {
	return ops.Operation{
		Name: "cluster.topology", Category: "cluster",
		Summary:     "Nodes of the cluster with their status, this node, formation time, mode and partition status",
		Description: "The membership as this node sees it. Optionally the process distribution (count and a few sample PIDs per node, asked of every node) and each node's health facts (collected in the background).",
		Method:      "GET", Path: "/api/v1/cluster/topology",
		Response: Topology{},
		Params: []ops.Param{
			{Name: "include_processes", Type: ops.TypeBool, In: ops.InQuery, Default: false, Description: "add the process count and up to 5 sample PIDs per node"},
			{Name: "include_health", Type: ops.TypeBool, In: ops.InQuery, Default: true, Description: "add each node's last collected facts"},
		},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			n := env.Node
			top := n.Cluster().Topology()
			data := topologyOf(env, top)
			meta := map[string]any{"cluster_size": top.Members, "mode": top.Mode}
			if req.Params.Bool("include_processes") {
				pages, failed := inspect.Distribution(ctx, n, 5)
				data.Distribution = map[string]Distribution{}
				for name, p := range pages {
					d := Distribution{Count: p.Total, SamplePIDs: []process.PID{}}
					for _, e := range p.Entries {
						d.SamplePIDs = append(d.SamplePIDs, e.PID)
					}
					data.Distribution[name] = d
				}
				for k, v := range unreachableMeta(env, true, failed) {
					meta[k] = v
				}
			}
			if req.Params.Bool("include_health") {
				data.NodeHealth = wireFactsMap(n.Facts())
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

// topologyOf is the wire form of a topology snapshot.
func topologyOf(env *Env, top cluster.Topology) Topology {
	nodes := make([]TopologyNode, 0, len(top.Nodes))
	connected := []string{}
	for _, m := range top.Nodes {
		nodes = append(nodes, TopologyNode{Name: m.Name, Status: string(m.Status), Incarnation: m.Incarnation,
			NodeAddr: m.NodeAddr, HTTPAddr: m.HTTPAddr, Since: m.Since, Self: m.Name == env.Node.Name()})
		if m.Status.Up() && m.Name != env.Node.Name() {
			connected = append(connected, m.Name)
		}
	}
	return Topology{
		ClusterName: top.ClusterName, CurrentNode: top.Self, Nodes: nodes,
		ConnectedNodes: connected, TotalNodes: top.Members, AliveNodes: top.Alive,
		SuspectNodes: top.Suspect, StartedAt: top.StartedAt, FormedAt: top.FormedAt,
		Mode: string(top.Mode), Partition: top.Partition,
	}
}
