package registry

import (
	"time"

	"github.com/arsenal-go/arsenal/internal/eventfeed"
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
