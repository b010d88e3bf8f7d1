package process

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Runtime.
type Config struct {
	// Node is this node's name, "name@host". Default "nonode@localhost".
	Node string
	// Incarnation distinguishes this start of the node from earlier ones.
	// Default: derived from the clock and a random number, so it grows
	// from one start to the next and never repeats.
	Incarnation uint64
	// CallTimeout applies to Call when the context has no deadline.
	// Default 5 s, as in OTP.
	CallTimeout time.Duration
	// ShutdownGrace bounds how long Shutdown waits for the root processes
	// to stop before it kills what is left. Default 10 s.
	ShutdownGrace time.Duration
	// Logger receives process crashes (at warn) and lifecycle (at debug).
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Node != "" {
		if err := ValidateNodeName(c.Node); err != nil {
			return fmt.Errorf("process: Config.Node: %w", err)
		}
	}
	if c.CallTimeout < 0 {
		return errors.New("process: Config.CallTimeout is negative")
	}
	return nil
}

// Remote carries signals to processes on other nodes. The node layer sets
// it with SetRemote; without it, messages to other nodes are dropped and
// calls, links and monitors to them fail with NoConnection.
type Remote interface {
	// Send delivers msg (Info or Cast) from a local process to a remote PID.
	Send(from, to PID, msg any, cast bool)
	// Call asks a remote process and waits for its reply.
	Call(ctx context.Context, from, to PID, req any) (any, error)
	// Reply answers a call that arrived from another node.
	Reply(from From, reply any, err error)
	// Exit sends an exit signal; link tells whether it comes from a link.
	Exit(from, to PID, reason Reason, link bool)
	// Link and Unlink ask the remote side to add or drop its half of a link.
	Link(from, to PID)
	Unlink(from, to PID)
	// Monitor asks the remote node to report the exit of target to the
	// local watcher with ref; Demonitor cancels it.
	Monitor(watcher PID, ref Ref, target PID)
	Demonitor(watcher PID, ref Ref, target PID)
	// Down reports the exit of a local process to a remote watcher.
	Down(watcher PID, ref Ref, target PID, reason Reason)
}

// RemoteCallWithin is an optional extension of Remote. A router that
// implements it gets a call whose context has no deadline together with
// the runtime's CallTimeout, and times the call itself (the node layer
// reuses one timer per waiting call), instead of the context with a
// deadline that Call would otherwise make for each remote call. The
// outcome is the same: a CallError wrapping Timeout once timeout passes.
type RemoteCallWithin interface {
	CallWithin(ctx context.Context, from, to PID, req any, timeout time.Duration) (any, error)
}

// Runtime hosts the processes of one node.
type Runtime struct {
	node          string
	incarnation   uint64
	callTimeout   time.Duration
	shutdownGrace time.Duration
	log           *slog.Logger

	nextID  atomic.Uint64
	nextRef atomic.Uint64
	table   sync.Map // uint64 -> *process
	count   atomic.Int64

	namesMu sync.RWMutex
	names   map[string]*process

	remote atomic.Pointer[remoteBox]

	closed atomic.Bool
	wg     sync.WaitGroup // one per running process goroutine

	tracesMu sync.Mutex
	traces   map[string]*Trace

	startedAt time.Time
	spawned   atomic.Uint64
	exited    atomic.Uint64
	crashed   atomic.Uint64
}

type remoteBox struct {
	r      Remote
	within RemoteCallWithin // r, if it implements it
}

// NewRuntime creates a runtime. It starts no goroutine of its own.
func NewRuntime(cfg Config) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Node == "" {
		cfg.Node = "nonode@localhost"
	}
	if cfg.Incarnation == 0 {
		cfg.Incarnation = NewIncarnation()
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	return &Runtime{
		node:          cfg.Node,
		incarnation:   cfg.Incarnation,
		callTimeout:   cfg.CallTimeout,
		shutdownGrace: cfg.ShutdownGrace,
		log:           cfg.Logger,
		names:         make(map[string]*process),
		traces:        make(map[string]*Trace),
		startedAt:     time.Now(),
	}, nil
}

