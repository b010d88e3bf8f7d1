package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/transport"
)

// remote routes the runtime's signals for other nodes over node
// connections. What a frame sets up (a link, a monitor, a call) is
// registered on the connection that carries it, in the same step, and
// fires with NoConnection if that connection is lost (doc.go, rule 3);
// what cannot be sent because the node cannot be connected fails at once
// (rule 5).
type remote struct{ n *Node }

func (r remote) Send(from, to process.PID, msg any, cast bool) {
	e := getEncoder()
	defer putEncoder(e)
	e.byte1(frameSend)
	e.pid(from)
	e.pid(to)
	if cast {
		e.byte1(1)
	} else {
		e.byte1(0)
	}
	if err := e.value(msg); err != nil {
		r.n.stats.Dropped.Add(1)
		r.n.log.Warn("message to remote process dropped", "to", to, "err", err)
		return
	}
	if ok, err := r.n.send(to.Node, e.b, reg{}); ok && err != nil {
		r.n.log.Warn("message to remote process dropped", "to", to, "err", err)
	}
}

func (r remote) Call(ctx context.Context, from, to process.PID, req any) (any, error) {
	return r.CallWithin(ctx, from, to, req, 0)
}

// CallWithin is Call that also gives up after timeout (0: only when ctx
// ends), timed with the waiting call's own reused timer rather than a
// context and timer made for each call (process.RemoteCallWithin).
func (r remote) CallWithin(ctx context.Context, from, to process.PID, req any, timeout time.Duration) (any, error) {
	n := r.n
	ref := n.nextRef.Add(1)
	e := getEncoder()
	e.byte1(frameCall)
	e.pid(from)
	e.pid(to)
	e.uint(ref)
	if err := e.value(req); err != nil {
		putEncoder(e)
		return nil, fmt.Errorf("call %s: %w", to, err)
	}
	pc := getPendingCall()
	if ctx.Done() == nil && !inThisProcess(to.Node) {
		// Nothing to select on but the answer and the timeout, and a peer
		// in another process: wait in the poller (callPipe).
		pc.wake = getCallPipe()
	}
	cp := pc.wake
	ok, err := n.send(to.Node, e.b, reg{kind: regCall, call: pc, callID: ref})
	putEncoder(e)
	if !ok || err != nil {
		// Not registered: nothing will answer.
		putPendingCall(pc)
		if cp != nil {
			putCallPipe(cp)
		}
		if !ok {
			return nil, &process.CallError{PID: to, Err: &ConnectionLostError{Node: to.Node, Cause: err}}
		}
		return nil, fmt.Errorf("call %s: %w", to, err) // the frame was too large
	}
	if cp != nil {
		if res, ok := n.waitPiped(pc, cp, to, ref, timeout); ok {
			return unpackRemote(to, res)
		}
		// The pipe failed (closed, not reused): wait on the channel.
	}
	var timeoutC <-chan time.Time
	if timeout > 0 {
		pc.timer.Reset(timeout)
		timeoutC = pc.timer.C
	}
	select {
	case res := <-pc.ch:
		// completeCall or the lost connection took pc off the connection
		// before sending: nothing else refers to it.
		pc.timer.Stop()
		putPendingCall(pc)
		return unpackRemote(to, res)
	case <-timeoutC:
	case <-ctx.Done():
	}
	pc.timer.Stop()
	if !n.peer(to.Node, true).forgetCall(pc, ref) {
		// The answer was taken off the connection and is on its way
		// (one send per registration, right after the peer's mu).
		res := <-pc.ch
		putPendingCall(pc)
		return unpackRemote(to, res)
	}
	// Taken off by us: no answer can come any more.
	putPendingCall(pc)
	if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, &process.CallError{PID: to, Err: err}
	}
	return nil, &process.CallError{PID: to, Err: process.Timeout}
}

// waitPiped waits for the answer to the registered call pc on its pipe
// cp, at most timeout (none if not positive), and pools pc and cp once it
// has the answer. A timeout takes the call off the connection (unless its
// answer is already on its way) and answers a Timeout CallError. It
// reports false, with pc still registered and to be waited for on its
// channel, if the pipe failed; cp is closed then.
func (n *Node) waitPiped(pc *pendingCall, cp *callPipe, to process.PID, ref uint64, timeout time.Duration) (callResult, bool) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	var b [1]byte
	err := cp.r.SetReadDeadline(deadline)
	if err == nil {
		_, err = cp.r.Read(b[:])
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		if n.peer(to.Node, true).forgetCall(pc, ref) {
			// Taken off by us: no answer, and no byte, can come any more.
			putPendingCall(pc)
			putCallPipe(cp)
			return callResult{err: &process.CallError{PID: to, Err: process.Timeout}}, true
		}
		// The answer was taken off the connection; its byte follows it.
		err = cp.r.SetReadDeadline(time.Time{})
		if err == nil {
			_, err = cp.r.Read(b[:])
		}
		if err != nil {
			cp.close()
			res := <-pc.ch
			putPendingCall(pc)
			return res, true
		}
	} else if err != nil {
		if errors.Is(err, os.ErrNoDeadline) {
			pipesOff.Store(true)
		}
		cp.close()
		return callResult{}, false
	}
	res := <-pc.ch
	putPendingCall(pc)
	putCallPipe(cp)
	return res, true
}

