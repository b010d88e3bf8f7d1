package operations

import (
	"context"
	"time"

	"github.com/arsenal-go/arsenal/ops"
)

// PlacementRebalanced is the answer of placement.rebalance.
type PlacementRebalanced struct {
	Moved map[string]int `json:"moved" doc:"children moved, per node that answered"`
	Total int            `json:"total" doc:"children moved in all"`
}

// placementRebalance moves the children of the distributed supervisor
// back to where placement would put them now (after a join, or after
// faults left them bunched on a few nodes).
func placementRebalance(env *Env) ops.Operation {
	return ops.Operation{
		Name: "placement.rebalance", Category: "supervisor",
		Summary:     "Move every child of the distributed supervisor to where rendezvous places it among the live nodes",
		Description: "Asks every up node, in parallel, to hand off the children whose rendezvous choice is now another node. Each child is stopped on its node before it is assigned to the next, so no child runs twice; a child is unavailable for the time of its move. data.moved gives the children moved per node; nodes that did not answer are in meta.unreachable_nodes.",
		Method:      "POST", Path: "/api/v1/cluster/placement/rebalance",
		Role: ops.RoleOperator, Idempotent: true,
		Timeout: 30 * time.Second, Response: PlacementRebalanced{},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			pl, err := placementOrUnavailable(env)
			if err != nil {
				return nil, err
			}
			moved, failed := pl.RebalanceCluster(ctx)
			total := 0
			for _, n := range moved {
				total += n
			}
			if moved == nil {
				moved = map[string]int{}
			}
			return &ops.Result{Data: PlacementRebalanced{Moved: moved, Total: total}, Meta: unreachableMeta(env, true, failed)}, nil
		},
	}
}
