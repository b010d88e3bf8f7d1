package operations

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/ops"
)

// EventBacklog is how many recent cluster events a node keeps so that a
// client that reconnects with Last-Event-ID gets what it missed.
const EventBacklog = 1024

// ClusterEvent is one event of the feed, as the API sends it. Its seq is
// also the SSE id of its frame.
type ClusterEvent struct {
	Seq            uint64                   `json:"seq" arsenal:"count" doc:"1, 2, 3… per node; a gap means events were missed"`
	Type           string                   `json:"type" enum:"node_up,node_suspect,node_down,node_left,node_updated,node_removed,node_admitted,partition_changed,mode_changed"`
	Time           time.Time                `json:"time"`
	Node           string                   `json:"node,omitempty"`
	Member         *TopologyNode            `json:"member,omitempty" doc:"the member after the change (node events)"`
	OldStatus      string                   `json:"old_status,omitempty"`
	NewStatus      string                   `json:"new_status,omitempty"`
	Restarted      bool                     `json:"restarted,omitempty" doc:"the member came back with a new incarnation"`
	OldIncarnation uint64                   `json:"old_incarnation,omitempty,string"`
	OldPartition   string                   `json:"old_partition,omitempty"`
	Partition      *cluster.PartitionStatus `json:"partition,omitempty"`
	OldMode        string                   `json:"old_mode,omitempty"`
	Mode           string                   `json:"mode,omitempty"`
}

func wireEvent(ev cluster.Event, self string) ClusterEvent {
	w := ClusterEvent{Seq: ev.Seq, Type: string(ev.Type), Time: ev.Time, Node: ev.Node, OldStatus: string(ev.OldStatus),
		NewStatus: string(ev.NewStatus), Restarted: ev.Restarted, OldIncarnation: ev.OldIncarnation,
		OldPartition: string(ev.OldPartition), OldMode: string(ev.OldMode), Mode: string(ev.Mode)}
	if ev.Member.Name != "" {
		m := ev.Member
		w.Member = &TopologyNode{Name: m.Name, Status: string(m.Status), Incarnation: m.Incarnation, NodeAddr: m.NodeAddr,
			HTTPAddr: m.HTTPAddr, Since: m.Since, Self: m.Name == self}
	}
	if ev.Type == cluster.PartitionChanged {
		p := ev.Partition
		w.Partition = &p
	}
	return w
}

// FeedSnapshot is the first event of a feed (and of a resumed feed whose
// Last-Event-ID is older than the backlog): the topology, with the seq of
// the last event it includes.
type FeedSnapshot struct {
	Seq      uint64   `json:"seq" arsenal:"count"`
	Topology Topology `json:"topology"`
	// ResumeFailed is true when the client asked to resume (Last-Event-ID)
	// and this node could not: the id is older than the backlog, or comes
	// from another node or an earlier incarnation of this one. A first
	// connection gets false; a resumed feed gets no snapshot at all.
	ResumeFailed bool `json:"resume_failed" doc:"true: the client asked to resume (Last-Event-ID) from an event this node no longer has, or never had, and must resynchronise from this snapshot; false on a first connection (a feed that resumes sends no snapshot)"`
}

// eventLog keeps the last EventBacklog events of a node's cluster and fans
// them out to the feeds, so that a feed can resume from an id: replaying
// the backlog and subscribing happen under one lock, so no event falls in
// between.
type eventLog struct {
	mu     sync.Mutex
	ring   []cluster.Event // oldest first, at most EventBacklog
	subs   map[chan cluster.Event]struct{}
	closed bool
}

func startEventLog(cl *cluster.Cluster) *eventLog {
	l := &eventLog{subs: map[chan cluster.Event]struct{}{}}
	ch, _ := cl.Subscribe(EventBacklog)
	go l.run(ch) // ends when the cluster shuts down and closes ch
	return l
}