func unpackRemote(to process.PID, res callResult) (any, error) {
	if errors.Is(res.err, process.NoConnection) {
		return nil, &process.CallError{PID: to, Err: res.err}
	}
	if res.err != nil {
		return nil, res.err
	}
	if e, ok := res.val.(error); ok {
		return nil, e
	}
	return res.val, nil
}

func (r remote) Reply(from process.From, reply any, err error) {
	e := getEncoder()
	defer putEncoder(e)
	e.byte1(frameReply)
	e.uint(from.Ref())
	if err == nil {
		if re, ok := reply.(error); ok {
			e.byte1(replyAppErr)
			e.str(re.Error())
		} else {
			e.byte1(replyOK)
			if encErr := e.value(reply); encErr != nil {
				// The caller must hear something: send the encoding error.
				e.b = e.b[:0]
				e.byte1(frameReply)
				e.uint(from.Ref())
				e.byte1(replyAppErr)
				e.str(fmt.Sprintf("reply not sent: %v", encErr))
			}
		}
	} else {
		replyErr(e, err)
	}
	if len(e.b) > r.n.maxFrame {
		e.b = e.b[:0]
		e.byte1(frameReply)
		e.uint(from.Ref())
		e.byte1(replyAppErr)
		e.str(fmt.Sprintf("reply not sent: %v", transport.ErrFrameTooLarge))
	}
	// The call came over the current connection; if that is lost, so is
	// the call, and the caller has been told.
	r.n.answer(from.Node(), e.b, reg{})
}

// replyErr encodes the error answer of a reply. Apart from Reply, so that
// the targets of its errors.As (which escape to the heap) cost nothing on
// a successful reply: they were two allocations per remote call.
func replyErr(e *encoder, err error) {
	var (
		ee *process.ExitError
		ce *process.CallError
	)
	switch {
	case errors.As(err, &ee):
		e.byte1(replyExit)
		e.pid(ee.PID)
		e.str(reasonText(ee.Reason))
	case errors.As(err, &ce):
		e.byte1(replyCallErr)
		e.pid(ce.PID)
		e.str(reasonText(ce.Err))
	default:
		e.byte1(replyAppErr)
		e.str(err.Error())
	}
}

func pairFrame(e *encoder, kind byte, a, b process.PID) []byte {
	e.byte1(kind)
	e.pid(a)
	e.pid(b)
	return e.b
}

func (r remote) Exit(from, to process.PID, reason process.Reason, link bool) {
	e := getEncoder()
	defer putEncoder(e)
	e.byte1(frameExit)
	e.pid(from)
	e.pid(to)
	e.str(reasonText(reason))
	if link {
		e.byte1(1)
		// The exit of a link ends it: only on the connection it belongs to.
		r.n.answer(to.Node, e.b, reg{kind: regUnlink, link: linkKey{local: from, remote: to}})
		return
	}
	e.byte1(0)
	r.n.send(to.Node, e.b, reg{})
}

func (r remote) Link(from, to process.PID) {
	e := getEncoder()
	defer putEncoder(e)
	if ok, _ := r.n.send(to.Node, pairFrame(e, frameLink, from, to), reg{kind: regLink, link: linkKey{local: from, remote: to}}); !ok {
		// No connection to be had: the link breaks at once, as in Erlang.
		r.n.rt.DeliverRemoteExit(to, from, process.NoConnection, true)
	}
}

func (r remote) Unlink(from, to process.PID) {
	e := getEncoder()
	defer putEncoder(e)
	r.n.answer(to.Node, pairFrame(e, frameUnlink, from, to), reg{kind: regUnlink, link: linkKey{local: from, remote: to}})
}

func monitorFrame(e *encoder, kind byte, w process.PID, ref process.Ref, target process.PID) []byte {
	e.byte1(kind)
	e.pid(w)
	e.uint(ref.ID)
	e.pid(target)
	return e.b
}

