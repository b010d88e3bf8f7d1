package node_test

// Tests of the rule in doc.go, "A connection is a unit of fate": counts
// and orders, with both nodes members unless the test kills one.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/transport"
)

// startLinked starts size nodes with a short LinkTimeout (and mutate's
// changes) and waits until they form one cluster.
func startLinked(t *testing.T, size int, linkTimeout time.Duration, mutate func(i int, c *node.Config)) ([]*node.Node, []*syncBuf) {
	t.Helper()
	cl := fmt.Sprintf("l%d", time.Now().UnixNano())
	var nodes []*node.Node
	var logs []*syncBuf
	for i := 0; i < size; i++ {
		buf := &syncBuf{}
		cfg := node.Config{
			Name: fmt.Sprintf("n%d@127.0.0.1", i+1), Cluster: cl, Secret: secret, Profile: cluster.ProfileFast,
			Logger:        slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo})),
			FactsInterval: time.Hour, LinkTimeout: linkTimeout,
		}
		if i > 0 {
			cfg.Discovery = cluster.StaticSeeds(nodes[0].Addr())
		}
		if mutate != nil {
			mutate(i, &cfg)
		}
		n, err := node.Start(context.Background(), cfg)
		if err != nil {
			t.Fatalf("start %s: %v", cfg.Name, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = n.Close(ctx)
			if t.Failed() {
				t.Logf("logs of %s:\n%s", n.Name(), buf.String())
			}
		})
		nodes = append(nodes, n)
		logs = append(logs, buf)
	}
	for _, n := range nodes {
		testutil.Eventually(t, wait, func() bool { return n.Cluster().Topology().Alive == size }, "%s sees %d alive", n.Name(), size)
	}
	return nodes, logs
}

func linkTo(n *node.Node, peer string) node.LinkInfo {
	for _, li := range n.Links() {
		if li.Node == peer {
			return li
		}
	}
	return node.LinkInfo{Node: peer}
}

func alive(n *node.Node, peer string) bool {
	m, ok := n.Cluster().Member(peer)
	return ok && m.Status == cluster.StatusAlive
}

// staller never answers calls (they wait on the caller's side).
type staller struct{ process.Server }

func (staller) HandleCall(*process.Proc, process.From, any) (any, error) { return process.NoReply, nil }

