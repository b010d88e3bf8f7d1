package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/transport"
)

// remote routes the runtime's signals for other nodes over node links.
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
	r.n.sendTo(to.Node, e.b)
}

func (r remote) Call(ctx context.Context, from, to process.PID, req any) (any, error) {
	n := r.n
	if !n.isUp(to.Node) {
		return nil, &process.CallError{PID: to, Err: process.NoConnection}
	}
	ref := n.nextRef.Add(1)
	e := encoder{b: make([]byte, 0, 64)}
	e.byte1(frameCall)
	e.pid(from)
	e.pid(to)
	e.uint(ref)
	if err := e.value(req); err != nil {
		return nil, fmt.Errorf("call %s: %w", to, err)
	}
	pc := &pendingCall{node: to.Node, inc: to.Incarnation, ch: make(chan callResult, 1)}
	n.callsMu.Lock()
	n.calls[ref] = pc
	n.callsMu.Unlock()
	n.sendTo(to.Node, e.b)
	select {
	case res := <-pc.ch:
		if errors.Is(res.err, process.NoConnection) {
			return nil, &process.CallError{PID: to, Err: process.NoConnection}
		}
		if res.err != nil {
			return nil, res.err
		}
		if e, ok := res.val.(error); ok {
			return nil, e
		}
		return res.val, nil
	case <-ctx.Done():
		n.callsMu.Lock()
		delete(n.calls, ref)
		n.callsMu.Unlock()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, &process.CallError{PID: to, Err: process.Timeout}
		}
		return nil, &process.CallError{PID: to, Err: ctx.Err()}
	}
}

func (r remote) Reply(from process.From, reply any, err error) {
	e := encoder{b: make([]byte, 0, 64)}
	e.byte1(frameReply)
	e.uint(from.Ref())
	var (
		ee *process.ExitError
		ce *process.CallError
	)
	switch {
	case err == nil:
		if re, ok := reply.(error); ok {
			e.byte1(replyAppErr)
			e.str(re.Error())
			break
		}
		e.byte1(replyOK)
		if encErr := e.value(reply); encErr != nil {
			// The caller must hear something: send the encoding error.
			e = encoder{b: e.b[:0]}
			e.byte1(frameReply)
			e.uint(from.Ref())
			e.byte1(replyAppErr)
			e.str(fmt.Sprintf("reply not sent: %v", encErr))
		}
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
	r.n.sendTo(from.Node(), e.b)
}

func (r remote) pair(kind byte, a, b process.PID) {
	e := encoder{b: make([]byte, 0, 64)}
	e.byte1(kind)
	e.pid(a)
	e.pid(b)
	r.n.sendTo(b.Node, e.b)
}

func (r remote) Exit(from, to process.PID, reason process.Reason, link bool) {
	if link {
		if !r.n.isUp(to.Node) {
			return
		}
	}
	e := encoder{b: make([]byte, 0, 64)}
	e.byte1(frameExit)
	e.pid(from)
	e.pid(to)
	e.str(reasonText(reason))
	if link {
		e.byte1(1)
	} else {
		e.byte1(0)
	}
	r.n.sendTo(to.Node, e.b)
}

func (r remote) Link(from, to process.PID) {
	if !r.n.isUp(to.Node) {
		// No such node: the link breaks at once, as in Erlang.
		r.n.rt.DeliverRemoteExit(to, from, process.NoConnection, true)
		return
	}
	r.pair(frameLink, from, to)
}

func (r remote) Unlink(from, to process.PID) { r.pair(frameUnlink, from, to) }

func (r remote) monitorFrame(kind byte, w process.PID, ref process.Ref, target process.PID) {
	e := encoder{b: make([]byte, 0, 64)}
	e.byte1(kind)
	e.pid(w)
	e.uint(ref.ID)
	e.pid(target)
	r.n.sendTo(target.Node, e.b)
}

func (r remote) Monitor(w process.PID, ref process.Ref, target process.PID) {
	if !r.n.isUp(target.Node) {
		r.n.rt.DeliverRemoteDown(w, ref, target, process.NoConnection)
		return
	}
	r.monitorFrame(frameMonitor, w, ref, target)
}

func (r remote) Demonitor(w process.PID, ref process.Ref, target process.PID) {
	r.monitorFrame(frameDemonitor, w, ref, target)
}

func (r remote) Down(w process.PID, ref process.Ref, target process.PID, reason process.Reason) {
	e := encoder{b: make([]byte, 0, 64)}
	e.byte1(frameDown)
	e.pid(w)
	e.uint(ref.ID)
	e.pid(target)
	e.str(reasonText(reason))
	r.n.sendTo(w.Node, e.b)
}

// ---- receiving ----

func (n *Node) onLink(l *transport.Link) {
	n.stats.LinksUp.Add(1)
	peerName := l.Peer().Name
	if !l.Outbound() {
		n.inboundMu.Lock()
		n.inbound[peerName] = l.Peer().Addr
		n.inboundMu.Unlock()
		go func() {
			<-l.Done()
			n.inboundMu.Lock()
			if n.inbound[peerName] == l.Peer().Addr {
				delete(n.inbound, peerName)
			}
			n.inboundMu.Unlock()
		}()
	}
	l.SetHandler(func(frame []byte) {
		if err := n.handleFrame(peerName, frame); err != nil {
			n.stats.BadFrames.Add(1)
			n.log.Error("malformed frame from peer; closing the link", "peer", peerName, "err", err)
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

// handleFrame applies one frame from a peer. It never blocks: deliveries
// go to mailboxes, requests to goroutines. It returns an error for a
// malformed frame, or one whose PIDs claim to come from a node other than
// the peer; the caller closes that link, never the node.
func (n *Node) handleFrame(peerName string, frame []byte) error {
	n.stats.FramesReceived.Add(1)
	self := n.cfg.Name
	d := decoder{b: frame, intern: [2]string{self, peerName}}
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
				res = callResult{err: fmt.Errorf("reply from %s not delivered: %w", peerName, d.unregistered)}
			}
			n.completeCall(ref, peerName, res)
		}
	case frameExit:
		from, to := d.pid(), d.pid()
		reason := reasonFromText(d.str())
		link := d.byte1() == 1
		theirs(from)
		ours(to)
		if d.done() == nil {
			rt.DeliverRemoteExit(from, to, reason, link)
		}
	case frameLink, frameUnlink:
		from, to := d.pid(), d.pid()
		theirs(from)
		ours(to)
		if d.done() == nil {
			if kind == frameLink {
				rt.DeliverRemoteLink(from, to)
			} else {
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
				rt.DeliverRemoteMonitor(w, ref, target)
			} else {
				rt.DeliverRemoteDemonitor(ref, target)
			}
		}
	case frameDown:
		w, refID, target := d.pid(), d.uint(), d.pid()
		reason := reasonFromText(d.str())
		ours(w)
		theirs(target)
		if d.done() == nil {
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
			n.completeCall(ref, peerName, res)
		}
	default:
		d.fail(fmt.Sprintf("unknown frame kind %d", kind))
	}
	return d.err
}

func (n *Node) completeCall(ref uint64, peerName string, res callResult) {
	n.callsMu.Lock()
	pc, ok := n.calls[ref]
	if ok && pc.node == peerName {
		delete(n.calls, ref)
	} else {
		ok = false
	}
	n.callsMu.Unlock()
	if ok {
		pc.ch <- res
	}
}