func (l *eventLog) run(ch <-chan cluster.Event) {
	for ev := range ch {
		l.mu.Lock()
		if len(l.ring) == EventBacklog {
			copy(l.ring, l.ring[1:])
			l.ring = l.ring[:EventBacklog-1]
		}
		l.ring = append(l.ring, ev)
		for sub := range l.subs {
			select {
			case sub <- ev:
			default: // a feed too slow: it sees the gap in seq
			}
		}
		l.mu.Unlock()
	}
	l.mu.Lock()
	l.closed = true
	for sub := range l.subs {
		close(sub)
	}
	l.subs = nil
	l.mu.Unlock()
}

// subscribe returns the backlog after seq (ok false if events after seq
// were already forgotten), and a channel of the events after those.
func (l *eventLog) subscribe(after uint64) (backlog []cluster.Event, ok bool, ch chan cluster.Event, cancel func()) {
	ch = make(chan cluster.Event, 256)
	l.mu.Lock()
	defer l.mu.Unlock()
	ok = len(l.ring) == 0 || l.ring[0].Seq <= after+1
	for _, ev := range l.ring {
		if ev.Seq > after {
			backlog = append(backlog, ev)
		}
	}
	if l.closed {
		close(ch)
		return backlog, ok, ch, func() {}
	}
	l.subs[ch] = struct{}{}
	return backlog, ok, ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if _, live := l.subs[ch]; live {
			delete(l.subs, ch)
			close(ch)
		}
	}
}

func events(env *Env) ops.Operation {
	return ops.Operation{
		Name: "cluster.events", Category: "cluster",
		Summary: "The cluster event feed (node up, suspect, down, left, removed, admitted, partition and mode changes) as Server-Sent Events",
		Description: "Starts with a 'topology' event holding the topology snapshot, then one event per change, named by its type; every frame's id is the event's seq. " +
			"A client that reconnects with the Last-Event-ID header gets the events it missed, if they are among the last 1024; otherwise a new topology snapshot with resume_failed: true. " +
			"A client that reads too slowly misses events and sees a gap in seq. A comment line comes every heartbeat interval; a 'shutdown' event ends the feed when the node stops.",
		Method: "GET", Path: "/api/v1/cluster/events",
		Events: map[string]any{
			"topology": FeedSnapshot{}, "node_up": ClusterEvent{}, "node_suspect": ClusterEvent{}, "node_down": ClusterEvent{},
			"node_left": ClusterEvent{}, "node_updated": ClusterEvent{}, "node_removed": ClusterEvent{}, "node_admitted": ClusterEvent{},
			"partition_changed": ClusterEvent{}, "mode_changed": ClusterEvent{},
		},
		Stream: func(ctx context.Context, req *ops.Request, w ops.StreamWriter) error {
			cl := env.Node.Cluster()
			log := env.eventLog()
			var after uint64
			resume := false
			if req.LastEventID != "" {
				v, err := strconv.ParseUint(req.LastEventID, 10, 64)
				if err != nil {
					return ops.BadRequest("Last-Event-ID " + strconv.Quote(req.LastEventID) + " is not an event seq of this feed")
				}
				after, resume = v, true
			}
			// Subscribe first, then snapshot: an event that lands in between
			// is in both, and skipped below by its seq.
			backlog, ok, ch, cancel := log.subscribe(after)
			defer cancel()
			top := cl.Topology()
			// An id beyond this node's last event comes from another node or
			// an earlier incarnation of this one (seq starts again at 1).
			ok = ok && after <= top.Seq
			last := after
			if !resume || !ok {
				snap := FeedSnapshot{Seq: top.Seq, Topology: topologyOf(env, top), ResumeFailed: resume}
				if err := w.SendID(strconv.FormatUint(top.Seq, 10), "topology", snap); err != nil {
					return nil
				}
				last = top.Seq
			}
			send := func(ev cluster.Event) bool {
				if ev.Seq <= last {
					return true
				}
				last = ev.Seq
				return w.SendID(strconv.FormatUint(ev.Seq, 10), string(ev.Type), wireEvent(ev, env.Node.Name())) == nil
			}
			for _, ev := range backlog {
				if !send(ev) {
					return nil
				}
			}
			for {
				select {
				case <-ctx.Done():
					return nil
				case ev, open := <-ch:
					if !open {
						return nil
					}
					if !send(ev) {
						return nil
					}
				}
			}
		},
	}
}
