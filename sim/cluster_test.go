package sim_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/sim"
)

// within returns a context for one wait, scaled by ARSENAL_TEST_SCALE.
// bothClocks runs a scenario twice: on the real clock, and inside a
// testing/synctest bubble, where time is virtual and only advances when
// every goroutine of the cluster waits.
func bothClocks(t *testing.T, scenario func(*testing.T)) {
	t.Run("real", scenario)
	t.Run("virtual", func(t *testing.T) { synctest.Test(t, scenario) })
}

// options returns the options for a scenario, noting whether it runs in
// a bubble (testing.T does not say; the subtest name does).
func options(t *testing.T, nodes int, seed uint64) sim.Options {
	return sim.Options{Nodes: nodes, Seed: seed, Synctest: strings.HasSuffix(t.Name(), "/virtual")}
}

func within(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(d))
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type echo struct{ process.Server }

func (echo) HandleCall(_ *process.Proc, _ process.From, req any) (any, error) { return req, nil }

// sink spawns a process on n that forwards every message it gets to the
// returned channel.
func sink(t *testing.T, n *node.Node) (process.PID, <-chan any) {
	t.Helper()
	ch := make(chan any, 1024)
	pid, err := n.Runtime().SpawnFunc(func(p *process.Proc) error {
		for {
			m, err := p.Receive(p.Context())
			if err != nil {
				return err
			}
			ch <- m
		}
	})
	must(t, err)
	return pid, ch
}

// noneDead reports whether no running node sees any member dead.
func noneDead(c *sim.Cluster) func() bool {
	return func() bool {
		for _, n := range c.Nodes() {
			if n == nil {
				continue
			}
			for _, m := range n.Cluster().Members() {
				if m.Status == cluster.StatusDead {
					return false
				}
			}
		}
		return true
	}
}

func TestFormsCluster(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { bothClocks(t, func(t *testing.T) { testFormsCluster(t, size) }) })
	}
}

func testFormsCluster(t *testing.T, size int) {
	c := sim.Start(t, options(t, size, uint64(size)))
	for i, n := range c.Nodes() {
		if n.Cluster().Mode() != cluster.Simulated {
			t.Errorf("node %d: mode %s, want simulated", i, n.Cluster().Mode())
		}
		top := n.Cluster().Topology()
		if top.Alive != size {
			t.Errorf("node %d: %d alive, want %d", i, top.Alive, size)
		}
		if p := n.Cluster().Partition(); p.State != cluster.Healthy {
			t.Errorf("node %d: partition %v", i, p)
		}
		if n.Addr() != c.Addr(i) || n.Name() != c.Name(i) {
			t.Errorf("node %d: %s at %s, want %s at %s", i, n.Name(), n.Addr(), c.Name(i), c.Addr(i))
		}
	}
	must(t, c.Eventually(within(t, 10*time.Second), "gossip packets delivered", func() bool {
		return c.Network().Stats().PacketsDelivered > 0
	}))
}

func TestRemoteCallMonitorAndCrash(t *testing.T) { bothClocks(t, testRemoteCallMonitorAndCrash) }

