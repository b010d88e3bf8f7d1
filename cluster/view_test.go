package cluster

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// newTestView is a Cluster without memberlist: the view, the feed and the
// state machine, driven by calling the delegate handlers directly.
func newTestView(t *testing.T, self string, expected int) (*Cluster, *collector) {
	t.Helper()
	c := &Cluster{
		cfg:          Config{ClusterName: "v", NodeName: self, ExpectedSize: expected, Incarnation: 1, ReconnectTimeout: defaultReconnectTimeout, DeathGrace: -1},
		settings:     ProfileFast.Settings(),
		log:          testLogger(),
		members:      map[string]*Member{},
		leaveIntents: map[string]uint64{},
		conflicts:    map[string]string{},
		pendingDown:  map[string]*pendingDown{},
		partition:    PartitionStatus{State: Healthy, Expected: 1, Up: 1},
		mode:         SingleNode,
		discovered:   -1,
		changed:      make(chan struct{}),
		stop:         make(chan struct{}),
		initialDone:  true, // as after Start's first join round and settle rounds
		settled:      true,
	}
	if expected > 1 { // as Start does
		c.partition = PartitionStatus{State: Forming, Expected: expected, Up: 1}
	}
	c.feed = newFeed(c.log)
	col := collect(c)
	t.Cleanup(func() {
		c.feed.close()
		<-col.done
	})
	c.nodeAlive(mlNode(self, 1, 1), false)
	return c, col
}

func mlNode(name string, port int, inc uint64) *memberlist.Node {
	return &memberlist.Node{
		Name: name,
		Addr: net.IPv4(127, 0, 0, 1),
		Port: uint16(port),
		Meta: encodeMeta(wireMeta{Cluster: "v", Incarnation: inc, NodeAddr: "127.0.0.1:9"}),
	}
}

// settle waits until the feed delivered everything published so far.
func settle(t *testing.T, c *Cluster, col *collector) []Event {
	t.Helper()
	c.mu.Lock()
	last := c.seq
	c.mu.Unlock()
	eventually(t, wait, func() string {
		evs := col.all()
		if len(evs) == 0 || evs[len(evs)-1].Seq < last {
			return "feed not drained"
		}
		return ""
	})
	return col.all()
}

func types(evs []Event, node string) []EventType {
	var out []EventType
	for _, e := range evs {
		if node == "" || e.Node == node {
			out = append(out, e.Type)
		}
	}
	return out
}

func TestViewLeaveIntentAfterDeath(t *testing.T) {
	c, col := newTestView(t, "a", 0)
	c.nodeAlive(mlNode("b", 2, 7), false)
	c.nodeGone("b")
	if s := statusOf(c, "b"); s != StatusDead {
		t.Fatalf("b is %s", s)
	}
	if p := c.Partition(); p.State != Partial || !p.TieBreak {
		t.Errorf("1 of 2 holding the lowest name: %+v", p)
	}
	c.leaveAnnounced(leaveIntent{Name: "b", Incarnation: 7})
	if s := statusOf(c, "b"); s != StatusLeft {
		t.Fatalf("b is %s after its late leave intent", s)
	}
	if p := c.Partition(); p.State != Healthy || p.Expected != 1 {
		t.Errorf("after b left: %+v", p)
	}
	evs := settle(t, c, col)
	if got := types(evs, "b"); !slices.Equal(got, []EventType{NodeUp, NodeDown, NodeLeft}) {
		t.Errorf("events for b: %v", got)
	}
	// A stale intent (older incarnation) does not turn a crash into a leave.
	c.nodeAlive(mlNode("b", 2, 8), false)
	c.leaveAnnounced(leaveIntent{Name: "b", Incarnation: 7})
	c.nodeGone("b")
	if s := statusOf(c, "b"); s != StatusDead {
		t.Errorf("b is %s; a stale intent must not count", s)
	}
}

func TestViewLeaveIntentFirst(t *testing.T) {
	c, col := newTestView(t, "a", 0)
	c.nodeAlive(mlNode("b", 2, 7), false)
	c.leaveAnnounced(leaveIntent{Name: "b", Incarnation: 7})
	c.nodeGone("b")
	evs := settle(t, c, col)
	if got := types(evs, "b"); !slices.Equal(got, []EventType{NodeUp, NodeLeft}) {
		t.Errorf("events for b: %v", got)
	}
	// Unknown names are ignored (only members announce to us).
	c.leaveAnnounced(leaveIntent{Name: "zz", Incarnation: 1})
	if len(c.leaveIntents) != 1 {
		t.Errorf("intents %v", c.leaveIntents)
	}
}

func TestViewRestartBeforeDetection(t *testing.T) {
	c, col := newTestView(t, "a", 0)
	c.nodeAlive(mlNode("b", 2, 7), false)
	c.nodeAlive(mlNode("b", 2, 9), true) // NotifyUpdate with a new incarnation
	evs := settle(t, c, col)
	var bEvents []Event
	for _, e := range evs {
		if e.Node == "b" {
			bEvents = append(bEvents, e)
		}
	}
	if got := types(bEvents, ""); !slices.Equal(got, []EventType{NodeUp, NodeDown, NodeUp}) {
		t.Fatalf("events for b: %v", got)
	}
	down, up := bEvents[1], bEvents[2]
	if !down.Restarted || down.Member.Incarnation != 7 || !up.Restarted || up.OldIncarnation != 7 || up.Member.Incarnation != 9 {
		t.Errorf("down %+v\nup %+v", down, up)
	}
	if m, _ := memberOf(c, "b"); m.Status != StatusAlive || m.Incarnation != 9 {
		t.Errorf("b = %+v", m)
	}
	// Mode and partition never moved: the member was never missing.
	if slices.Contains(types(evs, ""), PartitionChanged) || c.Mode() != MultiNode {
		t.Errorf("events %v, mode %s", types(evs, ""), c.Mode())
	}
}

