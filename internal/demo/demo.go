// Package demo is the workload `arsenal dev` runs on every node: a few
// supervision trees whose workers call each other across nodes, and one
// worker that crashes now and then so restarts can be watched.
package demo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/supervisor"
)

// GreeterName is the local name of each node's greeter.
const GreeterName = "demo.greeter"

// Start starts the demo trees on n and returns the top supervisor.
func Start(n *node.Node) (process.PID, error) {
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
