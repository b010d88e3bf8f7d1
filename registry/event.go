package registry

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/arsenal-go/arsenal/process"
)

// EventType names a change of the registry as one node sees it. The
// values are stable strings.
type EventType string

const (
	// Registered: a name now resolves to PID on this node (a new
	// registration, a takeover, or the owner's node came back).
	Registered EventType = "registered"
	// Unregistered: the name no longer resolves to PID here; Reason says
	// why (unregistered, exit, node_down, node_left, node_restarted,
	// replaced, conflict, reaped).
	Unregistered EventType = "unregistered"
	// Conflict: two registrations of one name met after a partition; PID
	// is the loser, Winner the winner. The loser's own node always reports
	// it; other nodes report it when they held both.
	Conflict EventType = "conflict"
)

// Event is one entry of a registry's feed.
type Event struct {
	Seq    uint64            `json:"seq"`
	Type   EventType         `json:"type"`
	Time   time.Time         `json:"time"`
	Name   string            `json:"name"`
	PID    process.PID       `json:"pid"`
	Meta   map[string]string `json:"meta,omitempty"`
	Reason string            `json:"reason,omitempty"`
	Winner process.PID       `json:"winner,omitzero"`
}

// feed fans events out to subscribers without ever blocking the registry:
// a full subscriber misses the event (counted, and visible as a gap in
// Seq). Publishing happens under the registry's lock, so Seq order is the
// order of changes.
type feed struct {
	mu      sync.Mutex
	seq     uint64
	subs    map[uint64]chan Event
	nextID  uint64
	closed  bool
	dropped atomic.Uint64
}

func (f *feed) publish(e Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.seq++
	e.Seq = f.seq
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	for _, ch := range f.subs {
		select {
		case ch <- e:
		default:
			f.dropped.Add(1)
		}
	}
}

func (f *feed) subscribe(buffer int) (<-chan Event, func()) {
	ch := make(chan Event, max(buffer, 1))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		close(ch)
		return ch, func() {}
	}
	if f.subs == nil {
		f.subs = map[uint64]chan Event{}
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

func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for id, ch := range f.subs {
		delete(f.subs, id)
		close(ch)
	}
}
