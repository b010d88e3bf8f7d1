package transport

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
	"time"
)

// directFrame is frame i of a sender: the sender, the sequence number,
// then a pattern derived from both, so that a frame spliced wrongly after
// a partial write shows.
func directFrame(sender byte, i, size int) []byte {
	f := make([]byte, size)
	f[0] = sender
	binary.BigEndian.PutUint32(f[1:], uint32(i))
	for j := 5; j < size; j++ {
		f[j] = byte(i*7 + j + int(sender))
	}
	return f
}

// linkIdle reports whether nothing is queued on l and nobody writes.
func linkIdle(l *Link) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.writing && len(l.queue) == 0
}

// quiet waits until l is idle and has had no data frame for longer than
// directGap, so that the next Send may write directly.
func quiet(t *testing.T, l *Link) {
	t.Helper()
	waitFor(t, 10*time.Second, func() bool { return linkIdle(l) }, "link idle")
	l.mu.Lock()
	last := l.lastData
	l.mu.Unlock()
	for l.now()-last <= int64(directGap) {
		time.Sleep(directGap) // the gap itself is what is being set up
	}
}

// A frame sent on a quiet link is written by Send itself (a direct
// write); when the socket cannot take all of it (the peer stopped
// reading), the rest is queued for the writer ahead of later frames, and
// every frame arrives whole and in order once the peer reads again.
func TestDirectWriteIntoAFullSocketKeepsFramesWholeAndInOrder(t *testing.T) {
	if !directWriteSupported {
		t.Skip("no direct writes on this platform")
	}
	release := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var got [][]byte
	a := startNode(t, "a", func(c *Config) { c.SendQueueBytes = 1 << 30; c.WriteTimeout = time.Minute })
	b := startNode(t, "b", func(c *Config) {
		c.OnLink = func(l *Link) {
			l.SetHandler(func(f []byte) {
				<-release // the peer reads nothing until released
				mu.Lock()
				got = append(got, f)
				mu.Unlock()
			})
		}
	})
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	la := dial(t, a, b)
	if la.raw == nil {
		t.Fatal("a TCP link has no raw socket for direct writes")
	}
	const size = maxDirect - frameHeaderLen
	sent, leftBehind := 0, false
	for !leftBehind && sent < 100000 {
		quiet(t, la)
		if err := la.Send(directFrame(1, sent, size)); err != nil {
			t.Fatal(err)
		}
		sent++
		// The link was idle and quiet, so this frame was written directly;
		// anything queued now is what the socket did not take.
		leftBehind = !linkIdle(la)
	}
	if !leftBehind {
		t.Fatalf("%d frames of %d bytes into a socket nobody reads, and every one fitted", sent, size)
	}
	if d := la.Stats().DirectWrites; d == 0 || d >= uint64(sent) {
		t.Errorf("direct writes %d of %d frames; want some, and not the last", d, sent)
	}
	// A burst behind the partial frame goes through the queue.
	for i := 0; i < 50; i++ {
		if err := la.Send(directFrame(1, sent, size)); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	once.Do(func() { close(release) })
	waitFor(t, 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == sent }, "all %d frames arrive", sent)
	mu.Lock()
	defer mu.Unlock()
	for i, f := range got {
		if !bytes.Equal(f, directFrame(1, i, size)) {
			t.Fatalf("frame %d arrived damaged or out of order (seq %d)", i, binary.BigEndian.Uint32(f[1:]))
		}
	}
	if la.Err() != nil {
		t.Errorf("link closed: %v", la.Err())
	}
}

// Senders that pause now and then (so that some of their frames are
// written directly and others queued) still see their frames arrive in
// order, and whole.
func TestDirectAndQueuedWritesKeepFIFO(t *testing.T) {
	const senders, perSender, size = 3, 1500, 100
	a := startNode(t, "a", nil)
	b := startNode(t, "b", nil)
	la := dial(t, a, b)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSender {
				if i%20 == 0 {
					time.Sleep(2 * directGap) // a pause: the next frame may go directly
				}
				if err := la.Send(directFrame(byte(s), i, size)); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := senders * perSender
	waitFor(t, 20*time.Second, func() bool { return b.in.count() == total }, "b receives %d frames (has %d)", total, b.in.count())
	next := make([]int, senders)
	for _, f := range b.in.get() {
		s := f[0]
		if !bytes.Equal(f, directFrame(s, next[s], size)) {
			t.Fatalf("sender %d: frame %d damaged or out of order (seq %d)", s, next[s], binary.BigEndian.Uint32(f[1:]))
		}
		next[s]++
	}
	if la.Stats().DirectWrites == 0 && directWriteSupported {
		t.Errorf("no frame was written directly; the test did not test the mix")
	}
}

// A borrowing handler gets every frame whole, in reused memory (frames
// of different sizes, so a stale tail would show); switched to an owning
// handler mid-stream, the frames it keeps stay intact.
func TestBorrowingHandlerGetsWholeFramesAndOwningOnesKeepTheirs(t *testing.T) {
	var mu sync.Mutex
	var copies, kept [][]byte
	switched := make(chan struct{})
	b := startNode(t, "b", func(c *Config) {
		c.OnLink = func(l *Link) {
			l.SetBorrowingHandler(func(f []byte) {
				mu.Lock()
				copies = append(copies, append([]byte(nil), f...))
				n := len(copies)
				mu.Unlock()
				if n == 200 {
					l.SetHandler(func(f []byte) { mu.Lock(); kept = append(kept, f); mu.Unlock() })
					close(switched)
				}
			})
		}
	})
	a := startNode(t, "a", nil)
	la := dial(t, a, b)
	const total = 400
	for i := range total {
		if err := la.Send(directFrame(2, i, 16+(i*37)%3000)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(copies)+len(kept) == total }, "all frames")
	<-switched
	mu.Lock()
	defer mu.Unlock()
	for i, f := range append(copies, kept...) {
		if !bytes.Equal(f, directFrame(2, i, 16+(i*37)%3000)) {
			t.Fatalf("frame %d damaged (len %d)", i, len(f))
		}
	}
}
