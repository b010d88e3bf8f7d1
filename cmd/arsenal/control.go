package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/arsenal-go/arsenal/internal/control"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/supervisor"
	"github.com/arsenal-go/arsenal/transport"
)

// controller serves the control protocol (package internal/control) on
// stdin/stdout for a harness.
type controller struct {
	n      *node.Node
	faults *transport.Faults
	svc    *services // registry and placement (services.go); nil without them
	mu     sync.Mutex
	out    *json.Encoder
	done   chan<- string
}

func newController(n *node.Node, f *transport.Faults, stdout io.Writer, done chan<- string) *controller {
	return &controller{n: n, faults: f, out: json.NewEncoder(stdout), done: done}
}

func (c *controller) write(v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.out.Encode(v)
}

func (c *controller) event(name string, data any) {
	b, _ := json.Marshal(data)
	c.write(control.Event{Event: name, Data: b})
}

func (c *controller) ready(httpAddr string) {
	c.event("ready", control.Ready{
		Name: c.n.Name(), Cluster: c.n.ClusterName(), NodeAddr: c.n.Addr(), HTTPAddr: httpAddr,
		Incarnation: c.n.Incarnation(), OSPID: os.Getpid(),
	})
}

// serve reads commands until EOF; EOF means the parent is gone, and the
// node stops.
func (c *controller) serve(in io.Reader) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var cmd control.Command
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			c.write(control.Reply{Error: "malformed command: " + err.Error()})
			continue
		}
		go c.handle(cmd)
	}
	select {
	case c.done <- "control channel closed":
	default:
	}
}

func (c *controller) handle(cmd control.Command) {
	res, err := c.exec(cmd)
	r := control.Reply{ID: cmd.ID, OK: err == nil}
	if err != nil {
		r.Error = err.Error()
	} else if res != nil {
		b, merr := json.Marshal(res)
		if merr != nil {
			r.OK, r.Error = false, merr.Error()
		}
		r.Result = b
	}
	c.write(r)
}

type pidArgs struct {
	PID     string `json:"pid"`
	To      string `json:"to"`
	Msg     string `json:"msg"`
	Count   int    `json:"count"`
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Timeout string `json:"timeout"`
}