// NewIncarnation returns a fresh incarnation number: the clock in
// milliseconds in the high bits, so later starts compare greater, and
// random low bits, so two starts in one millisecond still differ.
func NewIncarnation() uint64 {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return uint64(time.Now().UnixMilli())<<16 | uint64(binary.LittleEndian.Uint16(b[:]))
}

// Node returns this node's name.
func (rt *Runtime) Node() string { return rt.node }

// Incarnation returns this node's incarnation.
func (rt *Runtime) Incarnation() uint64 { return rt.incarnation }

// StartedAt returns when the runtime was created.
func (rt *Runtime) StartedAt() time.Time { return rt.startedAt }

// SetRemote installs the router for PIDs of other nodes.
func (rt *Runtime) SetRemote(r Remote) {
	w, _ := r.(RemoteCallWithin)
	rt.remote.Store(&remoteBox{r: r, within: w})
}

func (rt *Runtime) getRemote() Remote {
	if b := rt.remote.Load(); b != nil {
		return b.r
	}
	return nil
}

// IsLocal reports whether pid names this node (any incarnation).
func (rt *Runtime) IsLocal(pid PID) bool { return pid.Node == rt.node }

func (rt *Runtime) newRef() Ref { return Ref{Node: rt.node, ID: rt.nextRef.Add(1)} }

// lookup finds a live local process. A PID of another incarnation of this
// node finds nothing: its messages are dropped, never delivered to a new
// process that happens to reuse the id.
func (rt *Runtime) lookup(pid PID) *process {
	if pid.Node != rt.node || pid.Incarnation != rt.incarnation {
		return nil
	}
	v, ok := rt.table.Load(pid.ID)
	if !ok {
		return nil
	}
	return v.(*process)
}

// Alive reports whether a local pid names a live process.
func (rt *Runtime) Alive(pid PID) bool {
	p := rt.lookup(pid)
	return p != nil && p.state.Load() != stateDead
}

// Count returns the number of live local processes.
func (rt *Runtime) Count() int { return int(rt.count.Load()) }

// Stats are the runtime's lifetime counters.
type Stats struct {
	Processes int
	Spawned   uint64
	Exited    uint64
	Crashed   uint64 // exits with a reason other than normal, shutdown or kill
}

// Stats returns the runtime's counters.
func (rt *Runtime) Stats() Stats {
	return Stats{Processes: rt.Count(), Spawned: rt.spawned.Load(), Exited: rt.exited.Load(), Crashed: rt.crashed.Load()}
}

// ---- spawning ----

// SpawnOption adjusts one spawn.
type SpawnOption func(*spawnOpts)

type spawnOpts struct {
	name     string
	system   bool
	trap     bool
	parent   PID
	restarts int
	label    string
}

// WithName registers the new process under a local name before it runs.
func WithName(name string) SpawnOption { return func(o *spawnOpts) { o.name = name } }

// AsSystem marks the process as a system process: introspection shows it,
// and operators cannot kill it without forcing.
func AsSystem() SpawnOption { return func(o *spawnOpts) { o.system = true } }

// WithTrapExits starts the process with exit trapping on.
func WithTrapExits() SpawnOption { return func(o *spawnOpts) { o.trap = true } }

// WithParent records pid as the parent (set by Proc.Spawn and supervisors).
func WithParent(pid PID) SpawnOption { return func(o *spawnOpts) { o.parent = pid } }

// WithRestarts records how often this child slot was restarted before.
func WithRestarts(n int) SpawnOption { return func(o *spawnOpts) { o.restarts = n } }

// WithLabel sets the behaviour name shown by introspection.
func WithLabel(l string) SpawnOption { return func(o *spawnOpts) { o.label = l } }

// Spawn starts a process running behaviour b, waits for its Init, and
// returns its PID.
func (rt *Runtime) Spawn(b Behaviour, opts ...SpawnOption) (PID, error) {
	return rt.spawn(nil, b, nil, opts, false)
}

