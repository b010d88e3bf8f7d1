package operations

import (
	"context"
	"strings"
	"time"

	"github.com/arsenal-go/arsenal/ops"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/registry"
)

// Registration is a cluster-wide name as the API sends it.
type Registration struct {
	Name         string            `json:"name"`
	PID          process.PID       `json:"pid"`
	Node         string            `json:"node"`
	Meta         map[string]string `json:"meta"`
	Gen          uint64            `json:"gen" arsenal:"count" doc:"the name's generation; with registered_at it identifies the registration"`
	RegisteredAt time.Time         `json:"registered_at"`
}

func wireRegistration(r registry.Registration) Registration {
	meta := r.Meta
	if meta == nil {
		meta = map[string]string{}
	}
	return Registration{Name: r.Name, PID: r.PID, Node: r.Node, Meta: meta, Gen: r.Gen, RegisteredAt: r.RegisteredAt}
}

// RegistryEntry is a raw replicated entry of the registry, tombstones
// included. Its hybrid logical clock timestamps are 64-bit: strings.
type RegistryEntry struct {
	Name    string            `json:"name"`
	Gen     uint64            `json:"gen" arsenal:"count"`
	TS      uint64            `json:"ts,string" doc:"hybrid logical clock of the registration, nanoseconds"`
	PID     process.PID       `json:"pid"`
	Meta    map[string]string `json:"meta"`
	Deleted bool              `json:"deleted"`
	DelTS   uint64            `json:"del_ts,string" doc:"hybrid logical clock of the deletion, 0 if not deleted"`
	DelBy   string            `json:"del_by,omitempty"`
	Reason  string            `json:"reason,omitempty"`
}

// RegistryList is the answer of cluster.registry.
type RegistryList struct {
	Registrations []Registration   `json:"registrations"`
	Total         int              `json:"total"`
	Entries       *[]RegistryEntry `json:"entries,omitempty" doc:"only with include_entries"`
}

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
		Method:      "GET", Path: "/api/v1/cluster/registry", Response: RegistryList{},
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
			data := RegistryList{Registrations: make([]Registration, 0, len(list)), Total: total}
			for _, r := range list {
				data.Registrations = append(data.Registrations, wireRegistration(r))
			}
			if p.Bool("include_entries") {
				entries := []RegistryEntry{}
				for _, e := range reg.Entries() {
					meta := e.Meta
					if meta == nil {
						meta = map[string]string{}
					}
					entries = append(entries, RegistryEntry{Name: e.Name, Gen: e.Gen, TS: e.TS, PID: e.PID, Meta: meta,
						Deleted: e.Deleted, DelTS: e.DelTS, DelBy: e.DelBy, Reason: e.Reason})
				}
				data.Entries = &entries
			}
			return &ops.Result{Data: data, Meta: map[string]any{"answered_by": env.Node.Name(), "total": total, "limit": p.Int("limit")}}, nil
		},
	}
}

func registryLookup(env *Env) ops.Operation {
	return ops.Operation{
		Name: "registry.lookup", Category: "registry",
		Summary: "Where a cluster-wide name points: its PID, node and metadata (404 if not registered)",
		Method:  "GET", Path: "/api/v1/cluster/registry/lookup", Response: Registration{},
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
			return &ops.Result{Data: wireRegistration(r), Meta: map[string]any{"target_node": r.Node}}, nil
		},
	}
}