func (r remote) Monitor(w process.PID, ref process.Ref, target process.PID) {
	e := getEncoder()
	defer putEncoder(e)
	frame := monitorFrame(e, frameMonitor, w, ref, target)
	if ok, _ := r.n.send(target.Node, frame, reg{kind: regMonitor, ref: ref.ID, mon: monitorEntry{watcher: w, target: target}}); !ok {
		r.n.rt.DeliverRemoteDown(w, ref, target, process.NoConnection)
	}
}

func (r remote) Demonitor(w process.PID, ref process.Ref, target process.PID) {
	e := getEncoder()
	defer putEncoder(e)
	r.n.answer(target.Node, monitorFrame(e, frameDemonitor, w, ref, target), reg{kind: regDemonitor, ref: ref.ID})
}

func (r remote) Down(w process.PID, ref process.Ref, target process.PID, reason process.Reason) {
	e := getEncoder()
	defer putEncoder(e)
	e.byte1(frameDown)
	e.pid(w)
	e.uint(ref.ID)
	e.pid(target)
	e.str(reasonText(reason))
	r.n.answer(w.Node, e.b, reg{kind: regUnwatched, ref: ref.ID})
}

// ---- receiving ----

func (n *Node) onLink(l *transport.Link) {
	n.stats.LinksUp.Add(1)
	if l.Outbound() {
		return // the dialler sets the handler of its own links
	}
	// A link the peer dialled joins a connection with its first frame (a
	// probe that says nothing, such as a discovery check, never does).
	p := n.peer(l.Peer().Name, true)
	var c *conn // only this link's reader goroutine touches it
	// handleFrame keeps nothing of a frame (what it delivers is decoded
	// into fresh memory; TestDeliveredMessagesDoNotAliasTheFrame), so the
	// link reads every frame into the same buffer.
	l.SetBorrowingHandler(func(frame []byte) {
		if c == nil {
			c = p.attachIn(l)
		}
		if err := n.handleLinkFrame(p, c, l, frame); err != nil {
			n.stats.BadFrames.Add(1)
			n.log.Error("malformed frame from peer; closing the link", "peer", p.name, "err", err)
			_ = l.Close()
		}
	})
}

// undeliverable counts and logs a message of a type this node has not
// registered (arsenal_messages_undeliverable_total).
func (n *Node) undeliverable(peer string, from, to process.PID, err error) {
	n.stats.Undeliverable.Add(1)
	n.log.Warn("message from peer not delivered: its type is not registered on this node", "peer", peer, "from", from, "to", to, "err", err)
}

// handleFrame applies one frame that arrived on connection c from peer p.
// It never blocks: deliveries go to mailboxes, requests to goroutines. A
// frame of a connection already lost is discarded (doc.go, rule 4). It
// returns an error for a malformed frame, or one whose PIDs claim to come
// from a node other than the peer; the caller closes that link (losing
// the connection), never the node.
func (n *Node) handleFrame(p *peer, c *conn, frame []byte) error {
	return n.handleLinkFrame(p, c, nil, frame)
}

