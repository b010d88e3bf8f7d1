package transport

import (
	"bytes"
	"testing"
	"time"
)

// Send never waits for the socket, not even for the close frame: the
// writer's goodbye holds wmu across a blocking write (up to
// goodbyeTimeout, to a peer that has stopped reading), and a Send that
// began its direct write just before the close must not wait behind it
// (it runs under the node's peer lock). Here the test holds wmu as the
// goodbye would: Send returns at once, with its frame queued for the
// writer, which delivers it.
func TestDirectWriteNeverWaitsForTheGoodbye(t *testing.T) {
	if !directWriteSupported {
		t.Skip("no direct writes on this platform")
	}
	a := startNode(t, "a", nil)
	b := startNode(t, "b", nil)
	l := dial(t, a, b)
	quiet(t, l)
	l.wmu.Lock() // as sayGoodbye does
	locked := true
	defer func() {
		if locked {
			l.wmu.Unlock()
		}
	}()
	sent := make(chan error, 1)
	go func() { sent <- l.Send([]byte("while the socket is held")) }()
	select {
	case err := <-sent:
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Send waited for the socket held by the goodbye")
	}
	waitFor(t, 10*time.Second, func() bool { return b.in.count() == 1 }, "the frame, written by the writer")
	if got := b.in.get()[0]; !bytes.Equal(got, []byte("while the socket is held")) {
		t.Errorf("received %q", got)
	}
	if d := l.Stats().DirectWrites; d != 0 {
		t.Errorf("%d direct writes while the socket was held", d)
	}
	l.wmu.Unlock()
	locked = false
}
