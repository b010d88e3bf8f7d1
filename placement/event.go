package placement

import (
	"time"

	"github.com/arsenal-go/arsenal/internal/eventfeed"
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
	// (stopped, split_brain, lease_expired, reassigned, handoff, shutdown).
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

// feed stamps events with a gap-free sequence number and the time, and
// fans them out without blocking (see package eventfeed).
type feed struct{ eventfeed.Feed[Event] }

func stamp(e *Event, seq uint64) {
	e.Seq = seq
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
}

func (f *feed) publish(e Event)                             { f.Publish(e, stamp) }
func (f *feed) subscribe(buffer int) (<-chan Event, func()) { return f.Subscribe(buffer) }
func (f *feed) close()                                      { f.Close() }
