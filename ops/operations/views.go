package operations

import (
	"context"
	"sort"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/inspect"
	"github.com/arsenal-go/arsenal/ops"
)

// requestView is the node request that answers a node's own membership
// view; every node that serves the operations API installs it.
const requestView = "arsenal.membership_view"

// ViewMember is one member as one observer sees it.
type ViewMember struct {
	Name        string    `json:"name"`
	Status      string    `json:"status" enum:"alive,suspect,dead,left"`
	Incarnation uint64    `json:"incarnation,string"`
	Since       time.Time `json:"since" doc:"when the status last changed in the observer's view"`
}

// NodeView is one node's own view of the membership.
type NodeView struct {
	Observer  string                  `json:"observer"`
	Mode      string                  `json:"mode" enum:"single_node,multi_node,simulated"`
	Partition cluster.PartitionStatus `json:"partition_status"`
	Members   []ViewMember            `json:"members"`
}

// MembershipViews is the answer of cluster.membership_views.
type MembershipViews struct {
	Views []NodeView `json:"views" doc:"one per node that answered, sorted by observer"`
}

// localView is this node's view, as the wire carries it between nodes
// (the codec carries the plain fields; the JSON form is NodeView).
type localView struct {
	Observer  string
	Mode      string
	Partition cluster.PartitionStatus
	Members   []ViewMember
}

func ownView(env *Env) localView {
	c := env.Node.Cluster()
	top := c.Topology()
	v := localView{Observer: env.Node.Name(), Mode: string(top.Mode), Partition: top.Partition, Members: []ViewMember{}}
	for _, m := range c.Members() {
		v.Members = append(v.Members, ViewMember{Name: m.Name, Status: string(m.Status), Incarnation: m.Incarnation, Since: m.Since})
	}
	sort.Slice(v.Members, func(i, j int) bool { return v.Members[i].Name < v.Members[j].Name })
	return v
}

// installViews lets other nodes ask this one for its view.
func installViews(env *Env) {
	env.Node.HandleRequest(requestView, func(context.Context, string, []byte) (any, error) {
		return ownView(env), nil
	})
}

func membershipViews(env *Env) ops.Operation {
	return ops.Operation{
		Name: "cluster.membership_views", Category: "cluster",
		Summary:     "Each node's own view of every member (who sees whom), asked of every node that is up",
		Description: "Asks every member this node sees up, in parallel, for its own membership view: status, incarnation and since of every member as that node sees it, with its mode and partition status. One-way and partial partitions show as views that disagree. Nodes that did not answer, and members this node sees dead, are listed in meta.unreachable_nodes.",
		Method:      "GET", Path: "/api/v1/cluster/membership-views",
		Response: MembershipViews{},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			got, failed := inspect.Fanout[localView](ctx, env.Node, inspect.UpNodes(env.Node), requestView, struct{}{})
			out := MembershipViews{Views: []NodeView{}}
			for _, v := range got {
				members := v.Members
				if members == nil {
					members = []ViewMember{}
				}
				out.Views = append(out.Views, NodeView{Observer: v.Observer, Mode: v.Mode, Partition: v.Partition, Members: members})
			}
			sort.Slice(out.Views, func(i, j int) bool { return out.Views[i].Observer < out.Views[j].Observer })
			return &ops.Result{Data: out, Meta: unreachableMeta(env, true, failed)}, nil
		},
	}
}