// watcherOf spawns a process on n that runs setup, then forwards every
// DOWN and EXIT it receives to the returned channel.
func watcherOf(t *testing.T, n *node.Node, setup func(p *process.Proc)) (process.PID, <-chan any) {
	t.Helper()
	events := make(chan any, 1024)
	ready := make(chan struct{})
	pid, err := n.Runtime().SpawnFunc(func(p *process.Proc) error {
		p.TrapExits(true)
		setup(p)
		close(ready)
		for {
			m, err := p.Receive(context.Background())
			if err != nil {
				return err
			}
			switch m.(type) {
			case process.DownMsg, process.ExitMsg:
				events <- m
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	<-ready
	return pid, events
}

// A node-link-only cut (gossip untouched, so both nodes stay alive
// members): within the documented bound every monitor and link across
// the connection fires noconnection exactly once, on both sides, every
// waiting call fails at once with an error that says why, a monitor that
// cannot be set up meanwhile reports at once, and after the cut traffic
// resumes on a fresh connection.
func TestLinkCutFiresNoConnectionOnce(t *testing.T) {
	const linkTimeout = 2 * time.Second
	nodes, _ := startLinked(t, 2, linkTimeout, nil)
	a, b := nodes[0], nodes[1]
	rtB := b.Runtime()
	t1, _ := rtB.Spawn(echo{})
	t2, _ := rtB.Spawn(echo{})
	t3, _ := rtB.Spawn(echo{})
	slow, _ := rtB.Spawn(staller{})
	w, events := watcherOf(t, a, func(p *process.Proc) {
		p.Monitor(t1)
		p.Monitor(t2)
		p.Monitor(t2)
		p.Link(t3)
	})
	// And the other way: a process on b monitors and links w.
	wb, eventsB := watcherOf(t, b, func(p *process.Proc) { p.Monitor(w); p.Link(w) })
	testutil.Eventually(t, wait, func() bool {
		i1, _ := rtB.Info(t1)
		i2, _ := rtB.Info(t2)
		i3, _ := rtB.Info(t3)
		wi, _ := a.Runtime().Info(w)
		return len(i1.MonitoredBy) == 1 && len(i2.MonitoredBy) == 2 && len(i3.Links) == 1 && len(wi.MonitoredBy) == 1 && len(wi.Links) == 2
	}, "links and monitors not set up")
	before := linkTo(a, b.Name())
	if !before.Connected || !before.Inbound || before.Monitors != 4 || before.Links != 2 {
		t.Fatalf("connection before the cut: %+v", before)
	}
	const calls = 3
	callErrs := make(chan error, calls)
	for range calls {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := a.Runtime().Call(ctx, slow, "wait")
			callErrs <- err
		}()
	}
	testutil.Eventually(t, wait, func() bool { return linkTo(a, b.Name()).Calls == calls }, "calls not waiting")

	cut := time.Now()
	a.Faults().BlockLinks(b.Name(), transport.Both)
	// w: three DOWNs, and two EXITs (its link to t3, and wb's link to it).
	var downs, exits int
	for downs+exits < 5 {
		switch m := testutil.Recv(t, events, wait, "noconnection on a").(type) {
		case process.DownMsg:
			if m.Reason != process.NoConnection {
				t.Errorf("DOWN %v reason %v", m.PID, m.Reason)
			}
			downs++
		case process.ExitMsg:
			if m.Reason != process.NoConnection || (m.From != t3 && m.From != wb) {
				t.Errorf("EXIT %v reason %v", m.From, m.Reason)
			}
			exits++
		}
	}
	fired := time.Since(cut)
	for range calls {
		err := testutil.Recv(t, callErrs, wait, "call failure")
		var ce *node.ConnectionLostError
		if !errors.Is(err, process.NoConnection) || !errors.As(err, &ce) || ce.Node != b.Name() || ce.Cause == nil {
			t.Errorf("waiting call failed with %v; want a lost connection to %s, with its cause", err, b.Name())
		}
	}
	callsFailed := time.Since(cut)
	bound := linkTimeout*5/4 + testutil.Scale(2*time.Second)
	t.Logf("link-only cut: 3 DOWN + 2 EXIT noconnection after %s, %d waiting calls failed after %s (bound %s)",
		fired.Round(time.Millisecond), calls, callsFailed.Round(time.Millisecond), bound)
	if callsFailed > bound {
		t.Errorf("the connection was lost after %s, more than %s", callsFailed, bound)
	}
	if downs != 3 || exits != 2 {
		t.Fatalf("downs %d exits %d; want 3 and 2", downs, exits)
	}
	// b's side: the monitor and link of w fire there too, once.
	gotB := map[string]int{}
	for range 2 {
		switch m := testutil.Recv(t, eventsB, wait, "noconnection on b").(type) {
		case process.DownMsg:
			gotB[fmt.Sprint("down ", m.Reason)]++
		case process.ExitMsg:
			gotB[fmt.Sprint("exit ", m.Reason)]++
		}
	}
	if gotB["down noconnection"] != 1 || gotB["exit noconnection"] != 1 {
		t.Errorf("b's watcher got %v; want one DOWN and one EXIT, noconnection", gotB)
	}
	// b forgot a's monitors and links of its processes.
	testutil.Eventually(t, wait, func() bool {
		i1, _ := rtB.Info(t1)
		i2, _ := rtB.Info(t2)
		i3, _ := rtB.Info(t3)
		return len(i1.MonitoredBy) == 0 && len(i2.MonitoredBy) == 0 && len(i3.Links) == 0
	}, "b kept a's monitors or links after the connection was lost")
	if !alive(a, b.Name()) || !alive(b, a.Name()) {
		t.Fatalf("the nodes must stay members through a link-only cut")
	}
	// While the cut lasts, a monitor cannot be set up: it reports at once.
	t0 := time.Now()
	_, late := watcherOf(t, a, func(p *process.Proc) { p.Monitor(t1) })
	if d := testutil.Recv(t, late, wait, "DOWN for a monitor that cannot be set up").(process.DownMsg); d.Reason != process.NoConnection {
		t.Errorf("monitor across a cut: DOWN %v", d.Reason)
	}
	if d := time.Since(t0); d > testutil.Scale(3*time.Second) {
		t.Errorf("a monitor that cannot be set up reported after %s", d)
	}
	if _, err := a.Runtime().Call(context.Background(), t1, "x"); !errors.Is(err, process.NoConnection) {
		t.Errorf("call across the cut = %v; want noconnection at once", err)
	}
	testutil.Never(t, events, 300*time.Millisecond, "a second signal on a")
	testutil.Never(t, eventsB, 0, "a second signal on b")

	// Lifted: the next frame opens a fresh connection, which carries new
	// monitors and calls.
	a.Faults().ClearAll()
	var v any
	testutil.Eventually(t, wait, func() bool {
		var err error
		v, err = a.Runtime().Call(context.Background(), t1, "again")
		return err == nil
	}, "calls do not resume after the cut")
	after := linkTo(a, b.Name())
	if v != "again" || after.Epoch <= before.Epoch || !after.Connected {
		t.Errorf("after the cut: %v on %+v; want a fresh connection (epoch > %d)", v, after, before.Epoch)
	}
	_, again := watcherOf(t, a, func(p *process.Proc) { p.Monitor(t1) })
	testutil.Eventually(t, wait, func() bool { i, _ := rtB.Info(t1); return len(i.MonitoredBy) == 1 }, "new monitor not set up")
	_ = rtB.Kill(t1)
	if d := testutil.Recv(t, again, wait, "DOWN on the new connection").(process.DownMsg); !errors.Is(d.Reason, process.Killed) {
		t.Errorf("new monitor's DOWN reason %v; want killed", d.Reason)
	}
	if n := a.Stats().ConnectionsLost.Load(); n < 1 {
		t.Errorf("ConnectionsLost = %d", n)
	}
}

// The connection is lost at once when the peer's link closes (here: the
// peer node crashes), before membership has decided anything: 10 000
// monitors across it each fire exactly once.
func TestTenThousandMonitorsFireOnceWhenNodeDies(t *testing.T) {
	nodes, _ := startLinked(t, 2, 0, nil)
	a, b := nodes[0], nodes[1]
	const targets, watchers = 100, 100
	var pids []process.PID
	for range targets {
		pid, err := b.Runtime().Spawn(echo{})
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	var mu sync.Mutex
	got := map[process.Ref]int{}
	var bad atomic.Int64
	var total atomic.Int64
	all := make(chan struct{})
	for range watchers {
		_, err := a.Runtime().SpawnFunc(func(p *process.Proc) error {
			for _, pid := range pids {
				p.Monitor(pid)
			}
			for {
				m, err := p.Receive(context.Background())
				if err != nil {
					return err
				}
				if d, ok := m.(process.DownMsg); ok {
					if d.Reason != process.NoConnection {
						bad.Add(1)
					}
					mu.Lock()
					got[d.Ref]++
					mu.Unlock()
					if total.Add(1) == targets*watchers {
						close(all)
					}
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, wait, func() bool {
		return linkTo(a, b.Name()).Monitors == targets*watchers && linkTo(b, a.Name()).Monitors == targets*watchers
	}, "10000 monitors not set up: a %+v, b %+v", linkTo(a, b.Name()), linkTo(b, a.Name()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	killed := time.Now()
	_ = b.Close(ctx) // a crash: no leave
	select {
	case <-all:
	case <-time.After(wait):
		t.Fatalf("%d of %d DOWNs after the crash", total.Load(), targets*watchers)
	}
	t.Logf("%d monitors fired noconnection %s after the crash", targets*watchers, time.Since(killed).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != targets*watchers || total.Load() != targets*watchers || bad.Load() != 0 {
		t.Fatalf("%d DOWNs for %d distinct monitors, %d with another reason; want %d, each once, noconnection",
			total.Load(), len(got), bad.Load(), targets*watchers)
	}
	if li := linkTo(a, b.Name()); li.Epoch != 0 || li.Monitors != 0 {
		t.Errorf("connection after the crash: %+v", li)
	}
}

// Send never blocks on a peer's condition: a peer whose link is cut
// (frames held, as TCP would) under a flood of large messages fills the
// queue; past the bound the connection is lost (overload), with its
// noconnection, once; every Send returns promptly; and meanwhile the
// death of a third node, which only membership can see (it is cut off
// from everyone: its links stay open, silent, for LinkTimeout), is
// handled by membership while the flood goes on.
func TestSendNeverBlocksOnStuckPeer(t *testing.T) {
	nodes, logs := startLinked(t, 3, 0, func(i int, c *node.Config) {
		if i == 0 {
			c.SendQueueBytes = 1 << 20
		}
	})
	a, b, c := nodes[0], nodes[1], nodes[2]
	sink, _ := b.Runtime().SpawnFunc(func(p *process.Proc) error {
		for {
			if _, err := p.Receive(context.Background()); err != nil {
				return err
			}
		}
	})
	onC, _ := c.Runtime().Spawn(echo{})
	_, events := watcherOf(t, a, func(p *process.Proc) { p.Monitor(sink); p.Monitor(onC) })
	testutil.Eventually(t, wait, func() bool {
		i, _ := b.Runtime().Info(sink)
		j, _ := c.Runtime().Info(onC)
		return len(i.MonitoredBy) == 1 && len(j.MonitoredBy) == 1
	}, "monitors not set up")

	a.Faults().BlockLinks(b.Name(), transport.Outbound) // b "stops reading"
	// The flood runs until the third node's DOWN has arrived (or maxSends).
	const maxSends, size = 20000, 64 << 10
	payload := strings.Repeat("x", size)
	var slowest, sends atomic.Int64
	stop := make(chan struct{})
	flooded := make(chan time.Duration, 1)
	_, _ = a.Runtime().SpawnFunc(func(p *process.Proc) error {
		start := time.Now()
		defer func() { flooded <- time.Since(start) }()
		for sends.Load() < maxSends {
			select {
			case <-stop:
				return nil
			default:
			}
			t0 := time.Now()
			p.Send(sink, payload)
			if d := int64(time.Since(t0)); d > slowest.Load() {
				slowest.Store(d)
			}
			sends.Add(1)
		}
		return nil
	})
	// c is cut off from a and b, gossip and links, both ways, on its side.
	for _, n := range []*node.Node{a, b} {
		c.Faults().Block(n.Name(), transport.Both)
		c.Faults().Block(n.Addr(), transport.Both)
	}
	cut := time.Now()
	seen := map[process.PID]int{}
	var sendsAtDown int64
	for range 2 {
		d := testutil.Recv(t, events, wait, "DOWN").(process.DownMsg)
		if d.Reason != process.NoConnection {
			t.Errorf("DOWN for %v: %v", d.PID, d.Reason)
		}
		seen[d.PID]++
		if d.PID == onC {
			sendsAtDown = sends.Load()
			t.Logf("the third node's death fired its monitor %s after it was cut off, %d sends into the flood", time.Since(cut).Round(time.Millisecond), sendsAtDown)
		}
	}
	close(stop)
	took := testutil.Recv(t, flooded, wait, "the flood of sends")
	t.Logf("%d sends of %d KiB to a stuck peer returned in %s; slowest %s", sends.Load(), size>>10, took.Round(time.Millisecond), time.Duration(slowest.Load()))
	if seen[sink] != 1 || seen[onC] != 1 {
		t.Errorf("DOWNs %v; want one for the stuck peer's sink and one for the cut-off node's process", seen)
	}
	if sendsAtDown == 0 || sendsAtDown >= maxSends {
		t.Errorf("the third node's DOWN came after %d sends; want it during the flood (1 to %d)", sendsAtDown, maxSends-1)
	}
	// Membership lost it, not the keepalive of its silent links (which
	// would be the first to, if membership handling waited on the flood).
	if !slices.ContainsFunc(strings.Split(logs[0].String(), "\n"), func(l string) bool {
		return strings.Contains(l, "connection lost") && strings.Contains(l, "peer="+c.Name()) && strings.Contains(l, `cause="membership: `+c.Name()+` is down"`)
	}) {
		t.Errorf("the connection to the cut-off node was not lost to membership; a's log:\n%s", logs[0].String())
	}
	// Loose: before issue 10 a Send here blocked until the write timeout.
	if time.Duration(slowest.Load()) > testutil.Scale(2*time.Second) {
		t.Errorf("a Send took %s: Send must never wait on a peer", time.Duration(slowest.Load()))
	}
	if ov := a.Stats().Overloads.Load(); ov < 1 {
		t.Errorf("Overloads = %d; want the stuck peer's connection lost to overload", ov)
	}
	testutil.Never(t, events, 300*time.Millisecond, "a second DOWN")
	if m, ok := a.Cluster().Member(b.Name()); !ok || !m.Status.Up() {
		t.Errorf("the stuck peer must stay a member (only its connection is lost); it is %v", m.Status)
	}
	// Until every view of the cut is settled, memberlist probes across it
	// are in flight, and would outlive the nodes' Close (goleak).
	down := func(n *node.Node, peer string) bool { m, ok := n.Cluster().Member(peer); return !ok || !m.Status.Up() }
	testutil.Eventually(t, wait, func() bool {
		return down(b, c.Name()) && down(c, a.Name()) && down(c, b.Name())
	}, "the cut-off node's views not settled")
}

// setUpAcross spawns a watcher on n that monitors and links to target,
// waits for what that brings (one DOWN, one EXIT), and calls target with
// a minute to spare. Across no connection each must report noconnection
// (doc.go, rule 5): the DOWN and the EXIT arrive, once, and the call
// fails with NoConnection, not with its timeout.
func setUpAcross(t *testing.T, n *node.Node, target process.PID, what string) {
	t.Helper()
	_, events := watcherOf(t, n, func(p *process.Proc) { p.Monitor(target); p.Link(target) })
	got := map[string]int{}
	for range 2 {
		switch m := testutil.Recv(t, events, wait, what+": DOWN or EXIT").(type) {
		case process.DownMsg:
			got[fmt.Sprint("down ", m.Reason)]++
		case process.ExitMsg:
			got[fmt.Sprint("exit ", m.Reason)]++
		}
	}
	if got["down noconnection"] != 1 || got["exit noconnection"] != 1 {
		t.Errorf("%s: got %v; want one DOWN and one EXIT, noconnection", what, got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := n.Runtime().Call(ctx, target, "x"); !errors.Is(err, process.NoConnection) {
		t.Errorf("%s: call = %v; want noconnection", what, err)
	}
	testutil.Never(t, events, 200*time.Millisecond, what+": a second signal")
}

// A monitor, a link or a call that cannot be set up because there is no
// connection to be had reports that at once (doc.go, rule 5): to a node
// nobody has heard of; to a member whose dial fails (the first attempt
// fails with the dial, the next at once, in the backoff); and to a node
// that membership has declared dead.
func TestWhatCannotBeSetUpFailsAtOnce(t *testing.T) {
	nodes, _ := startLinked(t, 2, 500*time.Millisecond, nil)
	a, b := nodes[0], nodes[1]
	target, err := b.Runtime().Spawn(echo{})
	if err != nil {
		t.Fatal(err)
	}

	setUpAcross(t, a, process.PID{Node: "ghost@127.0.0.1", Incarnation: 1, ID: 1}, "a node nobody knows")

	// Node links cut, gossip untouched: b stays a member, but no dial to
	// it succeeds.
	a.Faults().BlockLinks(b.Name(), transport.Both)
	testutil.Eventually(t, wait, func() bool { return linkTo(a, b.Name()).Epoch == 0 }, "the connection to b was not lost")
	failed := a.Stats().DialsFailed.Load()
	setUpAcross(t, a, target, "a member whose dial fails")
	setUpAcross(t, a, target, "a member in its dial backoff")
	if n := a.Stats().DialsFailed.Load() - failed; n < 1 {
		t.Errorf("dials failed: %d; want the first set-up to have dialled", n)
	}
	// (Up, not alive: under load the fast profile may suspect b a moment.)
	if m, ok := a.Cluster().Member(b.Name()); !ok || !m.Status.Up() {
		t.Fatalf("b must still be a member: only its node links are cut; it is %v", m.Status)
	}
	a.Faults().ClearAll()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = b.Close(ctx) // a crash
	testutil.Eventually(t, wait, func() bool { m, ok := a.Cluster().Member(b.Name()); return ok && !m.Status.Up() }, "b not declared dead")
	setUpAcross(t, a, target, "a dead node")
}

// A malformed frame from a peer (a short or truncated frame, a bad
// varint or length, a value that is not CBOR, trailing bytes, a PID that
// is not the peer's or not ours, an unknown kind) closes the link it came
// on, and so loses that one connection: its monitors fire noconnection,
// once, on both sides; nothing of the frame is delivered; the node and
// its connections to other nodes carry on; the next frame opens a fresh
// connection.
func TestMalformedFrameLosesOnlyThatConnection(t *testing.T) {
	nodes, _ := startLinked(t, 3, 0, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	delivered := make(chan any, 64)
	sink, err := a.Runtime().SpawnFunc(func(p *process.Proc) error {
		for {
			m, err := p.Receive(context.Background())
			if err != nil {
				return err
			}
			delivered <- m
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	echoB, _ := b.Runtime().Spawn(echo{})
	echoC, _ := c.Runtime().Spawn(echo{})
	// Across a <-> c: must not fire.
	_, eventsC := watcherOf(t, a, func(p *process.Proc) { p.Monitor(echoC) })
	monitoredBy := func(rt *process.Runtime, pid process.PID) int { i, _ := rt.Info(pid); return len(i.MonitoredBy) }
	testutil.Eventually(t, wait, func() bool { return monitoredBy(c.Runtime(), echoC) == 1 }, "monitor a -> c not set up")

	frames := node.MalformedFrames(echoB, sink, echoC)
	names := make([]string, 0, len(frames))
	for k := range frames {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, name := range names {
		// One monitor each way across the connection a <-> b.
		_, onB := watcherOf(t, b, func(p *process.Proc) { p.Monitor(sink) })
		_, onA := watcherOf(t, a, func(p *process.Proc) { p.Monitor(echoB) })
		testutil.Eventually(t, wait, func() bool {
			return monitoredBy(a.Runtime(), sink) == 1 && monitoredBy(b.Runtime(), echoB) == 1 && linkTo(b, a.Name()).Connected
		}, "%s: monitors a <-> b not set up", name)
		epoch, bad := linkTo(b, a.Name()).Epoch, a.Stats().BadFrames.Load()
		if ok, err := node.SendRawFrame(b, a.Name(), frames[name]); !ok || err != nil {
			t.Fatalf("%s: not sent: %v", name, err)
		}
		for what, ch := range map[string]<-chan any{"on a": onA, "on b": onB} {
			if d := testutil.Recv(t, ch, wait, name+": DOWN "+what).(process.DownMsg); d.Reason != process.NoConnection {
				t.Errorf("%s: DOWN %s: %v; want noconnection", name, what, d.Reason)
			}
		}
		if n := a.Stats().BadFrames.Load() - bad; n != 1 {
			t.Errorf("%s: %d bad frames counted; want 1", name, n)
		}
		if li := linkTo(b, a.Name()); li.Epoch == epoch {
			t.Errorf("%s: b still on connection %d: %+v", name, epoch, li)
		}
		testutil.Never(t, onA, 0, name+": a second DOWN on a")
		testutil.Never(t, onB, 0, name+": a second DOWN on b")
	}
	testutil.Never(t, delivered, 0, "a message delivered from a malformed frame")
	testutil.Never(t, eventsC, 0, "a signal across the connection a <-> c")
	// a carries on, with b on a fresh connection and with c.
	b.Runtime().Send(sink, "after")
	if m := testutil.Recv(t, delivered, wait, "a message after the malformed frames"); m != "after" {
		t.Errorf("delivered %v; want \"after\"", m)
	}
	for _, pid := range []process.PID{echoB, echoC} {
		if v, err := a.Runtime().Call(context.Background(), pid, "still"); err != nil || v != "still" {
			t.Errorf("call %v after the malformed frames: %v %v", pid, v, err)
		}
	}
	for _, n := range []*node.Node{b, c} {
		if m, ok := n.Cluster().Member(a.Name()); !ok || !m.Status.Up() {
			t.Errorf("a must stay a member: only its connection to b is lost; %s sees it %v", n.Name(), m.Status)
		}
	}
}