func testRemoteCallMonitorAndCrash(t *testing.T) {
	c := sim.Start(t, options(t, 3, 7))
	a, victim := c.Node(0), c.Node(2)
	target, err := victim.Runtime().Spawn(echo{})
	must(t, err)
	linked, err := victim.Runtime().Spawn(echo{})
	must(t, err)

	v, err := a.Runtime().Call(within(t, 10*time.Second), target, "ping")
	if err != nil || v != "ping" {
		t.Fatalf("remote call = %v, %v", v, err)
	}

	events := make(chan any, 16)
	_, err = a.Runtime().SpawnFunc(func(p *process.Proc) error {
		p.TrapExits(true)
		p.Monitor(target)
		p.Link(linked)
		for {
			m, err := p.Receive(p.Context())
			if err != nil {
				return err
			}
			if e, ok := m.(process.ExitMsg); ok && e.From.IsZero() {
				return nil // the runtime's shutdown
			}
			events <- m
		}
	})
	must(t, err)
	must(t, c.Eventually(within(t, 10*time.Second), "monitor and link registered", func() bool {
		in, err1 := victim.Runtime().Info(target)
		in2, err2 := victim.Runtime().Info(linked)
		return err1 == nil && err2 == nil && len(in.MonitoredBy) == 1 && len(in2.Links) == 1
	}))

	c.Kill(2)
	var downs, exits int
	for range 2 {
		switch m := testutil.Recv(t, events, 10*time.Second, "noconnection signal").(type) {
		case process.DownMsg:
			if !errors.Is(m.Reason, process.NoConnection) || m.PID != target {
				t.Fatalf("DOWN %+v", m)
			}
			downs++
		case process.ExitMsg:
			if !errors.Is(m.Reason, process.NoConnection) || m.From != linked {
				t.Fatalf("EXIT %+v", m)
			}
			exits++
		default:
			t.Fatalf("unexpected message %#v", m)
		}
	}
	if downs != 1 || exits != 1 {
		t.Fatalf("downs %d exits %d, want 1 and 1", downs, exits)
	}
	for _, obs := range []int{0, 1} {
		must(t, c.WaitStatus(within(t, 10*time.Second), obs, 2, cluster.StatusDead))
		top := c.Node(obs).Cluster().Topology()
		dead := 0
		for _, m := range top.Nodes {
			if m.Status == cluster.StatusDead {
				dead++
			}
		}
		if dead != 1 || top.Alive != 2 {
			t.Fatalf("node %d topology: %d dead, %d alive", obs, dead, top.Alive)
		}
	}
	// Until here every DOWN and EXIT came exactly once; a late duplicate
	// would have to come through the node layer, which has now finished.
	select {
	case m := <-events:
		t.Fatalf("extra signal %#v", m)
	default:
	}
	if _, err := a.Runtime().Call(within(t, 10*time.Second), target, "x"); !errors.Is(err, process.NoConnection) {
		t.Fatalf("call to a process on a crashed node = %v", err)
	}
	if c.State(2) != sim.Killed || c.Node(2) != nil {
		t.Fatalf("state %s", c.State(2))
	}
}

func TestPartitionAndHeal(t *testing.T) { bothClocks(t, testPartitionAndHeal) }

func testPartitionAndHeal(t *testing.T) {
	c := sim.Start(t, options(t, 5, 11))
	c.Partition([]int{0, 1, 2}, []int{3, 4})
	for _, i := range []int{0, 1, 2} {
		must(t, c.WaitSees(within(t, 15*time.Second), i, 0, 1, 2))
		must(t, c.WaitPartition(within(t, 5*time.Second), i, cluster.Partial))
	}
	for _, i := range []int{3, 4} {
		must(t, c.WaitSees(within(t, 15*time.Second), i, 3, 4))
		must(t, c.WaitPartition(within(t, 5*time.Second), i, cluster.Minority))
	}
	// Node 0 holds node 3 dead now: what it sends there is dropped, as
	// Erlang drops messages to an unreachable node (not asserted).
	pid, got := sink(t, c.Node(3))
	c.Node(0).Runtime().Send(pid, "across")
	c.Heal()
	must(t, c.WaitConverged(within(t, 15*time.Second)))
	for i := range 5 {
		must(t, c.WaitPartition(within(t, 5*time.Second), i, cluster.Healthy))
	}
	// Once healed, sends across the former cut are delivered again. The
	// one sent during the split may be lost with its link, and so may one
	// sent while the way back flaps (cluster/doc.go, Healing): resend.
	ctx := within(t, 10*time.Second)
	retry := time.NewTicker(50 * time.Millisecond)
	defer retry.Stop()
	for delivered := false; !delivered; {
		c.Node(0).Runtime().Send(pid, "after")
		select {
		case m := <-got:
			delivered = m == "after"
			if m != "after" && m != "across" {
				t.Fatalf("unexpected %v", m)
			}
		case <-retry.C:
		case <-ctx.Done():
			t.Fatal("no message crossed the healed partition")
		}
	}
	tl := fmt.Sprint(c.Timeline())
	for _, want := range []string{"partition [[0 1 2] [3 4]]", "heal"} {
		if !strings.Contains(tl, want) {
			t.Fatalf("timeline %s lacks %q", tl, want)
		}
	}
}

