package process

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

const (
	kindInfo uint8 = iota
	kindCast
	kindCall
)

const (
	stateAlive int32 = iota
	stateExiting
	stateDead
)

type envelope struct {
	kind   uint8
	from   PID
	body   any
	reply  *waiter // local call
	gen    uint64  // the reply slot's generation for this call
	remote *From   // call from another node
}

// letter is a message as the mailbox stores it: 32 bytes, a quarter of
// an envelope, since every byte of it crosses from the sender's core to
// the receiver's. An envelope becomes a letter in enqueue; a process
// sending to a local process builds the letter directly (post), with no
// allocation.
type letter struct {
	body any
	from *PID      // the sender; nil for code outside processes
	call *callInfo // nil for an info message, castMark for a cast
}

// callInfo is the part of a letter that only calls need.
type callInfo struct {
	from   PID
	reply  *waiter // local call
	gen    uint64  // the reply slot's generation for this call
	remote *From   // call from another node
}

var castMark = &callInfo{}

func (l *letter) kind() uint8 {
	switch l.call {
	case nil:
		return kindInfo
	case castMark:
		return kindCast
	}
	return kindCall
}

func (l *letter) sender() PID {
	if l.from == nil {
		return PID{}
	}
	return *l.from
}

// caller is the From of a call letter.
func (l *letter) caller() From {
	c := l.call
	if c.remote != nil {
		return *c.remote
	}
	return From{pid: c.from, w: c.reply, gen: c.gen}
}

// toLetter converts an envelope. A sender PID (other than zero) and the
// call fields are copied to the heap: one small allocation for a call, or
// for a message from a remote process or from the runtime on a process's
// behalf (exit and down messages); a local process's sends avoid it.
func (e *envelope) toLetter() letter {
	l := letter{body: e.body}
	switch e.kind {
	case kindCall:
		c := &callInfo{from: e.from, reply: e.reply, gen: e.gen, remote: e.remote}
		l.call = c
		if !e.from.IsZero() {
			l.from = &c.from
		}
		return l
	case kindCast:
		l.call = castMark
	}
	if !e.from.IsZero() {
		from := e.from
		l.from = &from
	}
	return l
}

// From identifies the caller of a Call; pass it to Proc.Reply.
type From struct {
	pid  PID
	w    *waiter
	gen  uint64
	node string // caller's node for remote calls
	ref  uint64 // caller node's id of the call
}

// PID returns the caller's PID (the zero PID for code outside processes).
func (f From) PID() PID { return f.pid }

// Ref returns the caller node's id for a remote call (0 for local calls).
func (f From) Ref() uint64 { return f.ref }

// Node returns the caller's node for a remote call ("" for local calls).
func (f From) Node() string { return f.node }

type callResult struct {
	val any
	err error
}

func (r callResult) unpack(to PID) (any, error) {
	if r.err != nil {
		return nil, r.err
	}
	if e, ok := r.val.(error); ok {
		return nil, e
	}
	return r.val, nil
}

// waiter is the reply slot of one local Call. Its state holds a
// generation (high bits) and a status (low 2 bits: 0 waiting, 1 replied,
// 2 abandoned by a caller that timed out). A reply must name the current
// generation, and a waiter goes back to the pool only with a new one, so a
// late reply (say, from the handler of a killed process) can never reach a
// later call that reuses the slot.
type waiter struct {
	ch    chan callResult
	state atomic.Uint64
	timer *time.Timer
}

func (w *waiter) gen() uint64 { return w.state.Load() >> 2 }

var waiterPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &waiter{ch: make(chan callResult, 1), timer: t}
}}

func getWaiter() *waiter { return waiterPool.Get().(*waiter) }

func putWaiter(w *waiter) {
	w.state.Store((w.gen() + 1) << 2)
	waiterPool.Put(w)
}

func (w *waiter) deliver(gen uint64, r callResult) bool {
	if w.state.CompareAndSwap(gen<<2, gen<<2|1) {
		w.ch <- r
		return true
	}
	return false
}

type watcher struct {
	pid PID           // a process (local or remote) that gets a DownMsg
	fn  func(DownMsg) // or a Go callback (WaitExit, supervisors, tests)
}

