package process

import (
	"context"
	"time"
)

// Proc is a process as seen from its own callbacks (or its own function,
// for SpawnFunc). Its methods act on behalf of the process: messages it
// sends carry its PID, links and monitors belong to it.
type Proc struct{ p *process }

// Self returns the process's PID.
func (c *Proc) Self() PID { return c.p.pid }

// Runtime returns the runtime the process runs on.
func (c *Proc) Runtime() *Runtime { return c.p.rt }

// Parent returns the PID of the process that started this one (zero if
// none).
func (c *Proc) Parent() PID { return c.p.parent }

// Context returns a context that is cancelled when the process is ordered
// to exit or killed. Long handlers should watch it: Go cannot stop a
// goroutine from outside, so a handler that ignores it keeps running after
// its process is gone (see docs/ARCHITECTURE.md).
func (c *Proc) Context() context.Context {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx == nil {
		p.ctx, p.cancel = context.WithCancel(context.Background())
		if p.state.Load() != stateAlive {
			p.cancel()
		}
	}
	return p.ctx
}

// Send sends msg to pid as an info message.
func (c *Proc) Send(to PID, msg any) {
	c.out(to, kindInfo, msg)
	c.p.sendLocal(to, msg, kindInfo)
}

// Cast sends msg to pid's HandleCast.
func (c *Proc) Cast(to PID, msg any) {
	c.out(to, kindCast, msg)
	c.p.sendLocal(to, msg, kindCast)
}

func (c *Proc) out(to PID, kind uint8, msg any) {
	c.p.out.Add(1)
	if t := c.p.tracers.Load(); t != nil {
		traceOut(*t, c.p.pid, to, kind, msg)
	}
}

// Call calls pid and waits for the reply (see Runtime.Call). A process
// that calls itself would wait forever; that returns an error at once.
func (c *Proc) Call(ctx context.Context, to PID, req any) (any, error) {
	if to == c.p.pid {
		return nil, &CallError{PID: to, Err: errCallSelf}
	}
	c.out(to, kindCall, req)
	return c.p.rt.call(ctx, c.p.pid, to, req)
}

var errCallSelf = stdReason("calling_self")

// Reply answers a call that HandleCall left with NoReply, or a Request
// received by a function process.
func (c *Proc) Reply(from From, reply any) {
	if from.w != nil {
		c.p.mu.Lock()
		delete(c.p.deferred, from.w)
		c.p.mu.Unlock()
	}
	c.p.replyTo(from, reply, nil)
}

// Spawn starts a child process whose parent is this process.
func (c *Proc) Spawn(b Behaviour, opts ...SpawnOption) (PID, error) {
	return c.p.rt.spawn(c.p, b, nil, opts, false)
}

// SpawnLink starts a child linked to this process.
func (c *Proc) SpawnLink(b Behaviour, opts ...SpawnOption) (PID, error) {
	return c.p.rt.spawn(c.p, b, nil, opts, true)
}

// SpawnFuncLink starts a linked function process.
func (c *Proc) SpawnFuncLink(fn func(*Proc) error, opts ...SpawnOption) (PID, error) {
	return c.p.rt.spawn(c.p, nil, fn, opts, true)
}

// SpawnMonitor starts a child and monitors it.
func (c *Proc) SpawnMonitor(b Behaviour, opts ...SpawnOption) (PID, Ref, error) {
	pid, err := c.p.rt.spawn(c.p, b, nil, opts, false)
	if err != nil {
		return PID{}, Ref{}, err
	}
	return pid, c.Monitor(pid), nil
}

// Link links this process with pid: when either exits abnormally, the
// other gets an exit signal. Linking to a process that does not exist
// sends this process an exit signal with NoProc.
func (c *Proc) Link(pid PID) {
	p := c.p
	if pid == p.pid || !p.addLink(pid) {
		return
	}
	rt := p.rt
	if pid.Node != rt.node {
		if r := rt.getRemote(); r != nil {
			r.Link(p.pid, pid)
			return
		}
		p.exitSignal(pid, NoConnection, true)
		return
	}
	if other := rt.lookup(pid); other != nil && other.addLink(p.pid) {
		return
	}
	p.exitSignal(pid, NoProc, true)
}

// Unlink removes a link; no exit signal from pid arrives afterwards.
func (c *Proc) Unlink(pid PID) {
	p := c.p
	p.removeLink(pid)
	rt := p.rt
	if pid.Node != rt.node {
		if r := rt.getRemote(); r != nil {
			r.Unlink(p.pid, pid)
		}
		return
	}
	if other := rt.lookup(pid); other != nil {
		other.removeLink(p.pid)
	}
}

// Monitor watches pid: exactly one DownMsg arrives when it exits, at once
// with NoProc if it is not alive, or NoConnection if its node is lost.
func (c *Proc) Monitor(pid PID) Ref {
	p := c.p
	ref := p.rt.newRef()
	p.mu.Lock()
	if p.watching == nil {
		p.watching = make(map[Ref]PID)
	}
	p.watching[ref] = pid
	p.mu.Unlock()
	p.rt.monitorWithRef(watcher{pid: p.pid}, pid, ref)
	return ref
}

// Demonitor cancels a monitor; no DownMsg for it arrives afterwards
// (one already in the mailbox stays there, as with erlang:demonitor/1).
func (c *Proc) Demonitor(ref Ref) {
	p := c.p
	p.mu.Lock()
	target, ok := p.watching[ref]
	delete(p.watching, ref)
	p.mu.Unlock()
	if ok {
		p.rt.demonitorFrom(p.pid, ref, target)
	}
}

// TrapExits turns exit signals into ExitMsg messages (true) or back into
// exits (false). Kill is never trapped.
func (c *Proc) TrapExits(on bool) { c.p.trap.Store(on) }

// Exit sends an exit signal to pid from this process. Exit(Self(), r)
// stops this process with reason r, even with Normal.
func (c *Proc) Exit(pid PID, reason Reason) { c.p.rt.exit(c.p.pid, pid, reason, false) }

// Register gives this process a local name.
func (c *Proc) Register(name string) error { return c.p.rt.register(name, c.p) }

// SendAfter sends msg to pid after d, from this process.
func (c *Proc) SendAfter(to PID, msg any, d time.Duration) *Timer {
	from := c.p.pid
	rt := c.p.rt
	return &Timer{t: time.AfterFunc(d, func() { rt.send(from, to, msg, kindInfo) })}
}

// Receive waits for the next message of a function process. A call
// arrives as a Request. It returns an error when ctx ends, or the exit
// reason when the process has been ordered to exit.
func (c *Proc) Receive(ctx context.Context) (any, error) {
	p := c.p
	if p.fn == nil {
		return nil, ErrNotFuncProcess
	}
	if ctx == nil {
		ctx = context.Background()
	}
	for {
		p.mu.Lock()
		if p.state.Load() != stateAlive {
			r := p.exitReason
			p.mu.Unlock()
			if r == nil {
				r = Killed
			}
			return nil, r
		}
		p.mbox.lock()
		e, ok := p.mbox.pop()
		p.mbox.unlock()
		if ok {
			p.mu.Unlock()
			if t := p.tracers.Load(); t != nil {
				traceIn(*t, p.pid, &e)
			}
			if e.kind() == kindCall {
				return Request{From: e.caller(), Body: e.body}, nil
			}
			return e.body, nil
		}
		p.status.Store(statusWaiting)
		p.mu.Unlock()
		select {
		case <-p.wake:
			p.status.Store(statusRunning)
		case <-ctx.Done():
			p.status.Store(statusRunning)
			return nil, ctx.Err()
		}
	}
}