// SpawnFunc starts a process that runs fn in a goroutine of its own. fn
// receives messages with Proc.Receive; its return value is the exit
// reason (nil means Normal).
func (rt *Runtime) SpawnFunc(fn func(p *Proc) error, opts ...SpawnOption) (PID, error) {
	return rt.spawn(nil, nil, fn, opts, false)
}

func (rt *Runtime) spawn(parent *process, b Behaviour, fn func(*Proc) error, opts []SpawnOption, link bool) (PID, error) {
	if b == nil && fn == nil {
		return PID{}, ErrNilBehaviour
	}
	if b != nil {
		if v := reflectNil(b); v {
			return PID{}, ErrNilBehaviour
		}
	}
	if rt.closed.Load() {
		return PID{}, ErrNotRunning
	}
	var o spawnOpts
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	p := &process{
		rt:       rt,
		beh:      b,
		fn:       fn,
		parent:   o.parent,
		system:   o.system,
		restarts: int32(o.restarts),
		started:  time.Now().UnixNano(),
	}
	p.self.p = p
	if parent != nil && o.parent.IsZero() {
		p.parent = parent.pid
	}
	switch {
	case o.label != "":
		p.behName = o.label
	case b != nil:
		p.behName = behaviourName(b)
	default:
		p.behName = "func"
		p.wake = make(chan struct{}, 1)
	}
	p.trap.Store(o.trap)
	p.pid = PID{Node: rt.node, Incarnation: rt.incarnation, ID: rt.nextID.Add(1)}
	p.mbox.scheduled = true // nobody may start the loop before Init is done
	if link && parent != nil {
		p.links = map[PID]struct{}{parent.pid: {}}
		if !parent.addLink(p.pid) {
			return PID{}, NoProc
		}
	}
	rt.table.Store(p.pid.ID, p)
	rt.count.Add(1)
	rt.spawned.Add(1)
	if o.name != "" {
		if err := rt.register(o.name, p); err != nil {
			if link && parent != nil {
				parent.removeLink(p.pid)
			}
			p.links = nil
			p.finalize(NoProc, true)
			return PID{}, err
		}
	}
	if fn != nil {
		rt.wg.Add(1)
		go p.runFunc()
		return p.pid, nil
	}
	if err := p.callInit(); err != nil {
		// A failed start reports its error to the spawner, not as an exit
		// signal to the parent (OTP's start_link returns {error, Reason}).
		if link && parent != nil {
			parent.removeLink(p.pid)
			p.mu.Lock()
			delete(p.links, parent.pid)
			p.mu.Unlock()
		}
		p.finalize(err, true)
		return PID{}, fmt.Errorf("init of %s: %w", p.behName, err)
	}
	p.mbox.lock()
	start := p.mbox.len() > 0 || p.state.Load() != stateAlive
	if !start {
		p.mbox.scheduled = false
	}
	p.mbox.unlock()
	if start {
		rt.wg.Add(1)
		go p.run()
	}
	return p.pid, nil
}

func reflectNil(b Behaviour) bool {
	defer func() { _ = recover() }()
	return isNilPointer(b)
}

// ---- names ----

func validName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("%w %q: must be 1 to 255 bytes", ErrBadName, name)
	}
	return nil
}