// A one-way blackhole (0 -> 1 lost, 1 -> 0 fine) is bridged by indirect
// probes through node 2: nobody is declared dead. Frames from 0 to 1 are
// held while the cut lasts and delivered, in order, after it.
func TestBlackholeOneWay(t *testing.T) { bothClocks(t, testBlackholeOneWay) }

func testBlackholeOneWay(t *testing.T) {
	c := sim.Start(t, options(t, 3, 13))
	pid, got := sink(t, c.Node(1))
	back, gotBack := sink(t, c.Node(0))
	// Open both links before the cut.
	c.Node(0).Runtime().Send(pid, "warm")
	c.Node(1).Runtime().Send(back, "warm")
	testutil.Recv(t, got, 10*time.Second, "warm-up message")
	testutil.Recv(t, gotBack, 10*time.Second, "warm-up message")

	c.Blackhole(0, 1, "out")
	for i := range 3 {
		c.Node(0).Runtime().Send(pid, i)
	}
	c.Node(1).Runtime().Send(back, "reverse")
	if m := testutil.Recv(t, gotBack, 10*time.Second, "message on the open direction"); m != "reverse" {
		t.Fatalf("got %v", m)
	}
	typical, _ := c.CrashDetection()
	must(t, c.Holds(within(t, 20*time.Second), 2*typical, "nobody declared dead", noneDead(c)))
	select {
	case m := <-got:
		t.Fatalf("message crossed the blackhole: %v", m)
	default:
	}
	if c.Network().Stats().DroppedCut == 0 {
		t.Fatal("no datagram was cut")
	}
	c.Heal()
	for i := range 3 {
		if m := testutil.Recv(t, got, 10*time.Second, "held message"); m != i {
			t.Fatalf("after heal got %v, want %d (FIFO)", m, i)
		}
	}
	must(t, c.WaitConverged(within(t, 15*time.Second)))
}

// A delay well below the probe timeout is no failure.
func TestDelayBelowDetection(t *testing.T) { bothClocks(t, testDelayBelowDetection) }

func testDelayBelowDetection(t *testing.T) {
	c := sim.Start(t, options(t, 3, 17))
	for a := range 3 {
		for b := range 3 {
			if a != b {
				c.Delay(a, b, 5*time.Millisecond, 10*time.Millisecond)
			}
		}
	}
	target, err := c.Node(2).Runtime().Spawn(echo{})
	must(t, err)
	for i := range 5 {
		if v, err := c.Node(0).Runtime().Call(within(t, 10*time.Second), target, i); err != nil || v != i {
			t.Fatalf("call %d = %v, %v", i, v, err)
		}
	}
	typical, _ := c.CrashDetection()
	must(t, c.Holds(within(t, 20*time.Second), 2*typical, "nobody declared dead", noneDead(c)))
	if !c.Converged() {
		t.Fatalf("not converged under a small delay\n%s", c.Matrix())
	}
	jittered := 0
	for _, d := range c.Network().Decisions() {
		if d.Delay < 5*time.Millisecond || d.Delay > 15*time.Millisecond || d.Drop {
			t.Fatalf("decision out of the fault's range: %v", d)
		}
		jittered++
	}
	if jittered == 0 {
		t.Fatal("no jitter decision logged")
	}
}

// A delay far above the probe timeout is a failure; removing it heals.
func TestDelayAboveDetection(t *testing.T) { bothClocks(t, testDelayAboveDetection) }

func testDelayAboveDetection(t *testing.T) {
	c := sim.Start(t, options(t, 3, 19))
	for _, b := range []int{0, 1} {
		c.Delay(2, b, 2*time.Second, 0)
	}
	must(t, c.WaitStatus(within(t, 20*time.Second), 0, 2, cluster.StatusDead))
	must(t, c.WaitStatus(within(t, 20*time.Second), 1, 2, cluster.StatusDead))
	c.Heal()
	must(t, c.WaitConverged(within(t, 20*time.Second)))
}

// Losing a fifth of the datagrams between two nodes is no failure, and the
// losses are decided and counted by the network.
func TestDropRate(t *testing.T) { bothClocks(t, testDropRate) }