func (c *controller) exec(cmd control.Command) (any, error) {
	var a pidArgs
	if len(cmd.Args) > 0 && cmd.Cmd != "fault" {
		if err := json.Unmarshal(cmd.Args, &a); err != nil {
			return nil, fmt.Errorf("args: %w", err)
		}
	}
	rt := c.n.Runtime()
	switch cmd.Cmd {
	case "ping":
		return "pong", nil
	case "members":
		var out []control.Member
		for _, m := range c.n.Cluster().Members() {
			out = append(out, control.Member{Name: m.Name, Status: string(m.Status), Incarnation: m.Incarnation})
		}
		return out, nil
	case "topology":
		return c.n.Cluster().Topology(), nil
	case "facts":
		return c.n.Facts(), nil
	case "fault":
		var f control.Fault
		if err := json.Unmarshal(cmd.Args, &f); err != nil {
			return nil, fmt.Errorf("args: %w", err)
		}
		return nil, c.fault(f)
	case "spawn":
		if a.Count > 1 {
			// Many idle echo processes at once (benchmarks): returns the count.
			for i := 0; i < a.Count; i++ {
				if _, err := rt.Spawn(echoServer{}); err != nil {
					return nil, err
				}
			}
			return a.Count, nil
		}
		return c.spawn(a)
	case "monitor", "link":
		target, err := process.ParsePID(a.PID)
		if err != nil {
			return nil, err
		}
		kind := cmd.Cmd
		ready := make(chan struct{})
		w, err := rt.SpawnFunc(func(p *process.Proc) error {
			if kind == "link" {
				p.TrapExits(true)
				p.Link(target)
			} else {
				p.Monitor(target)
			}
			close(ready)
			for {
				m, err := p.Receive(context.Background())
				if err != nil {
					return err
				}
				switch s := m.(type) {
				case process.DownMsg:
					c.event("down", control.Signal{Watcher: p.Self().String(), PID: s.PID.String(), Reason: s.Reason.Error()})
				case process.ExitMsg:
					c.event("exit", control.Signal{Watcher: p.Self().String(), PID: s.From.String(), Reason: s.Reason.Error()})
				}
			}
		})
		if err != nil {
			return nil, err
		}
		<-ready
		return w.String(), nil
	case "send":
		to, err := process.ParsePID(a.To)
		if err != nil {
			return nil, err
		}
		n := max(a.Count, 1)
		sent := make(chan struct{})
		_, err = rt.SpawnFunc(func(p *process.Proc) error {
			for i := 0; i < n; i++ {
				if n == 1 {
					p.Send(to, a.Msg)
				} else {
					p.Send(to, fmt.Sprintf("%s:%d", a.Msg, i))
				}
			}
			close(sent)
			return nil
		})
		if err != nil {
			return nil, err
		}
		<-sent
		return n, nil
	case "call":
		to, err := process.ParsePID(a.To)
		if err != nil {
			return nil, err
		}
		d := 5 * time.Second
		if a.Timeout != "" {
			if d, err = time.ParseDuration(a.Timeout); err != nil {
				return nil, err
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		v, err := rt.Call(ctx, to, a.Msg)
		if err != nil {
			return nil, err
		}
		return fmt.Sprint(v), nil
	case "whereis":
		pid, ok := rt.Whereis(a.Name)
		if !ok {
			return nil, fmt.Errorf("no process named %q", a.Name)
		}
		return pid.String(), nil
	case "watch_members":
		// Stream every change of the membership view as "member" events
		// until the node stops; the result is the view's Seq at the start
		// (events with a larger Seq are news). The harness calls it once.
		events, _ := c.n.Cluster().Subscribe(4096)
		seq := c.n.Cluster().Topology().Seq
		go func() {
			for ev := range events {
				c.event("member", control.MemberEvent{
					Seq: ev.Seq, Type: string(ev.Type), Node: ev.Node,
					OldStatus: string(ev.OldStatus), NewStatus: string(ev.NewStatus),
					Incarnation: ev.Member.Incarnation, Restarted: ev.Restarted,
					Partition: string(ev.Partition.State), Mode: string(ev.Mode),
				})
			}
		}()
		return seq, nil
	case "sender":
		// A long-lived process that sends numbered messages on "send_seq"
		// (control.SendSeq): one sender per pair is what per-pair FIFO is
		// about.
		pid, err := rt.SpawnFunc(func(p *process.Proc) error {
			next := 0
			for {
				m, err := p.Receive(context.Background())
				if err != nil {
					return err
				}
				if b, ok := m.(struct {
					To    process.PID
					Msg   string
					Count int
					First chan int
				}); ok {
					first := next
					for range b.Count {
						p.Send(b.To, fmt.Sprintf("%s:%d", b.Msg, next))
						next++
					}
					b.First <- first // after the sends: the batch is on its way
				}
			}
		})
		if err != nil {
			return nil, err
		}
		return pid.String(), nil
	case "send_seq":
		var s control.SendSeq
		if err := json.Unmarshal(cmd.Args, &s); err != nil {
			return nil, fmt.Errorf("args: %w", err)
		}
		from, err := process.ParsePID(s.Sender)
		if err != nil {
			return nil, err
		}
		to, err := process.ParsePID(s.To)
		if err != nil {
			return nil, err
		}
		if !rt.Alive(from) {
			return nil, fmt.Errorf("sender %s is not running", s.Sender)
		}
		first := make(chan int, 1)
		rt.Send(from, struct {
			To    process.PID
			Msg   string
			Count int
			First chan int
		}{to, s.Msg, max(s.Count, 1), first})
		select {
		case n := <-first:
			return n, nil
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("sender %s did not finish the batch within 10s", s.Sender)
		}
	case "processes":
		return rt.Processes(), nil
	case "stop":
		select {
		case c.done <- "stop command":
		default:
		}
		return nil, nil
	}
	if res, ok, err := c.execService(cmd); ok {
		return res, err
	}
	return nil, fmt.Errorf("unknown command %q", cmd.Cmd)
}

type echoServer struct{ process.Server }

func (echoServer) HandleCall(_ *process.Proc, _ process.From, req any) (any, error) {
	if req == "crash" {
		return nil, errors.New("crashed on request")
	}
	return req, nil
}

func (echoServer) HandleInfo(_ *process.Proc, msg any) error {
	if msg == "crash" {
		return errors.New("crashed on request")
	}
	return nil
}

func (c *controller) spawn(a pidArgs) (any, error) {
	rt := c.n.Runtime()
	var opts []process.SpawnOption
	if a.Name != "" {
		opts = append(opts, process.WithName(a.Name))
	}
	switch a.Kind {
	case "echo", "":
		pid, err := rt.Spawn(echoServer{}, opts...)
		if err != nil {
			return nil, err
		}
		return pid.String(), nil
	case "supervisor":
		pid, err := supervisor.Start(rt, supervisor.Spec{Children: []supervisor.ChildSpec{
			{ID: "echo", Start: func() process.Behaviour { return echoServer{} }},
		}}, opts...)
		if err != nil {
			return nil, err
		}
		return pid.String(), nil
	case "sink":
		pid, err := rt.SpawnFunc(func(p *process.Proc) error {
			for {
				m, err := p.Receive(context.Background())
				if err != nil {
					return err
				}
				c.event("message", control.Signal{Watcher: p.Self().String(), Message: m})
			}
		}, opts...)
		if err != nil {
			return nil, err
		}
		return pid.String(), nil
	}
	return nil, fmt.Errorf("unknown kind %q (echo, sink or supervisor)", a.Kind)
}

func (c *controller) fault(f control.Fault) error {
	dir := transport.Both
	switch f.Dir {
	case "", "both":
	case "out":
		dir = transport.Outbound
	case "in":
		dir = transport.Inbound
	default:
		return fmt.Errorf("dir %q: want out, in or both", f.Dir)
	}
	switch f.Action {
	case "block":
		c.faults.Block(f.Peer, dir)
	case "block_links":
		c.faults.BlockLinks(f.Peer, dir)
	case "refuse":
		c.faults.Refuse(f.Peer)
	case "delay":
		d, err := time.ParseDuration(f.Delay)
		if err != nil {
			return fmt.Errorf("delay: %w", err)
		}
		var j time.Duration
		if f.Jitter != "" {
			if j, err = time.ParseDuration(f.Jitter); err != nil {
				return fmt.Errorf("jitter: %w", err)
			}
		}
		c.faults.Delay(f.Peer, d, j)
	case "clear":
		c.faults.Clear(f.Peer)
	case "clear_all":
		c.faults.ClearAll()
	default:
		return fmt.Errorf("action %q: want block, block_links, refuse, delay, clear or clear_all", f.Action)
	}
	return nil
}
