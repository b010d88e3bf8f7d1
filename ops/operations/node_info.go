package operations

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/arsenal-go/arsenal/inspect"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/ops"
)

// NodeInfo is the answer of cluster.node_info.
type NodeInfo struct {
	Node        string      `json:"node"`
	Status      string      `json:"status" enum:"alive,suspect"`
	Incarnation uint64      `json:"incarnation,string"`
	Runtime     NodeFacts   `json:"runtime"`
	Network     NodeNetwork `json:"network"`
	Build       *BuildInfo  `json:"build,omitempty" doc:"only for the node that answers"`
	// Only with include_processes.
	Processes    *[]inspect.Process `json:"processes,omitempty"`
	ProcessTotal *int               `json:"process_total,omitempty"`
}

// NodeNetwork is a node's addresses and links.
type NodeNetwork struct {
	NodeAddr          string `json:"node_addr"`
	HTTPAddr          string `json:"http_addr"`
	SecretFingerprint string `json:"secret_fingerprint"`
	Links             []Link `json:"links,omitempty" doc:"this node's links, when it is the node asked about"`
	LinkFromHere      *Link  `json:"link_from_here,omitempty" doc:"the link from the answering node to the node asked about"`
}

// BuildInfo is the binary's build.
type BuildInfo struct {
	Path        string `json:"path"`
	MainVersion string `json:"main_version"`
	GoVersion   string `json:"go_version"`
}

func nodeInfo(env *Env) ops.Operation {
	return ops.Operation{
		Name: "cluster.node_info", Category: "cluster",
		Summary: "One node's runtime (Go version, GOMAXPROCS, goroutines, heap, GC, uptime, build), network (address, peers, link RTT, secret fingerprint) and process summary",
		Method:  "GET", Path: "/api/v1/cluster/nodes/{node}/info",
		Response: NodeInfo{},
		Params: []ops.Param{
			{Name: "node", Type: ops.TypeNode, In: ops.InPath, Description: "node name, name@host"},
			{Name: "include_processes", Type: ops.TypeBool, In: ops.InQuery, Default: false, Description: "add the node's processes"},
			{Name: "process_limit", Type: ops.TypeInt, In: ops.InQuery, Default: 50, Min: f(1), Max: f(500), Description: "how many processes to list"},
		},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			n := env.Node
			name := req.Params.String("node")
			var member *struct {
				Status, NodeAddr, HTTPAddr string
				Incarnation                uint64
			}
			for _, m := range n.Cluster().Members() {
				if m.Name == name {
					member = &struct {
						Status, NodeAddr, HTTPAddr string
						Incarnation                uint64
					}{string(m.Status), m.NodeAddr, m.HTTPAddr, m.Incarnation}
				}
			}
			if member == nil {
				return nil, ops.NotFound(fmt.Sprintf("no node %s in the cluster", name))
			}
			if member.Status == "dead" || member.Status == "left" {
				return nil, ops.NewError(503, "node_unreachable", fmt.Sprintf("node %s is %s", name, member.Status))
			}
			var facts node.Facts
			if err := n.Request(ctx, name, node.RequestFacts, struct{}{}, &facts); err != nil {
				return nil, err
			}
			data := NodeInfo{
				Node: name, Status: member.Status, Incarnation: member.Incarnation,
				Runtime: wireFacts(facts),
				Network: NodeNetwork{
					NodeAddr: member.NodeAddr, HTTPAddr: member.HTTPAddr,
					SecretFingerprint: n.SecretFingerprint(),
				},
			}
			if name == n.Name() {
				links := []Link{}
				for _, l := range n.Links() {
					links = append(links, wireLink(l))
				}
				data.Network.Links = links
				if bi, ok := debug.ReadBuildInfo(); ok {
					data.Build = &BuildInfo{Path: bi.Path, MainVersion: bi.Main.Version, GoVersion: bi.GoVersion}
				}
			} else {
				for _, l := range n.Links() {
					if l.Node == name {
						wl := wireLink(l)
						data.Network.LinkFromHere = &wl
					}
				}
			}
			if req.Params.Bool("include_processes") {
				l, err := inspect.ListProcesses(ctx, n, []string{name}, inspect.Filter{Limit: req.Params.Int("process_limit")})
				if err != nil {
					return nil, err
				}
				if why, bad := l.Unreachable[name]; bad {
					return nil, ops.NewError(503, "node_unreachable", why)
				}
				procs := l.Processes
				if procs == nil {
					procs = []inspect.Process{}
				}
				total := l.Total
				data.Processes, data.ProcessTotal = &procs, &total
			}
			return &ops.Result{Data: data, Meta: map[string]any{"status": member.Status}}, nil
		},
	}
}