func (rt *Runtime) register(name string, p *process) error {
	if err := validName(name); err != nil {
		return err
	}
	rt.namesMu.Lock()
	defer rt.namesMu.Unlock()
	if other, ok := rt.names[name]; ok && other.state.Load() != stateDead {
		return fmt.Errorf("%w: %q is %s", ErrNameTaken, name, other.pid)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state.Load() == stateDead {
		return NoProc
	}
	if p.name != "" {
		return fmt.Errorf("%w: process %s already has the name %q", ErrNameTaken, p.pid, p.name)
	}
	p.name = name
	rt.names[name] = p
	return nil
}

// Register gives a local process a name; the name dies with the process.
func (rt *Runtime) Register(name string, pid PID) error {
	p := rt.lookup(pid)
	if p == nil {
		return fmt.Errorf("register %q: %w: %s", name, NoProc, pid)
	}
	return rt.register(name, p)
}

// Unregister removes a name. It reports whether the name was registered.
func (rt *Runtime) Unregister(name string) bool {
	rt.namesMu.Lock()
	p, ok := rt.names[name]
	if ok {
		delete(rt.names, name)
	}
	rt.namesMu.Unlock()
	if ok {
		p.mu.Lock()
		if p.name == name {
			p.name = ""
		}
		p.mu.Unlock()
	}
	return ok
}

// Whereis returns the PID registered under name.
func (rt *Runtime) Whereis(name string) (PID, bool) {
	rt.namesMu.RLock()
	p, ok := rt.names[name]
	rt.namesMu.RUnlock()
	if !ok || p.state.Load() == stateDead {
		return PID{}, false
	}
	return p.pid, true
}

// Names returns every registered name, sorted.
func (rt *Runtime) Names() []string {
	rt.namesMu.RLock()
	out := make([]string, 0, len(rt.names))
	for n := range rt.names {
		out = append(out, n)
	}
	rt.namesMu.RUnlock()
	sort.Strings(out)
	return out
}

func (rt *Runtime) unregisterProcess(name string, p *process) {
	rt.namesMu.Lock()
	if rt.names[name] == p {
		delete(rt.names, name)
	}
	rt.namesMu.Unlock()
}

// ---- messaging from outside any process ----

// Send delivers msg to pid's mailbox as an info message. It never blocks
// on the receiver's work; a message to a dead process is dropped.
func (rt *Runtime) Send(to PID, msg any) { rt.send(PID{}, to, msg, kindInfo) }

// Cast delivers msg to pid's HandleCast.
func (rt *Runtime) Cast(to PID, msg any) { rt.send(PID{}, to, msg, kindCast) }

// SendName sends to a locally registered name; it reports whether the name
// exists.
func (rt *Runtime) SendName(name string, msg any) bool {
	pid, ok := rt.Whereis(name)
	if ok {
		rt.Send(pid, msg)
	}
	return ok
}

func (rt *Runtime) send(from, to PID, msg any, kind uint8) {
	if to.Node != rt.node {
		if r := rt.getRemote(); r != nil {
			r.Send(from, to, msg, kind == kindCast)
		}
		return
	}
	if p := rt.lookup(to); p != nil {
		p.enqueue(envelope{kind: kind, from: from, body: msg})
	}
}

// Call sends req to pid's HandleCall and waits for the reply, for the
// context's deadline or, without one, the runtime's CallTimeout. It
// returns an error wrapping NoProc if pid does not exist, Timeout if no
// reply came in time, the context's error if it ended first, or the
// callee's exit reason (in an *ExitError) if it died before replying.
func (rt *Runtime) Call(ctx context.Context, to PID, req any) (any, error) {
	return rt.call(ctx, PID{}, to, req)
}

// CallTimeout is Call with an explicit timeout.
func (rt *Runtime) CallTimeout(to PID, req any, timeout time.Duration) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return rt.call(ctx, PID{}, to, req)
}

// ExitError is the error of a Call whose callee exited before replying.
type ExitError struct {
	PID    PID
	Reason Reason
}

func (e *ExitError) Error() string { return fmt.Sprintf("process %s exited: %v", e.PID, e.Reason) }
func (e *ExitError) Unwrap() error { return e.Reason }

// CallError wraps NoProc and Timeout for a call.
type CallError struct {
	PID PID
	Err error
}

func (e *CallError) Error() string { return fmt.Sprintf("call %s: %v", e.PID, e.Err) }
func (e *CallError) Unwrap() error { return e.Err }

