package operations

import (
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/ops"
	"github.com/arsenal-go/arsenal/placement"
	"github.com/arsenal-go/arsenal/registry"
)

// Env is what the operations of one node work with.
type Env struct {
	Node   *node.Node
	Health *HealthMonitor
	// Registry and Placement may be nil: their operations then answer 503.
	Registry  *registry.Registry
	Placement *placement.Placement
}

// Register adds every operation to reg.
func Register(reg *ops.Registry, env *Env) error {
	for _, op := range []ops.Operation{
		topology(env), health(env), nodeInfo(env), processes(env), supervisionTrees(env),
		supervisors(env), processInfo(env), processKill(env), processSend(env), processRestart(env),
		traceStart(env), traceGet(env), traceStop(env), events(env),
		clusterRegistry(env), registryLookup(env), clusterPlacement(env), placementStart(env), placementStop(env),
		placementRebalance(env),
	} {
		if err := reg.Register(op); err != nil {
			return err
		}
	}
	return nil
}

func f(v float64) *float64 { return &v }

// unreachableMeta lists the nodes that did not answer a cluster-wide read.
func unreachableMeta(failed map[string]string) map[string]any {
	m := map[string]any{}
	if len(failed) > 0 {
		m["unreachable_nodes"] = failed
	}
	return m
}
