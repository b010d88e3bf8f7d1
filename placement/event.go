package placement

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/arsenal-go/arsenal/process"
)

// EventType names something that happened to the children of one node, or
// to its split-brain decision. The values are stable strings.
type EventType string

const (
	// Started: this node started a child (PID), first start, restart,
	// failover or hand-off alike.
	Started EventType = "started"
	// Stopped: this node stopped a child on purpose; Reason says why
	// (stopped, split_brain, reassigned, handoff, shutdown).
	Stopped EventType = "stopped"
	// Exited: a child of this node exited by itself; Reason is its exit
	// reason.
	Exited EventType = "exited"
	// TakenOver: this node took over a child whose node was lost (From).
	TakenOver EventType = "taken_over"
	// SideChanged: this node's split-brain decision changed (Up).
	SideChanged EventType = "side_changed"
)

// Event is one entry of a placement's feed.
type Event struct {
	Seq    uint64      `json:"seq"`
	Type   EventType   `json:"type"`
	Time   time.Time   `json:"time"`
	ID     string      `json:"id,omitempty"`
	PID    process.PID `json:"pid,omitzero"`
	Node   string      `json:"node"`
	Reason string      `json:"reason,omitempty"`
	From   string      `json:"from,omitempty"`
	Up     bool        `json:"up,omitempty"`
}

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