type process struct {
	rt      *Runtime
	pid     PID
	self    Proc
	beh     Behaviour
	fn      func(*Proc) error
	wake    chan struct{} // function processes only
	parent  PID
	behName string
	started int64

	// The small fields sit together, so that padding does not push the
	// struct out of the 416-byte size class (idle memory).
	state    atomic.Int32
	trap     atomic.Bool
	system   bool
	status   atomic.Int32 // statusWaiting / statusRunning / statusExiting
	restarts int32
	out      atomic.Uint64
	lastTo   atomic.Pointer[process] // the last local destination of sendLocal
	tracers  atomic.Pointer[[]*Trace]

	mu         sync.Mutex
	mbox       mailbox
	exitReason Reason
	name       string
	links      map[PID]struct{}
	monitors   map[Ref]watcher // who watches this process
	watching   map[Ref]PID     // whom this process watches
	deferred   map[*waiter]uint64
	ctx        context.Context
	cancel     context.CancelFunc
	curCall    any
	curSince   int64
	curFrom    From
}

const (
	statusWaiting int32 = iota
	statusRunning
	statusExiting
)

// enqueue appends to the mailbox and schedules the process. It returns
// false if the process is dead (calls are then answered by the caller).
//
// The mailbox lock, not mu, orders it with finalize: finalize marks the
// process dead and then takes the mailbox under that lock, so a message
// is either seen by finalize or refused here.
func (p *process) enqueue(e envelope) bool { return p.post(e.toLetter()) }

// sendLocal is Proc.Send and Proc.Cast: a letter to a local process
// carries a pointer to the sender's own PID, so it needs no allocation.
func (p *process) sendLocal(to PID, msg any, kind uint8) {
	rt := p.rt
	if to.Node != rt.node {
		rt.send(p.pid, to, msg, kind)
		return
	}
	// The last destination, cached: the process table is a sync.Map,
	// whose lookup (hashing an interface) was a tenth of a send's time.
	// A PID names one process for ever (IDs are not reused), so a cached
	// process stays right; once dead, it refuses the letter, as a lookup
	// would have found nothing.
	q := p.lastTo.Load()
	if q == nil || q.pid.ID != to.ID || q.pid.Incarnation != to.Incarnation {
		if q = rt.lookup(to); q == nil {
			return
		}
		p.lastTo.Store(q)
	}
	l := letter{body: msg, from: &p.pid}
	if kind == kindCast {
		l.call = castMark
	}
	q.post(l)
}

// post is enqueue for a letter.
func (p *process) post(e letter) bool {
	m := &p.mbox
	m.lock()
	if p.state.Load() == stateDead {
		m.unlock()
		return false
	}
	m.push(e)
	if p.fn != nil {
		m.unlock()
		select {
		case p.wake <- struct{}{}:
		default:
		}
		return true
	}
	start := !m.scheduled
	m.scheduled = true
	m.unlock()
	if start {
		p.rt.wg.Add(1)
		go p.run()
	}
	return true
}

// turnSlice is how long a behaviour's loop runs before it yields its
// thread to other goroutines (runtime.Gosched), so that a flooded process
// cannot delay the others; the loop reads the clock every turnCheck
// messages. A yield puts the goroutine on the scheduler's global queue,
// behind everything runnable, so yielding often is costly: a budget of 512
// messages halved the throughput of 100 pairs (docs/ARCHITECTURE.md).
const (
	turnSlice = 500 * time.Microsecond
	turnCheck = 64
)

// run is the loop of a behaviour process. It exists only while there is
// work: an idle process costs no goroutine. It takes every queued chunk
// at once (one lock per take, not per message) and handles them outside
// the lock, pooling each chunk as it is done.
//
// Its frame is kept small (the clock, the yield and the chunk keeping are
// in helpers that are not inlined): run is at the bottom of every
// handler's stack, and a goroutine starts with a small stack, so each byte
// of run's frame is one less for the handler before the stack must grow
// by copying. When run's frame grew by 96 bytes, a local call's round
// trip doubled, every reply growing the echo's stack (docs/ARCHITECTURE.md).
func (p *process) run() {
	defer p.rt.wg.Done()
	handled := 0
	var turn int64 // monoNow at the start of the turn; 0 before the first take
	// done is a chunk this loop has handled, kept (reset) to be handed
	// to the senders as the mailbox's spare at the next take.
	var done *chunk
	for {
		c := p.take(done, turn != 0)
		if c == nil {
			return
		}
		done = nil // take gave it to the mailbox or pooled it
		if turn == 0 {
			turn = monoNow() | 1
		}
		for c != nil {
			stopped := false
			for c.r < c.w {
				if p.state.Load() != stateAlive {
					stopped = true
					break
				}
				e := &c.e[c.r]
				c.r++
				if err := p.handle(e); err != nil {
					p.beginExit(err)
					stopped = true
					break
				}
				if handled++; handled == turnCheck {
					handled = 0
					turn = yieldIfLong(turn)
				}
			}
			if stopped {
				p.putBack(c)
				break
			}
			next := c.next
			done = keepOrPool(done, c)
			c = next
		}
	}
}