func (rt *Runtime) call(ctx context.Context, from, to PID, req any) (any, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if to.Node != rt.node {
		b := rt.remote.Load()
		if b == nil || b.r == nil {
			return nil, &CallError{PID: to, Err: NoConnection}
		}
		r := b.r
		if _, ok := ctx.Deadline(); !ok {
			if b.within != nil {
				// No context and timer per call: the router times it.
				return b.within.CallWithin(ctx, from, to, req, rt.callTimeout)
			}
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, rt.callTimeout)
			defer cancel()
		}
		return r.Call(ctx, from, to, req)
	}
	p := rt.lookup(to)
	if p == nil {
		return nil, &CallError{PID: to, Err: NoProc}
	}
	w := getWaiter()
	gen := w.gen()
	if !p.enqueue(envelope{kind: kindCall, from: from, body: req, reply: w, gen: gen}) {
		putWaiter(w)
		return nil, &CallError{PID: to, Err: NoProc}
	}
	var timeoutC <-chan time.Time
	if _, ok := ctx.Deadline(); !ok {
		w.timer.Reset(rt.callTimeout)
		timeoutC = w.timer.C
	}
	select {
	case r := <-w.ch:
		w.timer.Stop()
		putWaiter(w)
		return r.unpack(to)
	case <-timeoutC:
	case <-ctx.Done():
	}
	w.timer.Stop()
	if !w.state.CompareAndSwap(gen<<2, gen<<2|2) {
		// The reply won the race; take it.
		r := <-w.ch
		putWaiter(w)
		return r.unpack(to)
	}
	// w is abandoned: a late reply finds state 2 and is dropped; w is not
	// reused, so it can never answer a later call.
	if err := ctx.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, &CallError{PID: to, Err: Timeout}
		}
		return nil, &CallError{PID: to, Err: err}
	}
	return nil, &CallError{PID: to, Err: Timeout}
}

// Exit sends an exit signal with reason to pid, from no process. Kill
// cannot be trapped; Normal is ignored by processes that do not trap exits.
func (rt *Runtime) Exit(to PID, reason Reason) { rt.exit(PID{}, to, reason, false) }

func (rt *Runtime) exit(from, to PID, reason Reason, link bool) {
	if reason == nil {
		reason = Normal
	}
	if to.Node != rt.node {
		if r := rt.getRemote(); r != nil {
			r.Exit(from, to, reason, link)
		}
		return
	}
	if p := rt.lookup(to); p != nil {
		p.exitSignal(from, reason, link)
	}
}

// Kill ends pid at once with reason Killed and waits until it is gone
// from the process table. It returns NoProc if pid was not alive.
func (rt *Runtime) Kill(pid PID) error {
	p := rt.lookup(pid)
	if p == nil || p.state.Load() == stateDead {
		return &CallError{PID: pid, Err: NoProc}
	}
	p.exitSignal(PID{}, Kill, false)
	return nil
}

// WaitExit blocks until pid has exited and returns its exit reason
// (NoProc if it did not exist), or the context's error.
func (rt *Runtime) WaitExit(ctx context.Context, pid PID) (Reason, error) {
	ch := make(chan Reason, 1)
	ref := rt.monitor(watcher{fn: func(d DownMsg) { ch <- d.Reason }}, pid)
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		rt.demonitor(ref, pid)
		return nil, ctx.Err()
	}
}

// Watch calls fn once, from some goroutine, when pid exits (at once with
// NoProc if it is not alive). The returned function cancels the watch.
func (rt *Runtime) Watch(pid PID, fn func(DownMsg)) (cancel func()) {
	ref := rt.monitor(watcher{fn: fn}, pid)
	return func() { rt.demonitor(ref, pid) }
}

// ---- timers ----

// Timer is a pending SendAfter.
type Timer struct{ t *time.Timer }

// Cancel stops the timer; it reports whether the message was not yet sent.
func (t *Timer) Cancel() bool { return t != nil && t.t.Stop() }

// SendAfter sends msg to pid after d.
func (rt *Runtime) SendAfter(to PID, msg any, d time.Duration) *Timer {
	return &Timer{t: time.AfterFunc(d, func() { rt.Send(to, msg) })}
}

