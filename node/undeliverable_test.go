package node

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/codec"
	"github.com/arsenal-go/arsenal/process"
)

type undeliverableProbe struct{ N int }

// A message of a type the receiving node has not registered is counted,
// logged and dropped, and the link stays up (handleFrame returns no
// error); a call with one gets an error reply.
func TestUnregisteredTypeIsCountedNotFatal(t *testing.T) {
	codec.MustRegister[undeliverableProbe]("node.test.probeA")
	n, to, got := loneCollector(t, "u@127.0.0.1", "undeliverable", 4)
	const peer = "p@127.0.0.1"
	from := process.PID{Node: peer, Incarnation: 1, ID: 7}
	frame := func(v any, rename bool) []byte {
		e := encoder{}
		e.byte1(frameSend)
		e.pid(from)
		e.pid(to)
		e.byte1(0)
		if err := e.value(v); err != nil {
			t.Fatal(err)
		}
		if rename { // the same bytes under a name nobody registered
			e.b = bytes.Replace(e.b, []byte("node.test.probeA"), []byte("node.test.probeB"), 1)
		}
		return e.b
	}
	tp, tc := n.peer(peer, true), &conn{} // a live connection from peer
	if err := n.handleFrame(tp, tc, frame(undeliverableProbe{N: 1}, true)); err != nil {
		t.Fatalf("an unregistered type closed the link: %v", err)
	}
	if u := n.stats.Undeliverable.Load(); u != 1 {
		t.Fatalf("undeliverable = %d, want 1", u)
	}
	if b := n.stats.BadFrames.Load(); b != 0 {
		t.Fatalf("bad frames = %d, want 0", b)
	}
	if err := n.handleFrame(tp, tc, frame(undeliverableProbe{N: 2}, false)); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != (undeliverableProbe{N: 2}) {
			t.Fatalf("delivered %v, want the registered message only", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the registered message was not delivered")
	}
}

// loneCollector starts a node that joins nobody (closed with the test)
// and a process on it that passes every message it receives to got.
func loneCollector(t *testing.T, name, cluster string, size int) (n *Node, to process.PID, got chan any) {
	t.Helper()
	n, err := Start(context.Background(), Config{
		Name: name, Cluster: cluster, Secret: []byte("0123456789abcdef0123"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	got = make(chan any, size)
	to, err = n.Runtime().SpawnFunc(func(p *process.Proc) error {
		for {
			m, err := p.Receive(context.Background())
			if err != nil {
				return err
			}
			got <- m
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, to, got
}
