// Package eventfeed fans events out to subscribers without ever blocking
// the publisher: a subscriber whose buffer is full misses the event
// (counted, and visible as a gap in the sequence numbers the publisher
// stamps). The registry and the distributed supervisor use it.
package eventfeed

import (
	"sync"
	"sync/atomic"
)

// Feed is an event feed; its zero value is ready to use.
type Feed[E any] struct {
	mu      sync.Mutex
	seq     uint64
	subs    map[uint64]chan E
	nextID  uint64
	closed  bool
	dropped atomic.Uint64
}

// Publish gives e the next sequence number through stamp (under the
// feed's lock, so sequence order is publication order) and delivers it.
func (f *Feed[E]) Publish(e E, stamp func(e *E, seq uint64)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.seq++
	stamp(&e, f.seq)
	for _, ch := range f.subs {
		select {
		case ch <- e:
		default:
			f.dropped.Add(1)
		}
	}
}

// Subscribe returns a channel of the events published from now on, and a
// function that ends the subscription (closing the channel).
func (f *Feed[E]) Subscribe(buffer int) (<-chan E, func()) {
	ch := make(chan E, max(buffer, 1))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		close(ch)
		return ch, func() {}
	}
	if f.subs == nil {
		f.subs = map[uint64]chan E{}
	}
	id := f.nextID
	f.nextID++
	f.subs[id] = ch
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if c, ok := f.subs[id]; ok {
			delete(f.subs, id)
			close(c)
		}
	}
}

// Close ends every subscription; later events are dropped silently.
func (f *Feed[E]) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for id, ch := range f.subs {
		delete(f.subs, id)
		close(ch)
	}
}

// Dropped counts events that a full subscriber missed.
func (f *Feed[E]) Dropped() uint64 { return f.dropped.Load() }