func testDropRate(t *testing.T) {
	c := sim.Start(t, options(t, 3, 23))
	c.DropRate(0, 1, 0.2)
	c.DropRate(1, 0, 0.2)
	typical, _ := c.CrashDetection()
	must(t, c.Holds(within(t, 20*time.Second), 2*typical, "nobody declared dead", noneDead(c)))
	st := c.Network().Stats()
	if st.DroppedRate == 0 {
		t.Fatalf("no datagram dropped: %+v", st)
	}
	var drops, kept int
	for _, d := range c.Network().Decisions() {
		if d.Kind != sim.KindPacket {
			t.Fatalf("decision for %s: drop rates apply to datagrams only", d.Kind)
		}
		if d.Drop {
			drops++
		} else {
			kept++
		}
	}
	if drops == 0 || kept == 0 {
		t.Fatalf("drops %d kept %d", drops, kept)
	}
	c.DropRate(0, 1, 0)
	c.DropRate(1, 0, 0)
	if len(c.Network().Paths()) != 0 {
		t.Fatalf("faults left: %v", c.Network().Paths())
	}
}

// Restart brings a node back under the same name and address with a new
// incarnation; messages to PIDs of the old incarnation never reach the
// new one, even a process with the same id.
func TestRestartNewIncarnation(t *testing.T) { bothClocks(t, testRestartNewIncarnation) }

func testRestartNewIncarnation(t *testing.T) {
	c := sim.Start(t, options(t, 3, 29))
	old, _ := sink(t, c.Node(2))
	oldInc := c.Node(2).Incarnation()
	c.Kill(2)
	must(t, c.WaitStatus(within(t, 15*time.Second), 0, 2, cluster.StatusDead))
	n, err := c.Restart(2)
	must(t, err)
	if n.Incarnation() == oldInc || n.Name() != c.Name(2) || n.Addr() != c.Addr(2) {
		t.Fatalf("restarted as %s at %s incarnation %d (old %d)", n.Name(), n.Addr(), n.Incarnation(), oldInc)
	}
	if n.Cluster().Mode() != cluster.Simulated {
		t.Fatalf("restarted node mode %s", n.Cluster().Mode())
	}
	must(t, c.WaitConverged(within(t, 15*time.Second)))
	if incs := c.Incarnations(2); len(incs) != 2 || incs[0] != oldInc || incs[1] != n.Incarnation() {
		t.Fatalf("incarnations %v", incs)
	}
	// A process of the new incarnation with the old one's id.
	var fresh process.PID
	var got <-chan any
	for range 1000 {
		fresh, got = sink(t, n)
		if fresh.ID >= old.ID {
			break
		}
	}
	if fresh.ID != old.ID {
		t.Skipf("process ids do not repeat across incarnations (old %d, new %d)", old.ID, fresh.ID)
	}
	// Each pair goes over node 0's one link to node 2, in this order: when
	// a "fresh" arrives, the "stale" before it has been dropped. Pairs are
	// resent until one arrives, because the node layer drops what it sends
	// to a restarted node before it has processed the restart event.
	ctx := within(t, 10*time.Second)
	retry := time.NewTicker(50 * time.Millisecond)
	defer retry.Stop()
	for {
		c.Node(0).Runtime().Send(old, "stale")
		c.Node(0).Runtime().Send(fresh, "fresh")
		select {
		case m := <-got:
			if m != "fresh" {
				t.Fatalf("new incarnation got %v", m)
			}
			return
		case <-retry.C:
		case <-ctx.Done():
			t.Fatal("no message reached the new incarnation")
		}
	}
}

// Pause freezes a node's network: the others declare it dead; Resume
// brings it back.
func TestPauseResume(t *testing.T) { bothClocks(t, testPauseResume) }

func testPauseResume(t *testing.T) {
	c := sim.Start(t, options(t, 3, 31))
	c.Pause(2)
	must(t, c.WaitStatus(within(t, 15*time.Second), 0, 2, cluster.StatusDead))
	must(t, c.WaitStatus(within(t, 15*time.Second), 1, 2, cluster.StatusDead))
	c.Resume(2)
	must(t, c.WaitConverged(within(t, 20*time.Second)))
}