func TestViewSuspect(t *testing.T) {
	c, col := newTestView(t, "a", 0)
	c.nodeAlive(mlNode("b", 2, 7), false)
	c.markSuspect("b")
	if s := statusOf(c, "b"); s != StatusSuspect {
		t.Fatalf("b is %s", s)
	}
	if p := c.Partition(); p.Up != 2 || c.Mode() != MultiNode {
		t.Errorf("a suspect still counts as up: %+v %s", p, c.Mode())
	}
	c.probeOK("b")
	c.markSuspect("nobody")
	c.markSuspect("b")
	c.nodeAlive(mlNode("b", 2, 7), true) // refutation that also changed metadata
	evs := settle(t, c, col)
	want := []EventType{NodeUp, NodeSuspect, NodeUp, NodeSuspect, NodeUp, NodeUpdated}
	if got := types(evs, "b"); !slices.Equal(got, want) {
		t.Errorf("events for b: %v, want %v", got, want)
	}
}

func TestViewTieBreak(t *testing.T) {
	// Four members split 2|2: the side with the lowest name is partial.
	for _, tc := range []struct {
		self  string
		peer  string
		state PartitionState
	}{
		{"a", "b", Partial},
		{"c", "d", Minority},
	} {
		c, _ := newTestView(t, tc.self, 0)
		for i, n := range []string{"a", "b", "c", "d"} {
			if n != tc.self {
				c.nodeAlive(mlNode(n, 10+i, 1), false)
			}
		}
		for _, n := range []string{"a", "b", "c", "d"} {
			if n != tc.self && n != tc.peer {
				c.nodeGone(n)
			}
		}
		if p := c.Partition(); p.State != tc.state || !p.TieBreak || p.Up != 2 || p.Expected != 4 {
			t.Errorf("%s: %+v, want %s", tc.self, p, tc.state)
		}
	}
}

func TestViewExpectedSize(t *testing.T) {
	c, col := newTestView(t, "a", 3)
	if p := c.Partition(); p.Expected != 3 {
		t.Errorf("expected %+v", p)
	}
	c.nodeAlive(mlNode("b", 2, 1), false)
	c.nodeAlive(mlNode("c", 3, 1), false)
	c.nodeGone("c")
	c.nodeGone("b")
	evs := settle(t, c, col)
	var states []PartitionState
	for _, e := range evs {
		if e.Type == PartitionChanged {
			states = append(states, e.Partition.State)
		}
	}
	// alone of 3 (minority) → 2 of 3 (partial) → 3 (healthy) → partial → minority
	want := []PartitionState{Partial, Healthy, Partial, Minority}
	if !slices.Equal(states, want) {
		t.Errorf("partition changes %v, want %v", states, want)
	}
}

func TestCheckPeer(t *testing.T) {
	c, _ := newTestView(t, "a", 0)
	d := &delegate{c: c}
	if err := d.NotifyAlive(mlNode("b", 2, 1)); err != nil {
		t.Errorf("same cluster refused: %v", err)
	}
	foreign := mlNode("x", 3, 1)
	foreign.Meta = encodeMeta(wireMeta{Cluster: "other", Incarnation: 1})
	if err := d.NotifyAlive(foreign); err == nil {
		t.Error("foreign cluster accepted")
	}
	if err := d.NotifyMerge([]*memberlist.Node{mlNode("b", 2, 1), foreign}); err == nil {
		t.Error("merge with a foreign member accepted")
	}
	bare := mlNode("y", 4, 1)
	bare.Meta = nil
	if err := d.NotifyAlive(bare); err == nil {
		t.Error("peer without metadata accepted")
	}
}

// A death learned only from others is held for the grace: a refutation
// meanwhile cancels it (no NodeDown at all); otherwise it is applied at the
// end, dated from the first report. A member this node suspected itself
// dies at once.
func TestViewDeathGrace(t *testing.T) {
	c, col := newTestView(t, "a", 0)
	c.cfg.DeathGrace = 150 * time.Millisecond
	c.nodeAlive(mlNode("b", 2, 1), false)
	c.nodeAlive(mlNode("c", 3, 1), false)
	c.nodeGone("b")
	if s := statusOf(c, "b"); s != StatusAlive {
		t.Fatalf("b is %s during the grace", s)
	}
	c.nodeAlive(mlNode("b", 2, 1), false) // the refutation
	reported := time.Now()
	c.nodeGone("c")
	eventually(t, wait, func() string {
		if s := statusOf(c, "c"); s != StatusDead {
			return "c is " + string(s)
		}
		return ""
	})
	if m, _ := memberOf(c, "c"); m.Since.Sub(reported) > 50*time.Millisecond || m.Since.Before(reported) {
		t.Errorf("c dead since %s, reported at %s", m.Since, reported)
	}
	c.markSuspect("b")
	c.nodeGone("b")
	if s := statusOf(c, "b"); s != StatusDead {
		t.Errorf("b, suspected by this node, is %s", s)
	}
	evs := settle(t, c, col)
	if got := types(evs, "b"); !slices.Equal(got, []EventType{NodeUp, NodeSuspect, NodeDown}) {
		t.Errorf("events for b: %v (the refuted death must not show)", got)
	}
	c.mu.Lock()
	refuted := c.refutedDeaths
	c.mu.Unlock()
	if refuted != 1 {
		t.Errorf("refuted deaths %d", refuted)
	}
}
