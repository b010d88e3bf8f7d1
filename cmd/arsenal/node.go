package main

import (
	"context"
	"fmt"
	"io"

	"github.com/arsenal-go/arsenal"
	"github.com/arsenal-go/arsenal/control"
	"github.com/arsenal-go/arsenal/internal/demo"
	"github.com/arsenal-go/arsenal/process"
)

func init() {
	register(command{name: "node", summary: "run one node of a cluster", run: runNode})
}

const nodeDescription = `
Run one Arsenal node: a process runtime that joins its cluster by itself,
with the cluster registry, the distributed supervisor, the operations API
and the control channel (the composed node of package arsenal; any binary
built with arsenal.Main takes the same flags: docs/NODE.md).

Every setting comes from a flag, else its environment variable, else the
JSON config file given with --config (keys are the flag names), else the
default. The cluster secret is read from --secret-file or ARSENAL_SECRET,
never from a flag value (which would show in 'ps').

The node serves /healthz, /readyz, /metrics and the operations API
(/api/v1/..., catalogue at /api/v1/arsenal/operations, OpenAPI at
/api/v1/arsenal/docs) on --http-addr, and leaves the cluster gracefully on
SIGTERM or SIGINT (peers see it as left). On a loopback --http-addr, read
operations are open; elsewhere every operation needs a bearer token from
--tokens-file, and dangerous ones always need the operator role.

Examples:
  ARSENAL_SECRET=$(cat /etc/arsenal/secret) arsenal node --name a@10.0.0.5 \
      --node-addr 10.0.0.5:7946 --seeds 10.0.0.6:7946,10.0.0.7:7946
  arsenal node --config /etc/arsenal/node.json
  arsenal node --name web@$POD_IP --node-addr $POD_IP:7946 \
      --dns-srv _arsenal._tcp.arsenal-headless.default.svc.cluster.local
`

// nodeApp is what 'arsenal node' adds to the composed node: the "echo"
// kind that the CLI examples and the tests place, and the demo workload
// of 'arsenal dev' behind --demo (its kinds are registered on every node).
// demoDefault is --demo's default ("true" or "false").
func nodeApp(demoDefault string) arsenal.App {
	withDemo := &demoDefault
	return arsenal.App{
		Name: "arsenal", Usage: "arsenal node [flags]", Description: nodeDescription,
		Kinds: append([]arsenal.Kind{{Name: "echo", New: newEcho}}, demo.Kinds()...),
		Flags: func(f *arsenal.Flags) {
			withDemo = f.String("demo", "ARSENAL_DEMO", demoDefault, "start the demo workload (what 'arsenal dev' runs)")
		},
		Check: func() error {
			if *withDemo != "true" && *withDemo != "false" {
				return fmt.Errorf("--demo %q: want true or false", *withDemo)
			}
			return nil
		},
		Start: func(_ context.Context, n *arsenal.Node) error {
			if *withDemo == "true" {
				_, err := demo.Start(n)
				return err
			}
			return nil
		},
	}
}

func newEcho([]byte) (process.Behaviour, error) { return control.Echo{}, nil }

func runNode(args []string, stdout, stderr io.Writer) int {
	return arsenal.Run(nodeApp("false"), args, stdout, stderr)
}
