// Package demo is the workload `arsenal dev` runs on every node: a few
// supervision trees whose workers call each other across nodes, one
// worker that crashes now and then so restarts can be watched, each
// node's greeter registered cluster-wide, and distributed children placed
// by the distributed supervisor: a counter singleton (registered as
// "demo.counter") and three workers that call it.
package demo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/arsenal-go/arsenal"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/placement"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/supervisor"
)

// GreeterName is the local name of each node's greeter.
const GreeterName = "demo.greeter"

// CounterName is the cluster-wide name of the counter singleton.
const CounterName = "demo.counter"

// Kinds are the demo's distributed kinds; every node registers them,
// whether it runs the demo or not.
func Kinds() []arsenal.Kind {
	return []arsenal.Kind{
		{Name: "demo.counter", New: func([]byte) (process.Behaviour, error) { return &counter{}, nil }},
		{Name: "demo.worker", New: func([]byte) (process.Behaviour, error) { return &worker{}, nil }},
	}
}

// Children are the demo's distributed children.
var Children = []placement.ChildSpec{
	{ID: "demo.counter", Kind: "demo.counter", Name: CounterName},
	{ID: "demo.worker-1", Kind: "demo.worker"},
	{ID: "demo.worker-2", Kind: "demo.worker"},
	{ID: "demo.worker-3", Kind: "demo.worker"},
}

// Start starts the demo on n: the local trees, the greeter's cluster-wide
// name ("demo.greeter/" + node name), and the distributed children.
func Start(n *arsenal.Node) (process.PID, error) {
	pid, err := startTrees(n.Node)
	if err != nil {
		return pid, err
	}
	if g, ok := n.Runtime().Whereis(GreeterName); ok {
		if err := n.Registry().Register(GreeterName+"/"+n.Name(), g, map[string]string{"demo": "greeter"}); err != nil {
			return pid, fmt.Errorf("demo: register the greeter: %w", err)
		}
	}
	n.EnsureChildren(Children...)
	return pid, nil
}

// counter counts the calls it gets ("hit") and answers with the count.
type counter struct {
	process.Server
	hits int
}

func (c *counter) HandleCall(_ *process.Proc, _ process.From, req any) (any, error) {
	c.hits++
	return c.hits, nil
}

// worker calls the counter, by its cluster-wide name, every 2 seconds.
type worker struct{ process.Server }

func (w *worker) Init(p *process.Proc) error {
	p.SendAfter(p.Self(), tick{}, 2*time.Second)
	return nil
}

func (w *worker) HandleInfo(p *process.Proc, msg any) error {
	if _, ok := msg.(tick); !ok {
		return nil
	}
	defer p.SendAfter(p.Self(), tick{}, 2*time.Second)
	if n := arsenal.From(p); n != nil {
		ctx, cancel := context.WithTimeout(p.Context(), time.Second)
		defer cancel()
		_, _ = n.Registry().Call(ctx, CounterName, "hit")
	}
	return nil
}

func startTrees(n *node.Node) (process.PID, error) {
	return supervisor.Start(n.Runtime(), supervisor.Spec{
		Strategy: supervisor.OneForOne,
		Children: []supervisor.ChildSpec{
			{ID: "greeter", Name: GreeterName, Start: func() process.Behaviour { return &greeter{} }},
			{ID: "pinger", Start: func() process.Behaviour { return &pinger{n: n} }},
			{ID: "flaky", Start: func() process.Behaviour { return &flaky{} }},
			supervisor.Child("ring", supervisor.Spec{
				Strategy: supervisor.RestForOne,
				Children: []supervisor.ChildSpec{
					{ID: "ring-1", Name: "demo.ring.1", Start: ringMember(1)},
					{ID: "ring-2", Name: "demo.ring.2", Start: ringMember(2)},
					{ID: "ring-3", Name: "demo.ring.3", Start: ringMember(3)},
				},
			}),
		},
	}, process.WithName("demo"))
}

// greeter answers every call with a greeting.
type greeter struct {
	process.Server
	calls int
}

func (g *greeter) HandleCall(p *process.Proc, from process.From, req any) (any, error) {
	g.calls++
	return fmt.Sprintf("hello %v, from %s (call %d)", req, p.Runtime().Node(), g.calls), nil
}

type tick struct{}

// pinger calls the greeter of a random other node every second.
type pinger struct {
	process.Server
	n          *node.Node
	ok, failed int
}

func (p *pinger) Init(pr *process.Proc) error {
	pr.SendAfter(pr.Self(), tick{}, time.Second)
	return nil
}

func (p *pinger) HandleInfo(pr *process.Proc, msg any) error {
	if _, ok := msg.(tick); !ok {
		return nil
	}
	defer pr.SendAfter(pr.Self(), tick{}, time.Second)
	var peers []string
	for _, m := range p.n.Cluster().Members() {
		if m.Status.Up() && m.Name != p.n.Name() {
			peers = append(peers, m.Name)
		}
	}
	if len(peers) == 0 {
		return nil
	}
	peer := peers[rand.IntN(len(peers))]
	ctx, cancel := context.WithTimeout(pr.Context(), time.Second)
	defer cancel()
	pid, err := p.n.Whereis(ctx, peer, GreeterName)
	if err == nil {
		_, err = pr.Call(ctx, pid, p.n.Name())
	}
	if err != nil {
		p.failed++
	} else {
		p.ok++
	}
	return nil
}

type crash struct{}

// flaky crashes 10 to 20 seconds after it starts; its supervisor restarts it.
type flaky struct{ process.Server }

func (f *flaky) Init(p *process.Proc) error {
	p.SendAfter(p.Self(), crash{}, time.Duration(10+rand.IntN(10))*time.Second)
	return nil
}

func (f *flaky) HandleInfo(p *process.Proc, msg any) error {
	if _, ok := msg.(crash); ok {
		return errors.New("demo: flaky worker crashed on purpose")
	}
	return nil
}

type token struct{ hops int }

// ring members pass a token around the three of them.
type ring struct {
	process.Server
	i int
}

func ringMember(i int) func() process.Behaviour {
	return func() process.Behaviour { return &ring{i: i} }
}

func (r *ring) Init(p *process.Proc) error {
	if r.i == 3 {
		p.SendAfter(p.Self(), token{}, 500*time.Millisecond)
	}
	return nil
}

func (r *ring) HandleInfo(p *process.Proc, msg any) error {
	t, ok := msg.(token)
	if !ok {
		return nil
	}
	next, ok := p.Runtime().Whereis(fmt.Sprintf("demo.ring.%d", r.i%3+1))
	if ok {
		p.SendAfter(next, token{hops: t.hops + 1}, 500*time.Millisecond)
	}
	return nil
}