// Stop is a graceful leave: peers see left, not dead.
func TestStopIsLeave(t *testing.T) { bothClocks(t, testStopIsLeave) }

func testStopIsLeave(t *testing.T) {
	c := sim.Start(t, options(t, 3, 37))
	must(t, c.Stop(1))
	must(t, c.WaitStatus(within(t, 10*time.Second), 0, 1, cluster.StatusLeft))
	must(t, c.WaitStatus(within(t, 10*time.Second), 2, 1, cluster.StatusLeft))
	if c.State(1) != sim.Stopped {
		t.Fatalf("state %s", c.State(1))
	}
	must(t, c.WaitConverged(within(t, 10*time.Second)))
}

// A failed wait says what it waited for and shows the matrix and timeline.
func TestWaitErrorDiagnostics(t *testing.T) { bothClocks(t, testWaitErrorDiagnostics) }

func testWaitErrorDiagnostics(t *testing.T) {
	c := sim.Start(t, options(t, 2, 41))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.WaitStatus(ctx, 0, 1, cluster.StatusLeft)
	if !errors.Is(err, sim.ErrNotMet) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"n1@10.0.0.1 sees n2@10.0.0.2 left", "membership matrix", "timeline", "seed 41"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error lacks %q:\n%v", want, err)
		}
	}
	if d := c.Diagnostics(); !strings.Contains(d, "[n2@10.0.0.2]") {
		t.Fatalf("diagnostics lack node logs:\n%s", d)
	}
}

// TestAdd: a node added to a running cluster gets the next index, its
// host's address and the next name (or the one given), joins, counts in
// the waits and faults like the others; with no expected size, a
// partition status counts it. A name in use, a name the node refuses and
// an Add after Close are errors that leave the cluster as it was.
func TestAdd(t *testing.T) {
	bothClocks(t, func(t *testing.T) {
		opts := options(t, 2, 7)
		opts.ExpectedSize = -1 // none: the live members
		c := sim.Start(t, opts)
		i, err := c.Add(within(t, 10*time.Second), "")
		must(t, err)
		if i != 2 || c.Size() != 3 || c.Name(i) != "n3@10.0.0.3" || c.Addr(i) != "10.0.0.3:7946" {
			t.Fatalf("Add = %d: size %d, %s at %s", i, c.Size(), c.Name(i), c.Addr(i))
		}
		j, err := c.Add(within(t, 10*time.Second), "extra@10.0.0.4")
		must(t, err)
		if j != 3 || c.Index("extra@10.0.0.4") != 3 {
			t.Fatalf("Add(extra) = %d, Index %d", j, c.Index("extra@10.0.0.4"))
		}
		must(t, c.WaitConverged(within(t, 10*time.Second)))
		if p := c.Node(0).Cluster().Partition(); p.Expected != 4 || p.State != cluster.Healthy {
			t.Fatalf("n1's partition status %+v, want healthy of 4", p)
		}
		if _, err := c.Add(within(t, 10*time.Second), "n1@10.0.0.1"); err == nil || !strings.Contains(err.Error(), "n1@10.0.0.1") {
			t.Errorf("Add of a name in use: %v", err)
		}
		if _, err := c.Add(within(t, 10*time.Second), "bad name"); err == nil || !strings.Contains(err.Error(), "bad name") {
			t.Errorf("Add of a name the node refuses: %v", err)
		}
		if c.Size() != 4 {
			t.Fatalf("size %d after refused adds, want 4", c.Size())
		}
		c.Partition([]int{0, 1}, []int{2, 3})
		must(t, c.WaitStatus(within(t, 10*time.Second), 0, 3, cluster.StatusDead))
		c.Heal()
		c.Kill(3)
		must(t, c.WaitStatus(within(t, 10*time.Second), 0, 3, cluster.StatusDead))
		_, err = c.Restart(3)
		must(t, err)
		must(t, c.WaitConverged(within(t, 10*time.Second)))
		c.Close()
		if _, err := c.Add(within(t, 10*time.Second), ""); err == nil {
			t.Errorf("Add after Close: no error")
		}
	})
}
