package control

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

	"github.com/arsenal-go/arsenal/codec"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/placement"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/registry"
	"github.com/arsenal-go/arsenal/supervisor"
	"github.com/arsenal-go/arsenal/transport"
)

// Target is what a Server controls: a node and its cluster services.
type Target struct {
	Node *node.Node
	// Faults are the node's network fault hooks; nil answers "fault"
	// commands with an error (the node runs without fault injection).
	Faults *transport.Faults
	// Registry and Placement may be nil: their commands then answer an
	// error.
	Registry  *registry.Registry
	Placement *placement.Placement
	// Kind looks up a kind the application registered, for "spawn"; nil
	// means only the built-in helper kinds.
	Kind func(name string) (placement.Factory, bool)
	// App and Kinds are reported in the "ready" event.
	App   string
	Kinds []string
	// HTTPAddr is reported in the "ready" event.
	HTTPAddr string
}

// Server serves the control protocol for one node, on stdio
// (ServeStdio) and on unix sockets (ServeSocket). It records the
// registry's and placement's events from its creation on, for the
// "service_history" command.
type Server struct {
	t    Target
	hist *history
	done chan string
	once sync.Once
	stop func()
}

// NewServer returns a server for t. Close it when the node stops.
func NewServer(t Target) *Server {
	s := &Server{t: t, done: make(chan string, 1)}
	if t.Registry != nil && t.Placement != nil {
		s.hist, s.stop = record(t.Registry, t.Placement)
	}
	return s
}

// Done receives why a client asked the node to stop: the "stop" command,
// or the end of the stdio channel.
func (s *Server) Done() <-chan string { return s.done }

// Close stops recording the service history.
func (s *Server) Close() {
	s.once.Do(func() {
		if s.stop != nil {
			s.stop()
		}
	})
}

func (s *Server) requestStop(why string) {
	select {
	case s.done <- why:
	default:
	}
}

// ServeStdio reports "ready" on out, then serves commands from in until
// EOF, which means the parent is gone: it then asks the node to stop
// (Done). It returns at EOF.
func (s *Server) ServeStdio(in io.Reader, out io.Writer) {
	c := s.session(out)
	c.ready()
	c.serve(in)
	s.requestStop("control channel closed")
}

// session is one client's connection: its replies and the events of the
// watchers it spawned go back to it.
type session struct {
	s   *Server
	n   *node.Node
	mu  sync.Mutex
	out *json.Encoder
}

func (s *Server) session(out io.Writer) *session {
	return &session{s: s, n: s.t.Node, out: json.NewEncoder(out)}
}

func (c *session) write(v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.out.Encode(v)
}

func (c *session) event(name string, data any) {
	b, _ := json.Marshal(data)
	c.write(Event{Event: name, Data: b})
}

func (c *session) readyInfo() Ready {
	return Ready{
		Name: c.n.Name(), Cluster: c.n.ClusterName(), NodeAddr: c.n.Addr(), HTTPAddr: c.s.t.HTTPAddr,
		Incarnation: c.n.Incarnation(), OSPID: os.Getpid(), Protocol: Version, App: c.s.t.App, Kinds: c.s.t.Kinds,
	}
}

func (c *session) ready() { c.event("ready", c.readyInfo()) }

func (c *session) serve(in io.Reader) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var cmd Command
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			c.write(Reply{Error: "malformed command: " + err.Error()})
			continue
		}
		go c.handle(cmd)
	}
}

func (c *session) handle(cmd Command) {
	res, err := c.exec(cmd)
	r := Reply{ID: cmd.ID, OK: err == nil}
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
	PID string `json:"pid"`
}

type nameArgs struct {
	Name string `json:"name"`
}

func decodeArgs(cmd Command, v any) error {
	if len(cmd.Args) == 0 {
		return nil
	}
	if err := json.Unmarshal(cmd.Args, v); err != nil {
		return fmt.Errorf("%s: args: %w", cmd.Cmd, err)
	}
	return nil
}

// message is the message of m: its Value decoded, else its Msg.
func (m Message) message() (any, error) {
	if len(m.Value) == 0 {
		return m.Msg, nil
	}
	v, n, err := codec.Decode(m.Value)
	if err != nil {
		return nil, fmt.Errorf("value: %w", err)
	}
	if n != len(m.Value) {
		return nil, errors.New("value: trailing bytes")
	}
	return v, nil
}

func (m Message) timeout() (time.Duration, error) {
	if m.Timeout == "" {
		return 5 * time.Second, nil
	}
	d, err := time.ParseDuration(m.Timeout)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("timeout %q: want a positive duration", m.Timeout)
	}
	return d, nil
}

// reply is the result of a call: a Value for a call made with a Value,
// else the reply printed.
func (m Message) reply(v any) (any, error) {
	if len(m.Value) == 0 {
		return fmt.Sprint(v), nil
	}
	b, err := codec.Append(nil, v)
	if err != nil {
		return nil, fmt.Errorf("the reply (%T) cannot be encoded: %w", v, err)
	}
	return Value{Value: b}, nil
}

