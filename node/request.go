package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/arsenal-go/arsenal/codec"
	"github.com/arsenal-go/arsenal/process"
)

// RequestHandler answers a node-to-node request. body is the CBOR
// encoding of the request value; the returned value is encoded back.
type RequestHandler func(ctx context.Context, from string, body []byte) (any, error)

// RequestError is an error answered by another node's handler.
type RequestError struct {
	Node    string
	Code    string
	Message string
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("node %s: %s: %s", e.Node, e.Code, e.Message)
}

// Coded errors carry a code across nodes (the operations layer maps codes
// to HTTP statuses).
type Coded interface{ Code() string }

// Error codes used by node requests.
const (
	CodeUnknownOp   = "unknown_operation"
	CodeUnreachable = "node_unreachable"
	CodeTimeout     = "timeout"
	CodeInternal    = "internal"
	CodeBadRequest  = "bad_request"
)

// ErrUnreachable is wrapped when a node is not an alive member.
var ErrUnreachable = errors.New("node unreachable")

// HandleRequest installs the handler for op on this node.
func (n *Node) HandleRequest(op string, h RequestHandler) {
	n.handlersMu.Lock()
	n.handlers[op] = h
	n.handlersMu.Unlock()
}

type requestTimeoutKey struct{}

// WithRequestTimeout returns a context under which Request waits up to d
// for an answer instead of Config.RequestTimeout, for a request whose
// handler waits on purpose (a kill that waits for the exit, a call with
// its own timeout). The bound does not travel: the handler on the other
// node must bound itself by a timeout carried in the request, since the
// context it gets ends after Config.RequestTimeout.
func WithRequestTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, requestTimeoutKey{}, d)
}

// Request runs op on node with req and decodes the answer into resp (a
// pointer, or nil). It is bounded by ctx and Config.RequestTimeout (or
// the timeout of WithRequestTimeout). On this node it calls the handler
// directly, through the same encoding.
func (n *Node) Request(ctx context.Context, node, op string, req, resp any) error {
	body, err := codec.Marshal(req)
	if err != nil {
		return fmt.Errorf("request %s: encode: %w", op, err)
	}
	timeout := n.cfg.RequestTimeout
	if d, ok := ctx.Value(requestTimeoutKey{}).(time.Duration); ok && d > 0 {
		timeout = d
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out []byte
	if node == n.cfg.Name {
		out, err = n.runHandler(ctx, n.cfg.Name, op, body)
		if err != nil {
			return err
		}
	} else {
		ref := n.nextRef.Add(1)
		e := getEncoder()
		e.byte1(frameRequest)
		e.uint(ref)
		e.str(op)
		e.bytes(body)
		pc := &pendingCall{ch: make(chan callResult, 1)}
		ok, err := n.send(node, e.b, reg{kind: regCall, call: pc, callID: ref})
		putEncoder(e)
		if !ok {
			return &RequestError{Node: node, Code: CodeUnreachable, Message: fmt.Sprintf("%v: %s: %v", ErrUnreachable, node, err)}
		}
		if err != nil {
			return fmt.Errorf("request %s to %s: %w", op, node, err)
		}
		select {
		case res := <-pc.ch:
			if res.err != nil {
				var re *RequestError
				if errors.As(res.err, &re) {
					return re
				}
				return &RequestError{Node: node, Code: CodeUnreachable, Message: res.err.Error()}
			}
			out = res.val.([]byte)
		case <-ctx.Done():
			n.peer(node, true).forgetCall(pc, ref)
			return &RequestError{Node: node, Code: CodeTimeout, Message: fmt.Sprintf("no answer to %s within the deadline", op)}
		case <-n.stopCh:
			return &RequestError{Node: node, Code: CodeUnreachable, Message: "this node is stopping"}
		}
	}
	if resp == nil {
		return nil
	}
	if err := codec.Unmarshal(out, resp); err != nil {
		return fmt.Errorf("request %s to %s: decode answer: %w", op, node, err)
	}
	return nil
}

func (n *Node) runHandler(ctx context.Context, from, op string, body []byte) (out []byte, err error) {
	n.handlersMu.RLock()
	h, ok := n.handlers[op]
	n.handlersMu.RUnlock()
	if !ok {
		return nil, &RequestError{Node: n.cfg.Name, Code: CodeUnknownOp, Message: fmt.Sprintf("no handler for %q", op)}
	}
	defer func() {
		if r := recover(); r != nil {
			err = &RequestError{Node: n.cfg.Name, Code: CodeInternal, Message: fmt.Sprintf("handler %s panicked: %v", op, r)}
		}
	}()
	v, err := h(ctx, from, body)
	if err != nil {
		code := CodeInternal
		var c Coded
		if errors.As(err, &c) {
			code = c.Code()
		}
		var re *RequestError
		if errors.As(err, &re) {
			return nil, re
		}
		return nil, &RequestError{Node: n.cfg.Name, Code: code, Message: err.Error()}
	}
	out, err = codec.Marshal(v)
	if err != nil {
		return nil, &RequestError{Node: n.cfg.Name, Code: CodeInternal, Message: "encode answer: " + err.Error()}
	}
	return out, nil
}

// serveRequest runs a peer's request in a goroutine of its own, so a slow
// handler never holds up the link, and sends the answer back.
func (n *Node) serveRequest(from string, ref uint64, op string, body []byte) {
	select {
	case <-n.stopCh:
		return
	default:
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
		defer cancel()
		out, err := n.runHandler(ctx, from, op, body)
		e := getEncoder()
		defer putEncoder(e)
		e.byte1(frameResponse)
		e.uint(ref)
		if err != nil {
			var re *RequestError
			errors.As(err, &re)
			e.str(re.Code)
			e.str(re.Message)
			e.bytes(nil)
		} else {
			e.str("")
			e.str("")
			e.bytes(out)
		}
		if len(e.b) > n.maxFrame {
			e.b = e.b[:0]
			e.byte1(frameResponse)
			e.uint(ref)
			e.str(CodeInternal)
			e.str(fmt.Sprintf("answer of %d bytes is over the frame limit", len(out)))
			e.bytes(nil)
		}
		// On the connection the request came over: if that is lost, the
		// requester has been told.
		n.answer(from, e.b, reg{})
	}()
}

// ProbeLink dials addr and completes a handshake, then closes the link.
// Tools use it to check that a peer accepts this node's secret.
func ProbeLink(ctx context.Context, n *Node, addr string) error {
	l, err := n.net.Dial(ctx, addr)
	if err != nil {
		return err
	}
	return l.Close()
}

const requestWhereis = "arsenal.whereis"

// Whereis looks up a locally registered name on another node (or this
// one), like Erlang's {Name, Node}.
func (n *Node) Whereis(ctx context.Context, node, name string) (process.PID, error) {
	var s string
	if err := n.Request(ctx, node, requestWhereis, name, &s); err != nil {
		return process.PID{}, err
	}
	return process.ParsePID(s)
}

func (n *Node) whereisHandler(_ context.Context, _ string, body []byte) (any, error) {
	var name string
	if err := codec.Unmarshal(body, &name); err != nil {
		return nil, &RequestError{Node: n.cfg.Name, Code: CodeBadRequest, Message: err.Error()}
	}
	pid, ok := n.rt.Whereis(name)
	if !ok {
		return nil, &RequestError{Node: n.cfg.Name, Code: "not_found", Message: fmt.Sprintf("no process named %q", name)}
	}
	return pid.String(), nil
}