// take is the top of run's loop: under the mailbox lock it takes every
// queued chunk, handing done (a handled chunk, or nil) to the mailbox as
// the spare. It returns nil when the loop must end: the mailbox is empty
// (the loop gives up its goroutine), or the process is exiting (take runs
// Terminate) or dead. running tells whether this loop has taken before.
//
//go:noinline
func (p *process) take(done *chunk, running bool) *chunk {
	m := &p.mbox
	m.lock()
	switch p.state.Load() {
	case stateDead:
		m.scheduled = false
		spare := m.takeSpare()
		m.unlock()
		release2(done, spare)
		return nil
	case stateExiting:
		spare := m.takeSpare()
		m.unlock()
		release2(done, spare)
		p.mu.Lock()
		reason := p.exitReason
		p.mu.Unlock()
		p.terminate(reason)
		return nil
	}
	c := m.takeAll()
	if c == nil {
		// Under the mailbox lock, so that a loop started after this
		// one ends cannot have its status overwritten.
		if running {
			p.status.Store(statusWaiting)
		}
		m.scheduled = false
		spare := m.takeSpare()
		m.unlock()
		release2(done, spare)
		return nil
	}
	if done != nil {
		done = m.give(done)
	}
	m.unlock()
	if done != nil {
		chunkPool.Put(done)
	}
	if !running {
		// Once per loop, not per chunk: senders read the state next to
		// it on every message.
		p.status.Store(statusRunning)
	}
	return c
}

// monoEpoch is the origin of monoNow.
var monoEpoch = time.Now()

// monoNow reads the monotonic clock, in nanoseconds since monoEpoch.
//
//go:noinline
func monoNow() int64 { return int64(time.Since(monoEpoch)) }

// yieldIfLong yields the thread if the turn that began at start (monoNow)
// has lasted turnSlice, and returns the start of the turn that follows.
//
//go:noinline
func yieldIfLong(start int64) int64 {
	if monoNow()-start < int64(turnSlice) {
		return start
	}
	runtime.Gosched()
	return monoNow()
}

// keepOrPool keeps c, a handled chunk, as the loop's done chunk if it has
// none (see run), or pools it.
//
//go:noinline
func keepOrPool(done, c *chunk) *chunk {
	if done != nil {
		putChunk(c)
		return done
	}
	c.reset()
	return c
}

// release2 pools the chunks a loop holds back when it ends (either nil).
//
//go:noinline
func release2(done, spare *chunk) {
	if done != nil {
		chunkPool.Put(done)
	}
	if spare != nil {
		chunkPool.Put(spare)
	}
}

// putBack returns the unhandled rest of a chain of chunks to the head of
// the mailbox, so that a terminating process answers the calls among it.
// If the process was killed meanwhile, finalize has already answered the
// mailbox but not this chain: its calls are answered here.
func (p *process) putBack(c *chunk) {
	p.mbox.lock()
	if p.state.Load() != stateDead {
		p.mbox.untake(c)
		p.mbox.unlock()
		return
	}
	p.mbox.unlock()
	p.mu.Lock()
	reason := p.exitReason
	p.mu.Unlock()
	callErr := &ExitError{PID: p.pid, Reason: reason}
	each(c, func(e *letter) {
		if e.call != nil && e.call != castMark {
			p.replyTo(e.caller(), nil, callErr)
		}
	})
	release(c)
}

// beginExit marks the process as exiting with reason (first reason wins).
func (p *process) beginExit(reason Reason) {
	p.mu.Lock()
	if p.state.Load() == stateAlive {
		p.state.Store(stateExiting)
		p.exitReason = reason
	}
	p.mu.Unlock()
}

func (p *process) handle(e *letter) (err error) {
	if t := p.tracers.Load(); t != nil {
		traceIn(*t, p.pid, e)
	}
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	switch e.call {
	case nil:
		return p.beh.HandleInfo(&p.self, e.body)
	case castMark:
		return p.beh.HandleCast(&p.self, e.body)
	}
	from := e.caller()
	p.mu.Lock()
	p.curCall, p.curSince, p.curFrom = e.body, time.Now().UnixNano(), from
	p.mu.Unlock()
	reply, herr := p.callHandler(from, e.body)
	p.mu.Lock()
	p.curCall, p.curSince, p.curFrom = nil, 0, From{}
	p.mu.Unlock()
	if herr != nil {
		// The caller learns why the process stopped.
		p.replyTo(from, nil, &ExitError{PID: p.pid, Reason: herr})
		return herr
	}
	if reply == NoReply {
		if from.w != nil {
			p.mu.Lock()
			if p.deferred == nil {
				p.deferred = make(map[*waiter]uint64)
			}
			p.deferred[from.w] = from.gen
			p.mu.Unlock()
		}
		return nil
	}
	p.replyTo(from, reply, nil)
	return nil
}

