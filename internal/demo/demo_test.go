package demo_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal"
	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/internal/demo"
	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/placement"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/go-metrics.(*InmemSink).run"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"), goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
}

// The demo workload of 'arsenal dev' gives the registry and the
// distributed supervisor something real to show: every node's greeter is
// registered cluster-wide, the counter singleton runs once under its name,
// and the three placed workers call it.
func TestDemoUsesRegistryAndPlacement(t *testing.T) {
	app := arsenal.App{Name: "demo", Kinds: demo.Kinds(), Start: func(_ context.Context, n *arsenal.Node) error {
		_, err := demo.Start(n)
		return err
	}}
	cfg := func(name string, seeds ...string) arsenal.Config {
		c := arsenal.Config{
			Node: node.Config{Name: name, Cluster: "demo-test", Secret: []byte("0123456789abcdef0123456789abcdef"),
				Profile: cluster.ProfileFast, BindAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
			HTTPAddr: "127.0.0.1:0", Placement: placement.Config{StableAfter: 200 * time.Millisecond}, App: app,
		}
		c.API.OpenReads = true
		if len(seeds) > 0 {
			c.Node.Discovery = cluster.StaticSeeds(seeds...)
		}
		return c
	}
	a, err := arsenal.Start(context.Background(), cfg("a@127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	b, err := arsenal.Start(context.Background(), cfg("b@127.0.0.1", a.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop(context.Background())

	nodes := []*arsenal.Node{a, b}
	testutil.Eventually(t, 30*time.Second, func() bool {
		for _, n := range nodes {
			for _, name := range []string{demo.CounterName, demo.GreeterName + "/" + a.Name(), demo.GreeterName + "/" + b.Name()} {
				if _, ok := n.Registry().Whereis(name); !ok {
					return false
				}
			}
			running := 0
			for _, c := range n.Placement().Children() {
				if c.Status == "running" {
					running++
				}
			}
			if running != len(demo.Children) {
				return false
			}
		}
		return true
	}, "both nodes see the counter and both greeters registered, and the %d demo children running", len(demo.Children))

	// The workers call the counter: its count grows by more than this
	// test's own calls.
	hit := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, err := a.Registry().Call(ctx, demo.CounterName, "hit")
		if err != nil {
			t.Fatal(err)
		}
		return v.(int)
	}
	first, mine := hit(), 0
	testutil.Eventually(t, 30*time.Second, func() bool {
		mine++
		return hit() > first+mine // a hit that is not this test's
	}, "the placed workers call the counter")
}