// ---- shutdown ----

// Shutdown stops every process: first the roots (processes without a live
// parent, such as top supervisors, which stop their trees in order) with
// reason Shutdown, for up to Config.ShutdownGrace, then whatever is left
// with Kill. It waits for the processes' goroutines until ctx ends.
func (rt *Runtime) Shutdown(ctx context.Context) error {
	rt.closed.Store(true)
	var roots []*process
	rt.table.Range(func(_, v any) bool {
		p := v.(*process)
		if p.parent.IsZero() || !rt.Alive(p.parent) {
			roots = append(roots, p)
		}
		return true
	})
	for _, p := range roots {
		p.exitSignal(PID{}, Shutdown, false)
	}
	grace := time.NewTimer(rt.shutdownGrace)
	defer grace.Stop()
	for _, p := range roots {
		ch := make(chan struct{})
		rt.monitor(watcher{fn: func(DownMsg) { close(ch) }}, p.pid)
		select {
		case <-ch:
		case <-ctx.Done():
		case <-grace.C:
		}
	}
	rt.table.Range(func(_, v any) bool {
		v.(*process).exitSignal(PID{}, Kill, false)
		return true
	})
	rt.stopAllTraces()
	done := make(chan struct{})
	go func() { rt.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("process: shutdown: some handlers did not return: %w", ctx.Err())
	}
}

// ---- remote signals (used by the node layer) ----

// DeliverRemote hands a message that arrived from another node to a local
// process. A PID of an earlier incarnation finds no process.
func (rt *Runtime) DeliverRemote(from, to PID, msg any, cast bool) {
	kind := kindInfo
	if cast {
		kind = kindCast
	}
	if p := rt.lookup(to); p != nil {
		p.enqueue(envelope{kind: kind, from: from, body: msg})
	}
}

// DeliverRemoteCall hands a call from another node to a local process;
// the answer goes back through Remote.Reply with from. It returns false if
// the process does not exist (the caller should answer NoProc).
func (rt *Runtime) DeliverRemoteCall(from From, to PID, req any) bool {
	p := rt.lookup(to)
	if p == nil {
		return false
	}
	// The letter's call information and the caller's From in one
	// allocation (an envelope would make two: the From, then the callInfo).
	rc := &remoteCall{from: from}
	rc.info = callInfo{from: from.pid, remote: &rc.from}
	l := letter{body: req, call: &rc.info}
	if !from.pid.IsZero() {
		l.from = &rc.info.from
	}
	return p.post(l)
}

// remoteCall is what a letter of a call from another node points to.
type remoteCall struct {
	info callInfo
	from From
}

// RemoteFrom builds the From of a call that came from another node; ref
// is the caller node's id for the call.
func RemoteFrom(caller PID, callerNode string, ref uint64) From {
	return From{pid: caller, node: callerNode, ref: ref}
}

// DeliverRemoteExit applies an exit signal from a remote process.
func (rt *Runtime) DeliverRemoteExit(from, to PID, reason Reason, link bool) {
	if p := rt.lookup(to); p != nil {
		p.exitSignal(from, reason, link)
	} else if link {
		return
	}
}

// DeliverRemoteLink adds the local half of a link requested by a remote
// process. If to is gone, the remote process gets an exit with NoProc.
func (rt *Runtime) DeliverRemoteLink(from, to PID) {
	if p := rt.lookup(to); p != nil && p.addLink(from) {
		return
	}
	if r := rt.getRemote(); r != nil {
		r.Exit(to, from, NoProc, true)
	}
}

// DeliverRemoteUnlink removes the local half of a link.
func (rt *Runtime) DeliverRemoteUnlink(from, to PID) {
	if p := rt.lookup(to); p != nil {
		p.removeLink(from)
	}
}

// DeliverRemoteMonitor registers a remote watcher on a local process; if
// the target does not exist the watcher gets a DOWN with NoProc at once.
func (rt *Runtime) DeliverRemoteMonitor(w PID, ref Ref, target PID) {
	rt.monitorWithRef(watcher{pid: w}, target, ref)
}

