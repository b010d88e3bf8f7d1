package cluster

import (
	"log/slog"
	"testing"
	"time"
)

// SubscribeAll loses nothing: a reader that falls far behind still gets
// every event, in order, with no gap in Seq; the feed's other subscribers
// and membership are not held up meanwhile; closing the feed delivers what
// is queued, then closes the channel.
func TestSubscribeAllIsLosslessAndOrdered(t *testing.T) {
	f := newFeed(slog.New(slog.DiscardHandler))
	all, cancel := f.subscribeAll()
	defer cancel()
	lossy, cancelLossy := f.subscribe(1)
	defer cancelLossy()
	const n = 20000 // far more than any buffer
	start := time.Now()
	for i := 1; i <= n; i++ {
		f.publish(Event{Seq: uint64(i), Type: NodeUpdated})
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("publishing %d events to a reader that does not read took %s", n, d)
	}
	<-lossy // the lossy subscriber is served meanwhile (and drops)
	time.Sleep(50 * time.Millisecond)
	for i := 1; i <= n; i++ {
		select {
		case e := <-all:
			if e.Seq != uint64(i) {
				t.Fatalf("event %d has Seq %d: lost or reordered", i, e.Seq)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d of %d never arrived", i, n)
		}
	}
	f.publish(Event{Seq: n + 1, Type: NodeDown})
	f.close()
	if e, ok := <-all; !ok || e.Seq != n+1 {
		t.Fatalf("after close: %+v %v; want the queued event first", e, ok)
	}
	if _, ok := <-all; ok {
		t.Fatal("channel still open after the feed closed")
	}
	if f.dropped.Load() == 0 {
		t.Error("the lossy subscriber dropped nothing: the test did not exercise it")
	}
}

// Cancelling a lossless subscription with events still queued ends its
// goroutine and closes the channel.
func TestSubscribeAllCancel(t *testing.T) {
	f := newFeed(slog.New(slog.DiscardHandler))
	defer f.close()
	all, cancel := f.subscribeAll()
	for i := 1; i <= 100; i++ {
		f.publish(Event{Seq: uint64(i)})
	}
	<-all
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-all:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed after cancel")
		}
	}
}
