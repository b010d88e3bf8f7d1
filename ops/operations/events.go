package operations

import (
	"context"

	"github.com/arsenal-go/arsenal/ops"
)

func events(env *Env) ops.Operation {
	return ops.Operation{
		Name: "cluster.events", Category: "cluster",
		Summary:     "The cluster event feed (node up, suspect, down, left, partition and mode changes) as Server-Sent Events",
		Description: "Starts with a 'topology' event holding the current snapshot, then one event per change, named by its type. A client that reads too slowly misses events; each event carries a gap-free sequence number (seq) so it can tell.",
		Method:      "GET", Path: "/api/v1/cluster/events",
		Stream: func(ctx context.Context, req *ops.Request, w ops.StreamWriter) error {
			cl := env.Node.Cluster()
			ch, cancel := cl.Subscribe(256)
			defer cancel()
			top := cl.Topology()
			if err := w.Send("topology", top); err != nil {
				return nil
			}
			for {
				select {
				case <-ctx.Done():
					return nil
				case ev, ok := <-ch:
					if !ok {
						return nil
					}
					if ev.Seq <= top.Seq {
						continue
					}
					if err := w.Send(string(ev.Type), ev); err != nil {
						return nil
					}
				}
			}
		},
	}
}
