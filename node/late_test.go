package node

import (
	"errors"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/process"
)

// Frames of a lost connection that arrive late (the link's reader was
// still delivering when the connection was lost) are discarded and
// counted, never applied, and never mixed with the next connection's
// (doc.go, rule 4).
func TestLateFramesOfALostConnectionAreDiscarded(t *testing.T) {
	n, to, got := loneCollector(t, "late@127.0.0.1", "late", 4)
	const peer = "p@127.0.0.1"
	from := process.PID{Node: peer, Incarnation: 1, ID: 7}
	frame := func(msg string) []byte {
		e := encoder{}
		e.byte1(frameSend)
		e.pid(from)
		e.pid(to)
		e.byte1(0)
		if err := e.value(msg); err != nil {
			t.Fatal(err)
		}
		return e.b
	}
	p := n.peer(peer, true)
	p.mu.Lock()
	first := p.newConnLocked()
	p.mu.Unlock()
	if err := n.handleFrame(p, first, frame("on the first connection")); err != nil {
		t.Fatal(err)
	}
	p.lose(first, errors.New("test: lost"))
	if err := n.handleFrame(p, first, frame("late, of the first connection")); err != nil {
		t.Fatalf("a late frame closed the link: %v", err)
	}
	p.mu.Lock()
	second := p.newConnLocked()
	p.mu.Unlock()
	if second.epoch <= first.epoch {
		t.Fatalf("epochs %d then %d; want a new one", first.epoch, second.epoch)
	}
	if err := n.handleFrame(p, second, frame("on the second connection")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"on the first connection", "on the second connection"} {
		if m := testutil.Recv(t, got, 10*time.Second, want); m != want {
			t.Fatalf("delivered %q; want %q (the late frame must be discarded)", m, want)
		}
	}
	if late := n.stats.LateFrames.Load(); late != 1 {
		t.Errorf("late frames = %d; want 1", late)
	}
}
