package node

import (
	"bytes"
	"context"
	"time"

	"github.com/arsenal-go/arsenal/process"
)

// SendRawFrame queues frame, as it is, for peer on the current connection
// (or a new one), as every frame this node sends is queued: tests play a
// peer that breaks the node protocol with it.
func SendRawFrame(n *Node, peer string, frame []byte) (bool, error) {
	return n.send(peer, frame, reg{})
}

// MalformedFrames returns node frames that from's node might send to to's
// node, each broken in one way (named by its key); elsewhere is a PID on
// neither node. Each must close the link it arrives on, and so lose that
// one connection (doc.go, rule 2).
func MalformedFrames(from, to, elsewhere process.PID) map[string][]byte {
	build := func(f func(e *encoder)) []byte {
		e := &encoder{}
		f(e)
		return e.b
	}
	sendTo := func(from, to process.PID, value []byte) []byte {
		return build(func(e *encoder) {
			e.byte1(frameSend)
			e.pid(from)
			e.pid(to)
			e.byte1(0)
			e.b = append(e.b, value...)
		})
	}
	str := build(func(e *encoder) { _ = e.value("ok") })
	valid := sendTo(from, to, str)
	return map[string][]byte{
		"empty":         {},
		"unknown kind":  {0xEE, 1, 2, 3},
		"truncated pid": valid[:4],
		"bad varint": build(func(e *encoder) {
			e.byte1(frameSend)
			e.str(from.Node)
			e.b = append(e.b, bytes.Repeat([]byte{0xff}, 11)...)
		}),
		"length too big":     build(func(e *encoder) { e.byte1(frameSend); e.uint(1 << 20); e.b = append(e.b, from.Node...) }),
		"garbage value":      sendTo(from, to, []byte{0x1c, 0xff, 0xfe}),
		"no value":           sendTo(from, to, nil),
		"trailing bytes":     append(bytes.Clone(valid), "junk"...),
		"bad pid name":       sendTo(process.PID{Node: "no name here", Incarnation: 1, ID: 1}, to, str),
		"sender elsewhere":   sendTo(elsewhere, to, str),
		"receiver elsewhere": sendTo(from, elsewhere, str),
		"bad reply kind":     build(func(e *encoder) { e.byte1(frameReply); e.uint(1); e.byte1(0x7f) }),
		"short monitor":      build(func(e *encoder) { e.byte1(frameMonitor); e.pid(from); e.uint(5) }),
		"short hello":        {frameHello},
	}
}

// CallWithin makes a process call from outside any process the way
// Runtime.Call does for a context without a deadline (the node times it;
// with no ctx.Done, the caller waits on a pipe: callPipe), with an explicit
// timeout.
func CallWithin(n *Node, ctx context.Context, to process.PID, req any, timeout time.Duration) (any, error) {
	return remote{n}.CallWithin(ctx, process.PID{}, to, req, timeout)
}

// PipesInProcess makes calls between nodes of this process wait on pipes
// (callPipe) as calls to other processes do, until the test ends.
func PipesInProcess(t interface{ Cleanup(func()) }) {
	pipesHereToo.Store(true)
	t.Cleanup(func() { pipesHereToo.Store(false) })
}

// OpenPipes is the number of call pipes open in the process.
func OpenPipes() int { return int(pipes.Load()) }
