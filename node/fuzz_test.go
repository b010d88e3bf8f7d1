package node

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/process"
)

// FuzzHandleFrame feeds arbitrary frames "from a peer" to a live node: a
// frame may be refused (the link would close), but nothing may panic and
// the node must keep working.
func FuzzHandleFrame(f *testing.F) {
	n, err := Start(context.Background(), Config{Name: "fuzz@127.0.0.1", Secret: []byte("fuzz-secret-0123456789"),
		Profile: cluster.ProfileFast, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	}()
	target, _ := n.Runtime().SpawnFunc(func(p *process.Proc) error {
		for {
			if _, err := p.Receive(context.Background()); err != nil {
				return err
			}
		}
	})
	peer := process.PID{Node: "peer@127.0.0.1", Incarnation: 7, ID: 3}
	seed := func(build func(e *encoder)) {
		e := &encoder{}
		build(e)
		f.Add(e.b)
	}
	seed(func(e *encoder) { e.byte1(frameSend); e.pid(peer); e.pid(target); e.byte1(0); _ = e.value("hello") })
	seed(func(e *encoder) { e.byte1(frameCall); e.pid(peer); e.pid(target); e.uint(9); _ = e.value(42) })
	seed(func(e *encoder) { e.byte1(frameExit); e.pid(peer); e.pid(target); e.str("shutdown"); e.byte1(1) })
	seed(func(e *encoder) { e.byte1(frameMonitor); e.pid(peer); e.uint(5); e.pid(target) })
	seed(func(e *encoder) {
		e.byte1(frameReply)
		e.uint(1)
		e.byte1(replyOK)
		_ = e.value(map[string]any{"a": 1.5})
	})
	seed(func(e *encoder) {
		e.byte1(frameRequest)
		e.uint(1)
		e.str("arsenal.whereis")
		e.bytes([]byte{0x61, 0x78})
	})
	p := n.peer("peer@127.0.0.1", true)
	f.Fuzz(func(t *testing.T, frame []byte) {
		// A connection from the peer, as a link it dialled would make (a
		// fresh one when an answer's failed dial has lost the last).
		p.mu.Lock()
		c := p.cur
		if c == nil {
			c = p.newConnLocked()
		}
		p.mu.Unlock()
		_ = n.handleFrame(p, c, frame)
		if !n.Runtime().Alive(target) && n.Runtime().Count() == 0 {
			t.Skip("the fuzzer killed the target with a valid exit frame; nothing to check")
		}
	})
}
