package operations

import (
	"fmt"
	"sync"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
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

	evOnce sync.Once
	events *eventLog
}

// eventLog is the node's backlog of cluster events, started with
// Register so that it holds the events from the node's start.
func (e *Env) eventLog() *eventLog {
	e.evOnce.Do(func() { e.events = startEventLog(e.Node.Cluster()) })
	return e.events
}

// Register adds every operation to reg.
func Register(reg *ops.Registry, env *Env) error {
	if env.Node != nil {
		env.eventLog()
		installViews(env)
	}
	for _, op := range []ops.Operation{
		topology(env), health(env), nodeInfo(env), processes(env), supervisionTrees(env),
		supervisors(env), processInfo(env), processKill(env), processSend(env), processRestart(env),
		traceStart(env), traceGet(env), traceStop(env), traceList(env), events(env),
		clusterRegistry(env), registryLookup(env), clusterPlacement(env), placementStart(env), placementStop(env),
		placementRebalance(env),
		membershipViews(env),
	} {
		if err := reg.Register(op); err != nil {
			return err
		}
	}
	return nil
}

func f(v float64) *float64 { return &v }

// unreachableMeta lists the nodes that did not answer a cluster-wide read
// and, when the read asked every node (all), the members that are down
// and were therefore not asked: a dead node is said, never silently
// missing. Nodes that left on purpose are not listed.
func unreachableMeta(env *Env, all bool, failed map[string]string) map[string]any {
	out := map[string]string{}
	for k, v := range failed {
		out[k] = v
	}
	if all && env.Node != nil {
		for _, m := range env.Node.Cluster().Members() {
			if m.Status == cluster.StatusDead {
				if _, ok := out[m.Name]; !ok {
					out[m.Name] = fmt.Sprintf("node is dead (since %s): not asked", m.Since.UTC().Format(time.RFC3339))
				}
			}
		}
	}
	meta := map[string]any{}
	if len(out) > 0 {
		meta["unreachable_nodes"] = out
	}
	return meta
}