func (p *process) callHandler(from From, req any) (reply any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return p.beh.HandleCall(&p.self, from, req)
}

func (p *process) replyTo(from From, val any, err error) {
	if from.w != nil {
		from.w.deliver(from.gen, callResult{val: val, err: err})
		return
	}
	if from.node != "" {
		if r := p.rt.getRemote(); r != nil {
			r.Reply(from, val, err)
		}
	}
}

func (p *process) callInit() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return p.beh.Init(&p.self)
}

// terminate runs Terminate (for behaviours) and then finalizes.
func (p *process) terminate(reason Reason) {
	p.status.Store(statusExiting)
	if p.beh != nil && p.state.Load() != stateDead {
		func() {
			defer func() {
				if r := recover(); r != nil {
					p.rt.log.Warn("terminate panicked", "pid", p.pid, "panic", r)
				}
			}()
			p.beh.Terminate(&p.self, reason)
		}()
	}
	p.finalize(reason, false)
}

func (p *process) runFunc() {
	defer p.rt.wg.Done()
	p.status.Store(statusRunning)
	var reason Reason
	func() {
		defer func() {
			if r := recover(); r != nil {
				reason = &PanicError{Value: r, Stack: debug.Stack()}
			}
		}()
		reason = p.fn(&p.self)
	}()
	if reason == nil {
		reason = Normal
	}
	p.mu.Lock()
	if p.state.Load() == stateExiting {
		reason = p.exitReason
	}
	p.mu.Unlock()
	p.finalize(reason, false)
}

