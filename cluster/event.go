package cluster

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// EventType names a change in the cluster. The values are stable strings
// (they travel over SSE).
type EventType string

const (
	NodeUp      EventType = "node_up"      // joined, came back, or a suspicion cleared
	NodeSuspect EventType = "node_suspect" // this node's probe of it failed
	NodeDown    EventType = "node_down"    // declared dead (crash, partition), or an old incarnation replaced
	NodeLeft    EventType = "node_left"    // left on purpose
	NodeUpdated EventType = "node_updated" // metadata changed, same incarnation
	// NodeRemoved: a member dead past the removal margin is no longer
	// counted by this side's decisions (Member.Removed).
	NodeRemoved EventType = "node_removed"
	// NodeAdmitted: a member's incarnation is admitted: it counts in the
	// decisions again, or for the first time (Member.Joining cleared).
	NodeAdmitted     EventType = "node_admitted"
	PartitionChanged EventType = "partition_changed"
	ModeChanged      EventType = "mode_changed"
)

// Event is one entry of the feed. Node events fill Node, Member, OldStatus
// and NewStatus; PartitionChanged fills OldPartition and Partition;
// ModeChanged fills OldMode and Mode.
type Event struct {
	// Seq numbers events 1, 2, 3… per Cluster. A gap in what a subscriber
	// receives means it was too slow and events were dropped for it.
	Seq  uint64    `json:"seq"`
	Type EventType `json:"type"`
	Time time.Time `json:"time"`

	Node      string `json:"node,omitempty"`
	Member    Member `json:"member,omitzero"`      // the member after the change (node events)
	OldStatus Status `json:"old_status,omitempty"` // "" when the member was unknown before
	NewStatus Status `json:"new_status,omitempty"`
	// Restarted is set when the member came back with a new incarnation;
	// OldIncarnation is the one it replaced. The node layer fails links and
	// monitors of the old incarnation on this.
	Restarted      bool   `json:"restarted,omitempty"`
	OldIncarnation uint64 `json:"old_incarnation,omitempty"`

	OldPartition PartitionState  `json:"old_partition,omitempty"`
	Partition    PartitionStatus `json:"partition,omitzero"`

	OldMode Mode `json:"old_mode,omitempty"`
	Mode    Mode `json:"mode,omitempty"`
}

// feed fans events out to subscribers from one goroutine. Membership code
// only appends to the queue, so a slow subscriber or callback can never
// stall memberlist (whose delegates run under its node lock).
type feed struct {
	log *slog.Logger

	mu        sync.Mutex
	lastSeq   uint64
	queue     []Event
	subs      map[uint64]*subscriber
	nextID    uint64
	callbacks []func(old, new Mode)
	closed    bool

	signal   chan struct{} // buffered(1): "queue is not empty"
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	dropped  atomic.Uint64
}

type subscriber struct {
	ch   chan Event
	from uint64 // events up to this Seq were published before it subscribed
	// all, for SubscribeAll: events wait in q (unbounded) for pump, which
	// hands them to ch one by one; none is ever dropped.
	all  bool
	qmu  sync.Mutex
	q    []Event
	wake chan struct{} // buffered(1): q is not empty, or the feed closed
	gone chan struct{} // closed when the subscription ends
	end  bool          // no more events will be queued
}

func newFeed(log *slog.Logger) *feed {
	f := &feed{
		log:    log,
		subs:   make(map[uint64]*subscriber),
		signal: make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go f.run()
	return f
}

func (f *feed) publish(e Event) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.queue = append(f.queue, e)
	f.lastSeq = e.Seq
	f.mu.Unlock()
	select {
	case f.signal <- struct{}{}:
	default:
	}
}

func (f *feed) subscribe(buffer int) (<-chan Event, func()) {
	if buffer < 1 {
		buffer = 1
	}
	ch := make(chan Event, buffer)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		close(ch)
		return ch, func() {}
	}
	id := f.nextID
	f.nextID++
	f.subs[id] = &subscriber{ch: ch, from: f.lastSeq}
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			if s, ok := f.subs[id]; ok {
				delete(f.subs, id)
				close(s.ch)
			}
		})
	}
}

// subscribeAll is subscribe without loss: events queue, unbounded, for a
// goroutine that hands them over in order.
func (f *feed) subscribeAll() (<-chan Event, func()) {
	ch := make(chan Event)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		close(ch)
		return ch, func() {}
	}
	id := f.nextID
	f.nextID++
	s := &subscriber{ch: ch, from: f.lastSeq, all: true, wake: make(chan struct{}, 1), gone: make(chan struct{})}
	f.subs[id] = s
	go s.pump()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.subs, id)
			f.mu.Unlock()
			close(s.gone)
		})
	}
}

// pump hands the queued events to ch in order; it closes ch when the feed
// has closed and the queue is empty, or when the subscription ends.
func (s *subscriber) pump() {
	defer close(s.ch)
	for {
		s.qmu.Lock()
		batch, end := s.q, s.end
		s.q = nil
		s.qmu.Unlock()
		for _, e := range batch {
			select {
			case s.ch <- e:
			case <-s.gone:
				return
			}
		}
		if len(batch) > 0 {
			continue
		}
		if end {
			return
		}
		select {
		case <-s.wake:
		case <-s.gone:
			return
		}
	}
}

func (f *feed) onModeChange(fn func(old, new Mode)) {
	f.mu.Lock()
	f.callbacks = append(f.callbacks, fn)
	f.mu.Unlock()
}

func (f *feed) run() {
	defer close(f.done)
	for {
		select {
		case <-f.signal:
			f.drain()
		case <-f.stop:
			f.drain()
			f.mu.Lock()
			f.closed = true
			for id, s := range f.subs {
				delete(f.subs, id)
				s.finish()
			}
			f.mu.Unlock()
			return
		}
	}
}

// finish ends a subscriber when the feed closes: a lossless one still
// hands over what is queued, then closes its channel.
func (s *subscriber) finish() {
	if !s.all {
		close(s.ch)
		return
	}
	s.qmu.Lock()
	s.end = true
	s.qmu.Unlock()
	s.signal()
}

func (s *subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (f *feed) drain() {
	for {
		f.mu.Lock()
		batch := f.queue
		f.queue = nil
		f.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		for _, e := range batch {
			f.deliver(e)
		}
	}
}

func (f *feed) deliver(e Event) {
	f.mu.Lock()
	for _, s := range f.subs {
		if e.Seq <= s.from {
			continue
		}
		if s.all {
			s.qmu.Lock()
			s.q = append(s.q, e)
			s.qmu.Unlock()
			s.signal()
			continue
		}
		select {
		case s.ch <- e:
		default:
			f.dropped.Add(1)
		}
	}
	var callbacks []func(old, new Mode)
	if e.Type == ModeChanged {
		callbacks = append(callbacks, f.callbacks...)
	}
	f.mu.Unlock()
	for _, fn := range callbacks {
		f.call(fn, e.OldMode, e.Mode)
	}
}

func (f *feed) call(fn func(old, new Mode), old, new Mode) {
	defer func() {
		if r := recover(); r != nil {
			f.log.Error("cluster: mode change callback panicked", "panic", r)
		}
	}()
	fn(old, new)
}

// close delivers what is queued, then closes every subscriber channel.
func (f *feed) close() {
	f.stopOnce.Do(func() { close(f.stop) })
	<-f.done
}