// DeliverRemoteDemonitor removes a remote watcher.
func (rt *Runtime) DeliverRemoteDemonitor(ref Ref, target PID) { rt.demonitor(ref, target) }

// DeliverRemoteDown hands a DOWN from another node to a local watcher.
func (rt *Runtime) DeliverRemoteDown(w PID, ref Ref, target PID, reason Reason) {
	if p := rt.lookup(w); p != nil {
		p.mu.Lock()
		_, ok := p.watching[ref]
		delete(p.watching, ref)
		p.mu.Unlock()
		if ok {
			p.enqueue(envelope{kind: kindInfo, from: target, body: DownMsg{Ref: ref, PID: target, Reason: reason}})
		}
	}
}

// ---- lost connections (used by the node layer) ----
//
// The node layer registers every link and monitor across a connection on
// that connection, and when the connection is lost it fires exactly those
// (node/doc.go, "A connection is a unit of fate"). The three methods below
// are how: each touches one process, and none calls back into Remote or
// blocks, so the node layer calls them with its own locks held.

// RemoteLinkLost breaks the link between the local process local and the
// remote process remote: local gets an exit signal with NoConnection from
// remote, if the link is still there (once: the signal removes it).
func (rt *Runtime) RemoteLinkLost(local, remote PID) {
	if p := rt.lookup(local); p != nil {
		p.exitSignal(remote, NoConnection, true)
	}
}

// RemoteMonitorLost delivers DOWN with NoConnection for the monitor ref
// that the local process w holds on the remote process target, if w still
// holds it (once: the DOWN ends the monitor).
func (rt *Runtime) RemoteMonitorLost(w PID, ref Ref, target PID) {
	rt.DeliverRemoteDown(w, ref, target, NoConnection)
}

// RemoteWatcherLost forgets the monitor ref that a remote process holds on
// the local process target: no DOWN will be sent for it.
func (rt *Runtime) RemoteWatcherLost(ref Ref, target PID) {
	if p := rt.lookup(target); p != nil {
		p.mu.Lock()
		delete(p.monitors, ref)
		p.mu.Unlock()
	}
}

// NodeDown fires every link and monitor between a local process and a
// process of node with NoConnection, exactly once each, and forgets the
// monitors processes there hold on local ones. It scans every process;
// the node layer does not use it (it fires what each lost connection
// carried, see above). It is for a Remote that keeps no such index.
func (rt *Runtime) NodeDown(node string) { rt.NodeDownIncarnation(node, 0) }

// NodeDownIncarnation is NodeDown for the incarnations of node up to inc
// (all, when inc is 0): links and monitors to processes of a newer
// incarnation, made after the node restarted, are kept.
func (rt *Runtime) NodeDownIncarnation(node string, inc uint64) {
	if node == rt.node {
		return
	}
	lost := func(p PID) bool { return p.Node == node && (inc == 0 || p.Incarnation <= inc) }
	rt.table.Range(func(_, v any) bool {
		p := v.(*process)
		var linked []PID
		var downs []DownMsg
		p.mu.Lock()
		for l := range p.links {
			if lost(l) {
				linked = append(linked, l)
			}
		}
		for ref, t := range p.watching {
			if lost(t) {
				downs = append(downs, DownMsg{Ref: ref, PID: t, Reason: NoConnection})
				delete(p.watching, ref)
			}
		}
		p.mu.Unlock()
		for _, l := range linked {
			p.exitSignal(l, NoConnection, true)
		}
		for _, d := range downs {
			p.enqueue(envelope{kind: kindInfo, from: d.PID, body: d})
		}
		// Remote watchers of local processes on the lost node are dropped.
		p.mu.Lock()
		for ref, w := range p.monitors {
			if w.fn == nil && lost(w.pid) {
				delete(p.monitors, ref)
			}
		}
		p.mu.Unlock()
		return true
	})
}