// exitSignal applies an exit signal from `from` (zero for the runtime).
func (p *process) exitSignal(from PID, reason Reason, link bool) {
	p.mu.Lock()
	if p.state.Load() == stateDead {
		p.mu.Unlock()
		return
	}
	if link {
		if _, ok := p.links[from]; !ok {
			// The link was removed meanwhile (Unlink): no signal.
			p.mu.Unlock()
			return
		}
		delete(p.links, from)
	}
	if reason == Kill && !link {
		p.mu.Unlock()
		p.finalize(Killed, true)
		return
	}
	// A behaviour treats an exit from its parent as an order to stop even
	// when trapping exits, as OTP's gen_server does.
	// So is the runtime's own shutdown order, for every process.
	parentOrder := (p.beh != nil && !p.parent.IsZero() && from == p.parent) ||
		(from.IsZero() && p.rt.closed.Load())
	if p.trap.Load() && !parentOrder && from != p.pid {
		p.mu.Unlock()
		p.enqueue(envelope{kind: kindInfo, from: from, body: ExitMsg{From: from, Reason: reason}})
		return
	}
	if IsNormal(reason) && from != p.pid {
		p.mu.Unlock()
		return
	}
	if p.state.Load() == stateExiting {
		p.mu.Unlock()
		return
	}
	p.state.Store(stateExiting)
	p.exitReason = reason
	start := false
	if p.fn == nil {
		p.mbox.lock()
		start = !p.mbox.scheduled
		p.mbox.scheduled = true
		p.mbox.unlock()
	}
	cancel := p.cancel
	p.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if p.fn != nil {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	if start {
		p.rt.wg.Add(1)
		go p.run()
	}
}

// finalize makes the process dead: it leaves the table and the names,
// answers pending calls, and fires links and monitors. It runs once.
func (p *process) finalize(reason Reason, killed bool) {
	p.mu.Lock()
	if p.state.Load() == stateDead {
		p.mu.Unlock()
		return
	}
	p.state.Store(stateDead)
	p.status.Store(statusExiting)
	p.exitReason = reason
	p.mbox.lock()
	queue := p.mbox.takeAll()
	// The loop leaves no spare once it sees the process dead (it checks
	// under this lock), so this one is the last.
	spare := p.mbox.takeSpare()
	p.mbox.unlock()
	if spare != nil {
		chunkPool.Put(spare)
	}
	p.lastTo.Store(nil) // a dead process sends no more; keep nobody alive
	links, monitors, watching, deferred := p.links, p.monitors, p.watching, p.deferred
	p.links, p.monitors, p.watching, p.deferred = nil, nil, nil, nil
	name := p.name
	p.name = ""
	cancel := p.cancel
	cur := p.curFrom
	p.curCall, p.curFrom = nil, From{}
	p.mu.Unlock()

	rt := p.rt
	callErr := &ExitError{PID: p.pid, Reason: reason}
	if cur.w != nil || cur.node != "" {
		// Killed while handling a call: the caller learns it now, before
		// the context is cancelled, and the handler's late reply finds the
		// slot already answered.
		p.replyTo(cur, nil, callErr)
	}
	if cancel != nil {
		cancel()
	}
	if p.fn != nil {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	rt.table.Delete(p.pid.ID)
	rt.count.Add(-1)
	rt.exited.Add(1)
	if !isShutdown(reason) && !errors.Is(reason, Killed) {
		rt.crashed.Add(1)
		rt.log.Warn("process crashed", "pid", p.pid, "behaviour", p.behName, "reason", reason)
	}
	if name != "" {
		rt.unregisterProcess(name, p)
	}
	if t := p.tracers.Load(); t != nil {
		for _, tr := range *t {
			tr.record(TraceEvent{Time: time.Now(), PID: p.pid, Dir: "exit", Kind: "exit", Message: fmt.Sprint(reason)})
		}
	}
	each(queue, func(e *letter) {
		if e.call != nil && e.call != castMark {
			p.replyTo(e.caller(), nil, callErr)
		}
	})
	release(queue)
	for w, gen := range deferred {
		w.deliver(gen, callResult{err: callErr})
	}
	for ref, target := range watching {
		rt.demonitorFrom(p.pid, ref, target)
	}
	for l := range links {
		rt.exit(p.pid, l, reason, true)
	}
	for ref, w := range monitors {
		rt.fireDown(w, DownMsg{Ref: ref, PID: p.pid, Reason: reason})
	}
}

// ---- links and monitors ----

func (p *process) addLink(other PID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state.Load() == stateDead {
		return false
	}
	if p.links == nil {
		p.links = make(map[PID]struct{})
	}
	p.links[other] = struct{}{}
	return true
}

func (p *process) removeLink(other PID) {
	p.mu.Lock()
	delete(p.links, other)
	p.mu.Unlock()
}

func (rt *Runtime) fireDown(w watcher, d DownMsg) {
	if w.fn != nil {
		w.fn(d)
		return
	}
	if w.pid.Node != rt.node {
		if r := rt.getRemote(); r != nil {
			r.Down(w.pid, d.Ref, d.PID, d.Reason)
		}
		return
	}
	if wp := rt.lookup(w.pid); wp != nil {
		wp.mu.Lock()
		_, ok := wp.watching[d.Ref]
		delete(wp.watching, d.Ref)
		wp.mu.Unlock()
		if ok {
			wp.enqueue(envelope{kind: kindInfo, from: d.PID, body: d})
		}
	}
}

func (rt *Runtime) monitor(w watcher, target PID) Ref {
	ref := rt.newRef()
	rt.monitorWithRef(w, target, ref)
	return ref
}

func (rt *Runtime) monitorWithRef(w watcher, target PID, ref Ref) {
	if target.Node != rt.node {
		r := rt.getRemote()
		if r == nil || w.fn != nil {
			// Go-side watches of remote processes are not supported;
			// the node layer offers its own.
			rt.fireDown(w, DownMsg{Ref: ref, PID: target, Reason: NoConnection})
			return
		}
		r.Monitor(w.pid, ref, target)
		return
	}
	p := rt.lookup(target)
	if p != nil {
		p.mu.Lock()
		if p.state.Load() != stateDead {
			if p.monitors == nil {
				p.monitors = make(map[Ref]watcher)
			}
			p.monitors[ref] = w
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
	rt.fireDown(w, DownMsg{Ref: ref, PID: target, Reason: NoProc})
}

func (rt *Runtime) demonitor(ref Ref, target PID) { rt.demonitorFrom(PID{}, ref, target) }

func (rt *Runtime) demonitorFrom(w PID, ref Ref, target PID) {
	if target.Node != rt.node {
		if r := rt.getRemote(); r != nil && !w.IsZero() {
			r.Demonitor(w, ref, target)
		}
		return
	}
	if p := rt.lookup(target); p != nil {
		p.mu.Lock()
		delete(p.monitors, ref)
		p.mu.Unlock()
	}
}

func isNilPointer(b any) bool {
	v := reflect.ValueOf(b)
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Interface, reflect.Chan:
		return v.IsNil()
	}
	return false
}
