package registry

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/process"
)

// fakeNet is an in-memory cluster for registry tests: every node has a
// runtime, a membership view the test sets, and replica messages that the
// test delivers (or drops) on purpose. Delivery is synchronous unless the
// net is held, so tests are deterministic.
type fakeNet struct {
	t     *testing.T
	mu    sync.Mutex
	nodes map[string]*fakeNode
	order []string
	cut   map[[2]string]bool // a→b blocked
	queue []pending          // broadcasts not delivered yet (flush delivers)
}

type pending struct {
	from, to string
	msg      []byte
}

type fakeNode struct {
	net  *fakeNet
	name string
	rt   *process.Runtime
	reg  *Registry

	mu      sync.Mutex
	view    map[string]cluster.Member
	subs    []chan cluster.Event
	replica cluster.Replica
}

func newFakeNet(t *testing.T, names ...string) *fakeNet {
	t.Helper()
	fn := &fakeNet{t: t, nodes: map[string]*fakeNode{}, cut: map[[2]string]bool{}}
	for i, name := range names {
		rt, err := process.NewRuntime(process.Config{Node: name, Incarnation: uint64(1000 + i)})
		if err != nil {
			t.Fatal(err)
		}
		fn.nodes[name] = &fakeNode{net: fn, name: name, rt: rt, view: map[string]cluster.Member{}}
		fn.order = append(fn.order, name)
	}
	for _, a := range fn.nodes {
		for _, b := range fn.nodes {
			a.view[b.name] = cluster.Member{Name: b.name, Incarnation: b.rt.Incarnation(), Status: cluster.StatusAlive, Since: time.Now()}
		}
	}
	t.Cleanup(func() {
		for _, name := range fn.order {
			n := fn.nodes[name]
			if n.reg != nil {
				n.reg.Stop()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = n.rt.Shutdown(ctx)
			cancel()
		}
	})
	return fn
}

func (fn *fakeNet) start(cfg Config) {
	fn.t.Helper()
	for _, name := range fn.order {
		n := fn.nodes[name]
		reg, err := Start(n.rt, n, cfg)
		if err != nil {
			fn.t.Fatal(err)
		}
		n.reg = reg
	}
}

func (fn *fakeNet) node(name string) *fakeNode { return fn.nodes[name] }

// setStatus changes how observer sees target.
func (fn *fakeNet) setStatus(observer, target string, st cluster.Status) {
	o := fn.nodes[observer]
	o.mu.Lock()
	m := o.view[target]
	m.Status, m.Since = st, time.Now()
	o.view[target] = m
	subs := append([]chan cluster.Event(nil), o.subs...)
	o.mu.Unlock()
	for _, ch := range subs {
		select {
		case ch <- cluster.Event{Type: cluster.NodeDown, Node: target}:
		default:
		}
	}
}

// partition makes every node of one group see every node of the others
// dead, and cuts replica traffic between them.
func (fn *fakeNet) partition(groups ...[]string) {
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					fn.mu.Lock()
					fn.cut[[2]string{a, b}] = true
					fn.mu.Unlock()
					fn.setStatus(a, b, cluster.StatusDead)
				}
			}
		}
	}
	fn.settle()
}

// heal restores every link and view, then runs a push-pull between every
// pair, as the cluster's rejoin does.
func (fn *fakeNet) heal() {
	fn.mu.Lock()
	clear(fn.cut)
	fn.mu.Unlock()
	for _, a := range fn.order {
		for _, b := range fn.order {
			fn.setStatus(a, b, cluster.StatusAlive)
		}
	}
	fn.settle()
	fn.pushPullAll()
	fn.flush()
}

// settle makes every registry re-read its membership now.
func (fn *fakeNet) settle() {
	for _, name := range fn.order {
		if r := fn.nodes[name].reg; r != nil {
			r.membershipChanged()
		}
	}
}

func (fn *fakeNet) pushPullAll() {
	for _, a := range fn.order {
		for _, b := range fn.order {
			if a != b {
				fn.pushPull(a, b)
			}
		}
	}
}

func (fn *fakeNet) pushPull(a, b string) {
	fn.mu.Lock()
	blocked := fn.cut[[2]string{a, b}] || fn.cut[[2]string{b, a}]
	fn.mu.Unlock()
	if blocked {
		return
	}
	na, nb := fn.nodes[a], fn.nodes[b]
	sa, sb := na.getReplica().LocalState(), nb.getReplica().LocalState()
	nb.getReplica().MergeRemoteState(sa)
	na.getReplica().MergeRemoteState(sb)
}

// flush delivers queued broadcasts (and what they cause) until none is left.
func (fn *fakeNet) flush() {
	for {
		fn.mu.Lock()
		q := fn.queue
		fn.queue = nil
		fn.mu.Unlock()
		if len(q) == 0 {
			return
		}
		for _, p := range q {
			fn.deliver(p)
		}
	}
}

func (fn *fakeNet) deliver(p pending) {
	fn.mu.Lock()
	blocked := fn.cut[[2]string{p.from, p.to}]
	fn.mu.Unlock()
	if blocked {
		return
	}
	if r := fn.nodes[p.to].getReplica(); r != nil {
		r.NotifyMsg(p.msg)
	}
}

// ---- Membership ----

func (n *fakeNode) LocalName() string { return n.name }

func (n *fakeNode) Members() []cluster.Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []cluster.Member
	for _, m := range n.view {
		out = append(out, m)
	}
	return out
}

func (n *fakeNode) Subscribe(buffer int) (<-chan cluster.Event, func()) {
	ch := make(chan cluster.Event, buffer)
	n.mu.Lock()
	n.subs = append(n.subs, ch)
	n.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			for i, c := range n.subs {
				if c == ch {
					n.subs = append(n.subs[:i], n.subs[i+1:]...)
					close(ch)
				}
			}
		})
	}
}

func (n *fakeNode) AddReplica(name string, r cluster.Replica) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.replica != nil {
		return fmt.Errorf("replica exists")
	}
	n.replica = r
	return nil
}

func (n *fakeNode) RemoveReplica(string) {
	n.mu.Lock()
	n.replica = nil
	n.mu.Unlock()
}

func (n *fakeNode) getReplica() cluster.Replica {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.replica
}

func (n *fakeNode) BroadcastKey(_, _ string, msg []byte) {
	fn := n.net
	var ps []pending
	for _, to := range fn.order {
		if to != n.name {
			ps = append(ps, pending{from: n.name, to: to, msg: append([]byte(nil), msg...)})
		}
	}
	fn.mu.Lock()
	// Always queue; flush delivers.
	fn.queue = append(fn.queue, ps...)
	fn.mu.Unlock()
}

// spawn starts an idle process on node.
func (n *fakeNode) spawn(t *testing.T) process.PID {
	t.Helper()
	pid, err := n.rt.SpawnFunc(func(p *process.Proc) error {
		for {
			if _, err := p.Receive(context.Background()); err != nil {
				return err
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return pid
}
