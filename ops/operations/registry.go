package operations

import (
	"context"
	"strings"

	"github.com/arsenal-go/arsenal/ops"
	"github.com/arsenal-go/arsenal/registry"
)

// registryOrUnavailable returns the node's registry, or a 503 when the
// node runs without one.
func registryOrUnavailable(env *Env) (*registry.Registry, error) {
	if env.Registry == nil {
		return nil, ops.Unavailable("this node runs without the cluster registry")
	}
	return env.Registry, nil
}

// clusterRegistry is the original's HordeRegistryInspect: the cluster-wide
// names, from this node's replica (the registry is replicated to every
// node, so one node answers for the cluster; see docs/REGISTRY.md for
// what a partition does to the answer).
func clusterRegistry(env *Env) ops.Operation {
	return ops.Operation{
		Name: "cluster.registry", Category: "registry",
		Summary:     "Cluster-wide registered names with their PIDs, nodes and metadata, filtered",
		Description: "Answered from this node's replica of the registry, which every node holds. A name whose node is down in this node's view is not listed (it comes back if the node does). include_entries adds the raw replicated entries, tombstones and hidden ones included, for diagnosing convergence.",
		Method:      "GET", Path: "/api/v1/cluster/registry",
		Params: []ops.Param{
			{Name: "name", Type: ops.TypeString, In: ops.InQuery, Max: f(200), Description: "regular expression on the name"},
			{Name: "node", Type: ops.TypeNode, In: ops.InQuery, Description: "only names of processes on this node"},
			{Name: "meta", Type: ops.TypeList, In: ops.InQuery, Max: f(20), Pattern: `^[^=]+(=.*)?$`, Description: "key=value (or key, any value) the metadata must hold; repeat for more"},
			{Name: "limit", Type: ops.TypeInt, In: ops.InQuery, Default: 1000, Min: f(1), Max: f(100000)},
			{Name: "include_entries", Type: ops.TypeBool, In: ops.InQuery, Default: false, Description: "add the raw replicated entries (tombstones and hidden ones too)"},
		},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			reg, err := registryOrUnavailable(env)
			if err != nil {
				return nil, err
			}
			p := req.Params
			filter := registry.Filter{Name: p.String("name"), Node: p.String("node")}
			if p.Has("meta") {
				filter.Meta = map[string]string{}
				for _, kv := range p.Strings("meta") {
					k, v, _ := strings.Cut(kv, "=")
					filter.Meta[k] = v
				}
			}
			list, err := reg.List(filter)
			if err != nil {
				return nil, ops.BadRequest(err.Error())
			}
			total := len(list)
			if l := p.Int("limit"); len(list) > l {
				list = list[:l]
			}
			if list == nil {
				list = []registry.Registration{}
			}
			data := map[string]any{"registrations": list, "total": total}
			if p.Bool("include_entries") {
				data["entries"] = reg.Entries()
			}
			return &ops.Result{Data: data, Meta: map[string]any{"answered_by": env.Node.Name(), "total": total, "limit": p.Int("limit")}}, nil
		},
	}
}

func registryLookup(env *Env) ops.Operation {
	return ops.Operation{
		Name: "registry.lookup", Category: "registry",
		Summary: "Where a cluster-wide name points: its PID, node and metadata (404 if not registered)",
		Method:  "GET", Path: "/api/v1/cluster/registry/lookup",
		Params: []ops.Param{
			{Name: "name", Type: ops.TypeString, In: ops.InQuery, Required: true, Min: f(1), Max: f(255)},
		},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			reg, err := registryOrUnavailable(env)
			if err != nil {
				return nil, err
			}
			name := req.Params.String("name")
			r, ok := reg.Lookup(name)
			if !ok {
				return nil, ops.NotFound("no process is registered as " + name)
			}
			return &ops.Result{Data: r, Meta: map[string]any{"target_node": r.Node}}, nil
		},
	}
}