func (c *session) exec(cmd Command) (any, error) {
	rt := c.n.Runtime()
	switch cmd.Cmd {
	case "hello":
		var h Hello
		if err := decodeArgs(cmd, &h); err != nil {
			return nil, err
		}
		if err := CheckVersion("the client", h.Protocol); err != nil {
			return nil, err
		}
		return Hello{Protocol: Version, App: c.s.t.App}, nil
	case "ping":
		return "pong", nil
	case "ready":
		// What the "ready" event says, for a client on a socket.
		return c.readyInfo(), nil
	case "members":
		var out []Member
		for _, m := range c.n.Cluster().Members() {
			out = append(out, Member{Name: m.Name, Status: string(m.Status), Incarnation: m.Incarnation})
		}
		return out, nil
	case "topology":
		return c.n.Cluster().Topology(), nil
	case "facts":
		return c.n.Facts(), nil
	case "fault":
		var f Fault
		if err := decodeArgs(cmd, &f); err != nil {
			return nil, err
		}
		return nil, c.fault(f)
	case "spawn":
		var a Spawn
		if err := decodeArgs(cmd, &a); err != nil {
			return nil, err
		}
		if a.Count > 1 {
			// Many idle echo processes at once (benchmarks): returns the count.
			for i := 0; i < a.Count; i++ {
				if _, err := rt.Spawn(Echo{}); err != nil {
					return nil, err
				}
			}
			return a.Count, nil
		}
		return c.spawn(a)
	case "monitor", "link":
		var a pidArgs
		if err := decodeArgs(cmd, &a); err != nil {
			return nil, err
		}
		target, err := process.ParsePID(a.PID)
		if err != nil {
			return nil, err
		}
		return c.watch(target, cmd.Cmd == "link")
	case "send":
		var a Message
		if err := decodeArgs(cmd, &a); err != nil {
			return nil, err
		}
		to, err := process.ParsePID(a.To)
		if err != nil {
			return nil, err
		}
		msg, err := a.message()
		if err != nil {
			return nil, err
		}
		if err := sendable(to, rt, msg); err != nil {
			return nil, err
		}
		n := max(a.Count, 1)
		sent := make(chan struct{})
		_, err = rt.SpawnFunc(func(p *process.Proc) error {
			for i := 0; i < n; i++ {
				if n == 1 {
					p.Send(to, msg)
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
		var a Message
		if err := decodeArgs(cmd, &a); err != nil {
			return nil, err
		}
		to, err := process.ParsePID(a.To)
		if err != nil {
			return nil, err
		}
		msg, err := a.message()
		if err != nil {
			return nil, err
		}
		d, err := a.timeout()
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		v, err := rt.Call(ctx, to, msg)
		if err != nil {
			return nil, err
		}
		return a.reply(v)
	case "whereis":
		var a nameArgs
		if err := decodeArgs(cmd, &a); err != nil {
			return nil, err
		}
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
				c.event("member", MemberEvent{
					Seq: ev.Seq, Type: string(ev.Type), Node: ev.Node,
					OldStatus: string(ev.OldStatus), NewStatus: string(ev.NewStatus),
					Incarnation: ev.Member.Incarnation, Restarted: ev.Restarted,
					Partition: string(ev.Partition.State), Mode: string(ev.Mode),
				})
			}
		}()
		return seq, nil
	case "sender":
		pid, err := SpawnSender(rt)
		if err != nil {
			return nil, err
		}
		return pid.String(), nil
	case "send_seq":
		var s SendSeq
		if err := decodeArgs(cmd, &s); err != nil {
			return nil, err
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
		return SendBatch(rt, from, to, s.Msg, s.Count, 10*time.Second)
	case "processes":
		return rt.Processes(), nil
	case "stop":
		c.s.requestStop("stop command")
		return nil, nil
	}
	if res, ok, err := c.execService(cmd); ok {
		return res, err
	}
	return nil, fmt.Errorf("unknown command %q (control protocol version %d)", cmd.Cmd, Version)
}

// sendable refuses, before sending, a message to another node that the
// codec cannot encode: the harness sees the error instead of a drop.
func sendable(to process.PID, rt *process.Runtime, msg any) error {
	if rt.IsLocal(to) {
		return nil
	}
	if err := codec.Encodable(msg); err != nil {
		return fmt.Errorf("message %T to %s: %w", msg, to, err)
	}
	return nil
}

func (c *session) watch(target process.PID, link bool) (any, error) {
	w, err := Watch(c.n.Runtime(), target, link, func(kind string, s Signal) { c.event(kind, s) })
	if err != nil {
		return nil, err
	}
	return w.String(), nil
}

// Watch spawns a watcher process on rt that monitors target (or, with
// link, links to it and traps exits) and reports each DOWN as ("down",
// Signal) and each exit signal as ("exit", Signal). It returns once the
// monitor or link is set up, so no signal can come before it. Both the
// control channel and the simulator's harness backend watch with it.
func Watch(rt *process.Runtime, target process.PID, link bool, report func(kind string, s Signal)) (process.PID, error) {
	ready := make(chan struct{})
	w, err := rt.SpawnFunc(func(p *process.Proc) error {
		if link {
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
				report("down", Signal{Watcher: p.Self().String(), PID: s.PID.String(), Reason: s.Reason.Error()})
			case process.ExitMsg:
				report("exit", Signal{Watcher: p.Self().String(), PID: s.From.String(), Reason: s.Reason.Error()})
			}
		}
	})
	if err != nil {
		return process.PID{}, err
	}
	<-ready
	return w, nil
}

// batch is what "send_seq" hands the sender process.
type batch struct {
	to    process.PID
	msg   string
	count int
	first chan int
}

// SpawnSender starts, on rt, the long-lived process behind "sender" and
// "send_seq", which sends numbered messages ("MSG:N", N counting up from
// 0 for the life of the sender): one sender per pair is what per-pair
// FIFO is about. The control channel and the simulator backend of
// clustertest both use it.
func SpawnSender(rt *process.Runtime) (process.PID, error) { return rt.SpawnFunc(senderLoop) }

// SendBatch has the sender from (of SpawnSender) send count (at least 1)
// numbered messages msg:N to to, and returns the first N, once the sends
// are on their way, or an error after timeout.
func SendBatch(rt *process.Runtime, from, to process.PID, msg string, count int, timeout time.Duration) (int, error) {
	first := make(chan int, 1)
	rt.Send(from, batch{to, msg, max(count, 1), first})
	select {
	case n := <-first:
		return n, nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("sender %s did not finish the batch within %s", from, timeout)
	}
}

func senderLoop(p *process.Proc) error {
	next := 0
	for {
		m, err := p.Receive(context.Background())
		if err != nil {
			return err
		}
		if b, ok := m.(batch); ok {
			first := next
			for range b.count {
				p.Send(b.to, fmt.Sprintf("%s:%d", b.msg, next))
				next++
			}
			b.first <- first // after the sends: the batch is on its way
		}
	}
}

// Echo is the built-in helper kind "echo": a server that answers every
// call with its request, and crashes on the request or message "crash".
type Echo struct{ process.Server }

// HandleCall answers req with req.
func (Echo) HandleCall(_ *process.Proc, _ process.From, req any) (any, error) {
	if req == "crash" {
		return nil, errors.New("crashed on request")
	}
	return req, nil
}

// HandleInfo crashes on "crash" and ignores everything else.
func (Echo) HandleInfo(_ *process.Proc, msg any) error {
	if msg == "crash" {
		return errors.New("crashed on request")
	}
	return nil
}

// BuiltinKinds are the helper kinds every node can spawn for a harness.
var BuiltinKinds = []string{"echo", "sink", "supervisor"}

func (c *session) spawn(a Spawn) (any, error) {
	rt := c.n.Runtime()
	var opts []process.SpawnOption
	if a.Name != "" {
		opts = append(opts, process.WithName(a.Name))
	}
	var pid process.PID
	var err error
	switch a.Kind {
	case "echo", "":
		pid, err = rt.Spawn(Echo{}, opts...)
	case "supervisor":
		pid, err = supervisor.Start(rt, supervisor.Spec{Children: []supervisor.ChildSpec{
			{ID: "echo", Start: func() process.Behaviour { return Echo{} }},
		}}, opts...)
	case "sink":
		pid, err = rt.SpawnFunc(func(p *process.Proc) error {
			for {
				m, err := p.Receive(context.Background())
				if err != nil {
					return err
				}
				c.event("message", Signal{Watcher: p.Self().String(), Message: printable(m)})
			}
		}, opts...)
	default:
		var f placement.Factory
		ok := false
		if c.s.t.Kind != nil {
			f, ok = c.s.t.Kind(a.Kind)
		}
		if !ok {
			return nil, fmt.Errorf("unknown kind %q (built in: echo, sink, supervisor; this application's: %v)", a.Kind, c.s.t.Kinds)
		}
		b, ferr := f(a.KindArgs)
		if ferr != nil {
			return nil, fmt.Errorf("kind %q: %w", a.Kind, ferr)
		}
		pid, err = rt.Spawn(b, opts...)
	}
	if err != nil {
		return nil, err
	}
	return pid.String(), nil
}

// printable is a message as a sink reports it: itself if JSON can carry
// it, else its Go syntax.
func printable(m any) any {
	if _, err := json.Marshal(m); err == nil {
		return m
	}
	return fmt.Sprintf("%#v", m)
}

func (c *session) fault(f Fault) error {
	faults := c.s.t.Faults
	if faults == nil {
		return errors.New("this node runs without fault hooks (start it with a control channel)")
	}
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
		faults.Block(f.Peer, dir)
	case "block_links":
		faults.BlockLinks(f.Peer, dir)
	case "refuse":
		faults.Refuse(f.Peer)
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
		faults.Delay(f.Peer, d, j)
	case "clear":
		faults.Clear(f.Peer)
	case "clear_all":
		faults.ClearAll()
	default:
		return fmt.Errorf("action %q: want block, block_links, refuse, delay, clear or clear_all", f.Action)
	}
	return nil
}