// handleLinkFrame is handleFrame for a frame read by link l's reader: a
// reply that woke its caller through the caller's pipe tells l not to
// yield (Link.SkipYield; nothing was readied).
func (n *Node) handleLinkFrame(p *peer, c *conn, l *transport.Link, frame []byte) error {
	p.applyMu.RLock()
	defer p.applyMu.RUnlock()
	if c.dead {
		n.stats.LateFrames.Add(1)
		return nil
	}
	n.stats.FramesReceived.Add(1)
	peerName := p.name
	self := n.cfg.Name
	d := decoder{b: frame, intern: [2]string{self, peerName}, valid: [2]bool{true, p.validName}}
	// Sender-side PIDs must be on the peer (or zero); receiver-side PIDs
	// must be on this node.
	theirs := func(p process.PID) {
		if d.err == nil && !p.IsZero() && p.Node != peerName {
			d.fail(fmt.Sprintf("pid %s is not on the sending node %s", p, peerName))
		}
	}
	ours := func(p process.PID) {
		if d.err == nil && p.Node != self {
			d.fail(fmt.Sprintf("pid %s is not on this node", p))
		}
	}
	rt := n.rt
	switch kind := d.byte1(); kind {
	case frameSend:
		from, to := d.pid(), d.pid()
		cast := d.byte1() == 1
		msg := d.value()
		theirs(from)
		ours(to)
		if d.done() == nil {
			if d.unregistered != nil {
				n.undeliverable(peerName, from, to, d.unregistered)
				return nil
			}
			rt.DeliverRemote(from, to, msg, cast)
		}
	case frameCall:
		from, to, ref := d.pid(), d.pid(), d.uint()
		req := d.value()
		theirs(from)
		ours(to)
		if d.done() == nil {
			f := process.RemoteFrom(from, peerName, ref)
			if d.unregistered != nil {
				// The caller hears why, at once.
				n.undeliverable(peerName, from, to, d.unregistered)
				remote{n}.Reply(f, fmt.Errorf("call to %s not delivered: %w", to, d.unregistered), nil)
				return nil
			}
			if !rt.DeliverRemoteCall(f, to, req) {
				remote{n}.Reply(f, nil, &process.CallError{PID: to, Err: process.NoProc})
			}
		}
	case frameReply:
		ref := d.uint()
		var res callResult
		switch d.byte1() {
		case replyOK:
			res.val = d.value()
		case replyExit:
			p := d.pid()
			res.err = &process.ExitError{PID: p, Reason: reasonFromText(d.str())}
		case replyCallErr:
			p := d.pid()
			res.err = &process.CallError{PID: p, Err: reasonFromText(d.str())}
		case replyAppErr:
			res.val = &RemoteReason{Text: d.str()}
		default:
			d.fail("bad reply kind")
		}
		if d.done() == nil {
			if d.unregistered != nil {
				n.stats.Undeliverable.Add(1)
				n.log.Warn("reply from peer not delivered: its type is not registered on this node", "peer", peerName, "ref", ref, "err", d.unregistered)
				res = callResult{err: fmt.Errorf("reply from %s not delivered: %w", peerName, d.unregistered)}
			}
			if p.completeCall(c, ref, res) && l != nil {
				l.SkipYield()
			}
		}
	case frameExit:
		from, to := d.pid(), d.pid()
		reason := reasonFromText(d.str())
		link := d.byte1() == 1
		theirs(from)
		ours(to)
		if d.done() == nil {
			if link {
				p.registerIn(c, reg{kind: regUnlink, link: linkKey{local: to, remote: from}})
			}
			rt.DeliverRemoteExit(from, to, reason, link)
		}
	case frameLink, frameUnlink:
		from, to := d.pid(), d.pid()
		theirs(from)
		ours(to)
		if d.done() == nil {
			k := linkKey{local: to, remote: from}
			if kind == frameLink {
				// Registered first: if the target is gone, the NoProc exit
				// sent back takes it off again.
				p.registerIn(c, reg{kind: regLink, link: k})
				rt.DeliverRemoteLink(from, to)
			} else {
				p.registerIn(c, reg{kind: regUnlink, link: k})
				rt.DeliverRemoteUnlink(from, to)
			}
		}
	case frameMonitor, frameDemonitor:
		w, refID, target := d.pid(), d.uint(), d.pid()
		theirs(w)
		ours(target)
		if d.done() == nil {
			ref := process.Ref{Node: w.Node, ID: refID}
			if kind == frameMonitor {
				// Registered first: a DOWN sent at once (noproc) takes it
				// off again.
				p.registerIn(c, reg{kind: regWatched, ref: refID, mon: monitorEntry{watcher: w, target: target}})
				rt.DeliverRemoteMonitor(w, ref, target)
			} else {
				p.registerIn(c, reg{kind: regUnwatched, ref: refID})
				rt.DeliverRemoteDemonitor(ref, target)
			}
		}
	case frameDown:
		w, refID, target := d.pid(), d.uint(), d.pid()
		reason := reasonFromText(d.str())
		ours(w)
		theirs(target)
		if d.done() == nil {
			p.registerIn(c, reg{kind: regDemonitor, ref: refID})
			rt.DeliverRemoteDown(w, process.Ref{Node: self, ID: refID}, target, reason)
		}
	case frameRequest:
		ref, op, body := d.uint(), d.str(), d.raw()
		if d.done() == nil {
			n.serveRequest(peerName, ref, op, append([]byte(nil), body...))
		}
	case frameResponse:
		ref, code, msg, body := d.uint(), d.str(), d.str(), d.raw()
		if d.done() == nil {
			res := callResult{val: append([]byte(nil), body...)}
			if code != "" {
				res.err = &RequestError{Node: peerName, Code: code, Message: msg}
			}
			p.completeCall(c, ref, res)
		}
	case frameHello:
		epoch := d.uint()
		if d.done() == nil {
			p.mu.Lock()
			c.theirs = epoch
			p.mu.Unlock()
		}
	default:
		d.fail(fmt.Sprintf("unknown frame kind %d", kind))
	}
	return d.err
}
