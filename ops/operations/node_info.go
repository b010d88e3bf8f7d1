package operations

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/arsenal-go/arsenal/inspect"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/ops"
)

func nodeInfo(env *Env) ops.Operation {
	return ops.Operation{
		Name: "cluster.node_info", Category: "cluster",
		Summary: "One node's runtime (Go version, GOMAXPROCS, goroutines, heap, GC, uptime, build), network (address, peers, link RTT, secret fingerprint) and process summary",
		Method:  "GET", Path: "/api/v1/cluster/nodes/{node}/info",
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
			data := map[string]any{
				"node": name, "status": member.Status, "incarnation": member.Incarnation,
				"runtime": facts,
				"network": map[string]any{
					"node_addr": member.NodeAddr, "http_addr": member.HTTPAddr,
					"secret_fingerprint": n.SecretFingerprint(),
				},
			}
			if name == n.Name() {
				data["network"].(map[string]any)["links"] = n.Links()
				if bi, ok := debug.ReadBuildInfo(); ok {
					data["build"] = map[string]any{"path": bi.Path, "main_version": bi.Main.Version, "go_version": bi.GoVersion}
				}
			} else {
				for _, l := range n.Links() {
					if l.Node == name {
						data["network"].(map[string]any)["link_from_here"] = l
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
				data["processes"] = l.Processes
				data["process_total"] = l.Total
			}
			return &ops.Result{Data: data, Meta: map[string]any{"status": member.Status}}, nil
		},
	}
}
