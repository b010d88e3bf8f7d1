package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const wait = 20 * time.Second // generous: the machine may be slow under -race

func TestFormCluster(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			nodes := startCluster(t, "form"+strconv.Itoa(n), n)
			eventually(t, wait, func() string { return allSee(nodes, StatusAlive, names(nodes)...) })
			t.Logf("%d nodes: all see all alive %v after the first start", n, time.Since(start).Round(time.Millisecond))
			for _, c := range nodes {
				if !c.Ready() {
					t.Errorf("%s not ready", c.LocalName())
				}
				top := c.Topology()
				if top.Alive != n || top.Up != n || top.Members != n {
					t.Errorf("%s topology counts alive=%d up=%d members=%d, want %d", c.LocalName(), top.Alive, top.Up, top.Members, n)
				}
				if top.Mode != MultiNode || c.Mode() != MultiNode {
					t.Errorf("%s mode %s, want multi_node", c.LocalName(), top.Mode)
				}
				if p := c.Partition(); p.State != Healthy || p.Expected != n {
					t.Errorf("%s partition %+v, want healthy of %d", c.LocalName(), p, n)
				}
				if top.FormedAt.Before(top.StartedAt) || top.FormedAt.Equal(top.StartedAt) {
					t.Errorf("%s FormedAt %v not after StartedAt %v", c.LocalName(), top.FormedAt, top.StartedAt)
				}
				if err := c.WaitConverged(context.Background(), n); err != nil {
					t.Error(err)
				}
			}
			// Metadata travels: every member knows every other's addresses.
			for _, m := range nodes[0].Members() {
				if m.NodeAddr == "" || m.NodeAddr != m.GossipAddr || m.Incarnation == 0 {
					t.Errorf("member %s: NodeAddr %q GossipAddr %q Incarnation %d", m.Name, m.NodeAddr, m.GossipAddr, m.Incarnation)
				}
			}
		})
	}
}

func TestAloneByDesign(t *testing.T) {
	c := startNode(t, testConfig("alone", nodeName(0)))
	if !c.Ready() {
		t.Error("a node without discovery should be ready alone")
	}
	top := c.Topology()
	if top.Mode != SingleNode || top.Partition.State != Healthy || top.Up != 1 {
		t.Errorf("topology %+v", top)
	}
	if !top.FormedAt.Equal(top.StartedAt) {
		t.Errorf("alone: FormedAt %v should equal StartedAt %v", top.FormedAt, top.StartedAt)
	}
}

func TestNotReadyWhenSeedsUnreachable(t *testing.T) {
	// A listener that is closed at once gives an address nobody answers on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	c := startNode(t, testConfig("lonely", nodeName(0), dead))
	if c.Ready() {
		t.Error("ready although the only discovered peer never answered")
	}
	// A peer joining it makes it ready.
	other := startNode(t, testConfig("lonely", nodeName(1), c.GossipAddr()))
	eventually(t, wait, func() string {
		if !c.Ready() || !other.Ready() {
			return fmt.Sprintf("ready: %v %v", c.Ready(), other.Ready())
		}
		return ""
	})
}

func TestGracefulLeave(t *testing.T) {
	nodes := startCluster(t, "leave", 3)
	eventually(t, wait, func() string { return allSee(nodes, StatusAlive, names(nodes)...) })
	cols := []*collector{collect(nodes[0]), collect(nodes[1])}
	leaver := nodes[2].LocalName()

	if err := nodes[2].Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if nodes[2].Ready() {
		t.Error("ready after leave")
	}
	eventually(t, wait, func() string { return allSee(nodes[:2], StatusLeft, leaver) })
	for i, col := range cols {
		col.waitFor(t, wait, "NodeLeft", func(e Event) bool { return e.Type == NodeLeft && e.Node == leaver })
		if got := col.forNode(leaver); slices.Contains(got, NodeDown) {
			t.Errorf("node %d saw %v for the leaver; want left, never down", i, got)
		}
		// A member that left on purpose is not missing.
		if p := nodes[i].Partition(); p.State != Healthy || p.Expected != 2 {
			t.Errorf("node %d partition after a leave: %+v", i, p)
		}
	}
	if err := nodes[2].Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := nodes[2].Leave(time.Second); err != ErrClosed {
		t.Errorf("Leave after Shutdown: %v, want ErrClosed", err)
	}
}

func TestCrashDetectedAndModeChanges(t *testing.T) {
	n0 := startNode(t, testConfig("crash", nodeName(0)))
	col0 := collect(n0)
	var modeCalls []string
	var modeMu sync.Mutex
	n0.OnModeChange(func(old, new Mode) {
		modeMu.Lock()
		defer modeMu.Unlock()
		modeCalls = append(modeCalls, string(old)+">"+string(new))
	})
	n1 := startNode(t, testConfig("crash", nodeName(1), n0.GossipAddr()))
	col1 := collect(n1)
	n2 := startNode(t, testConfig("crash", nodeName(2), n0.GossipAddr(), n1.GossipAddr()))
	nodes := []*Cluster{n0, n1, n2}
	eventually(t, wait, func() string { return allSee(nodes, StatusAlive, names(nodes)...) })
	// A member counts once its incarnation is admitted (standing.go); the
	// healthy→partial change below needs n2 counted everywhere first.
	eventually(t, wait, func() string {
		for i, n := range nodes {
			if p := n.Partition(); p.State != Healthy || p.Expected != 3 {
				return fmt.Sprintf("node %d counts %+v, want healthy 3 of 3", i, p)
			}
		}
		return ""
	})
	victim := n2.LocalName()

	crashed := time.Now()
	if err := n2.Shutdown(); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, func() string { return allSee(nodes[:2], StatusDead, victim) })
	t.Logf("crash of 1 of 3 detected by both survivors in %v (profile fast; typical estimate %v)",
		time.Since(crashed).Round(time.Millisecond), first(ProfileFast.Settings().CrashDetection(3)))

	sawSuspect := false
	for i, col := range []*collector{col0, col1} {
		col.waitFor(t, wait, "NodeDown", func(e Event) bool { return e.Type == NodeDown && e.Node == victim })
		got := col.forNode(victim)
		if slices.Contains(got, NodeLeft) {
			t.Errorf("node %d: crash reported as left: %v", i, got)
		}
		down := slices.Index(got, NodeDown)
		if s := slices.Index(got, NodeSuspect); s >= 0 {
			sawSuspect = true
			if s > down {
				t.Errorf("node %d: suspect after down: %v", i, got)
			}
		}
		if i == 0 { // n0 subscribed before n2 existed: up comes before down
			if up := slices.Index(got, NodeUp); up < 0 || up > down {
				t.Errorf("node 0: events for %s = %v, want node_up before node_down", victim, got)
			}
		}
		if !col.has(func(e Event) bool {
			return e.Type == PartitionChanged && e.OldPartition == Healthy && e.Partition.State == Partial
		}) {
			t.Errorf("node %d: no partition_changed healthy→partial", i)
		}
	}
	// The originating suspicion is always raised by a survivor's own probe.
	if !sawSuspect {
		t.Error("no survivor reported node_suspect before node_down")
	}
	if p := n0.Partition(); p.State != Partial || p.Up != 2 || p.Expected != 3 {
		t.Errorf("partition %+v, want partial 2 of 3", p)
	}

	// Down to one node: single_node, minority.
	if err := n1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, func() string {
		if m := n0.Mode(); m != SingleNode {
			return "mode " + string(m)
		}
		return ""
	})
	if p := n0.Partition(); p.State != Minority || p.Up != 1 {
		t.Errorf("partition %+v, want minority", p)
	}
	col0.waitFor(t, wait, "ModeChanged multi>single", func(e Event) bool {
		return e.Type == ModeChanged && e.OldMode == MultiNode && e.Mode == SingleNode
	})
	eventually(t, wait, func() string {
		modeMu.Lock()
		defer modeMu.Unlock()
		if !slices.Equal(modeCalls, []string{"single_node>multi_node", "multi_node>single_node"}) {
			return fmt.Sprintf("mode callbacks %v", modeCalls)
		}
		return ""
	})
	// Seq numbers are gap-free for a subscriber that keeps up.
	for i, e := range col0.all()[1:] {
		if prev := col0.all()[i]; e.Seq != prev.Seq+1 {
			t.Fatalf("seq gap: %d then %d", prev.Seq, e.Seq)
		}
	}
}

func first(a, _ time.Duration) time.Duration { return a }

func TestDifferentClustersNeverMerge(t *testing.T) {
	alpha := startCluster(t, "alpha", 2)
	// beta's discovery points at alpha's nodes too.
	b0 := startNode(t, testConfig("beta", nodeName(0), alpha[0].GossipAddr(), alpha[1].GossipAddr()))
	b1 := startNode(t, testConfig("beta", nodeName(1), alpha[0].GossipAddr(), b0.GossipAddr()))
	beta := []*Cluster{b0, b1}
	eventually(t, wait, func() string { return allSee(alpha, StatusAlive, names(alpha)...) })
	eventually(t, wait, func() string { return allSee(beta, StatusAlive, names(beta)...) })

	// Let beta's rejoin loop try alpha's addresses a few times.
	startRounds := b0.rejoinRounds()
	eventually(t, wait, func() string {
		if b0.rejoinRounds() < startRounds+3 || b1.rejoinRounds() < startRounds+3 {
			return "waiting for rejoin rounds"
		}
		return ""
	})
	if _, err := b0.Join(context.Background(), alpha[0].GossipAddr()); err == nil {
		t.Error("a direct join into another cluster succeeded")
	}
	for _, c := range append(slices.Clone(alpha), beta...) {
		if top := c.Topology(); top.Members != 2 {
			t.Errorf("%s (%s) knows %d members: %v", c.LocalName(), top.ClusterName, top.Members, top.Nodes)
		}
	}
}

func TestGossipKey(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	cfgA := testConfig("keyed", nodeName(0))
	cfgA.GossipKey = key
	a := startNode(t, cfgA)
	cfgB := testConfig("keyed", nodeName(1), a.GossipAddr())
	cfgB.GossipKey = key
	b := startNode(t, cfgB)
	eventually(t, wait, func() string { return allSee([]*Cluster{a, b}, StatusAlive, a.LocalName(), b.LocalName()) })

	cfgC := testConfig("keyed", nodeName(2), a.GossipAddr())
	cfgC.GossipKey = []byte("fedcba9876543210fedcba9876543210")
	c := startNode(t, cfgC)
	rounds := c.rejoinRounds()
	eventually(t, wait, func() string {
		if c.rejoinRounds() < rounds+3 {
			return "waiting for rejoin rounds"
		}
		return ""
	})
	if c.Topology().Members != 1 || a.Topology().Members != 2 {
		t.Errorf("a node with the wrong key got in: %v / %v", c.Members(), a.Members())
	}
	if c.Ready() {
		t.Error("a node that cannot join its discovered peer is ready")
	}
}

// fakeResolver answers SRV and host lookups from maps.
type fakeResolver struct {
	mu    sync.Mutex
	hosts map[string][]string
	srv   map[string][]*net.SRV
	calls atomic.Int32
}

func (r *fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	r.calls.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if ips, ok := r.hosts[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (r *fakeResolver) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	r.calls.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	key := "_" + service + "._" + proto + "." + name
	if recs, ok := r.srv[key]; ok {
		return key, recs, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: key, IsNotFound: true}
}

func (r *fakeResolver) addSRV(key string, target string, port int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.srv[key] = append(r.srv[key], &net.SRV{Target: target, Port: uint16(port)})
}

// TestSRVDiscoveryFormsCluster: three nodes find each other only through
// SRV records of a (fake) headless service, registered as each pod starts.
func TestSRVDiscoveryFormsCluster(t *testing.T) {
	res := &fakeResolver{hosts: map[string][]string{}, srv: map[string][]*net.SRV{}}
	const key = "_gossip._tcp.arsenal.default.svc.cluster.local"
	var nodes []*Cluster
	for i := range 3 {
		cfg := testConfig("srv", nodeName(i))
		p := DNSSRV("gossip", "tcp", "arsenal.default.svc.cluster.local")
		p.Resolver = res
		cfg.Discovery = p
		c := startNode(t, cfg)
		host, port, _ := net.SplitHostPort(c.GossipAddr())
		pod := fmt.Sprintf("pod-%d.arsenal.default.svc.cluster.local.", i)
		res.mu.Lock()
		res.hosts[pod[:len(pod)-1]] = []string{host}
		res.mu.Unlock()
		p0, _ := strconv.Atoi(port)
		res.addSRV(key, pod, p0)
		nodes = append(nodes, c)
	}
	eventually(t, wait, func() string { return allSee(nodes, StatusAlive, names(nodes)...) })
	for _, c := range nodes {
		if !c.Ready() {
			t.Errorf("%s not ready", c.LocalName())
		}
	}
}

func TestRestart(t *testing.T) {
	t.Run("new address after detection", func(t *testing.T) {
		t.Parallel()
		nodes := startCluster(t, "restart-new", 3)
		eventually(t, wait, func() string { return allSee(nodes, StatusAlive, names(nodes)...) })
		col := collect(nodes[0])
		victim := nodes[2]
		oldInc := victim.Incarnation()
		if err := victim.Shutdown(); err != nil {
			t.Fatal(err)
		}
		eventually(t, wait, func() string { return allSee(nodes[:2], StatusDead, victim.LocalName()) })

		cfg := testConfig("restart-new", victim.LocalName(), nodes[0].GossipAddr(), nodes[1].GossipAddr())
		cfg.Incarnation = oldInc + 1
		again := startNode(t, cfg)
		if again.GossipAddr() == victim.GossipAddr() {
			t.Log("the kernel gave the same port again; the test still holds")
		}
		checkRestarted(t, nodes[:2], col, victim.LocalName(), oldInc, cfg.Incarnation)
	})
	t.Run("same address before detection", func(t *testing.T) {
		t.Parallel()
		nodes := startCluster(t, "restart-same", 3)
		eventually(t, wait, func() string { return allSee(nodes, StatusAlive, names(nodes)...) })
		col := collect(nodes[0])
		victim := nodes[2]
		oldInc := victim.Incarnation()
		addr := victim.GossipAddr()
		if err := victim.Shutdown(); err != nil {
			t.Fatal(err)
		}
		// Rebind the port this test just released, at once: the others
		// usually still hold the old incarnation alive.
		cfg := testConfig("restart-same", victim.LocalName(), nodes[0].GossipAddr(), nodes[1].GossipAddr())
		cfg.BindAddr = addr
		cfg.Incarnation = oldInc + 1
		again, err := Start(context.Background(), cfg)
		if err != nil {
			t.Skipf("could not rebind %s: %v", addr, err)
		}
		t.Cleanup(func() { _ = again.Shutdown() })
		checkRestarted(t, nodes[:2], col, victim.LocalName(), oldInc, cfg.Incarnation)
		// Whichever path memberlist took, the old incarnation is reported
		// down before the new one up.
		evs := col.forNode(victim.LocalName())
		if d, u := slices.Index(evs, NodeDown), slices.Index(evs, NodeUp); d < 0 || u < d {
			t.Errorf("events %v: want node_down before node_up", evs)
		}
	})
}

func checkRestarted(t *testing.T, observers []*Cluster, col *collector, name string, oldInc, newInc uint64) {
	t.Helper()
	eventually(t, wait, func() string {
		for _, o := range observers {
			m, ok := memberOf(o, name)
			if !ok || m.Status != StatusAlive || m.Incarnation != newInc {
				return fmt.Sprintf("%s sees %s as %+v", o.LocalName(), name, m)
			}
		}
		return ""
	})
	e := col.waitFor(t, wait, "restarted NodeUp", func(e Event) bool {
		return e.Type == NodeUp && e.Node == name && e.Restarted
	})
	if e.OldIncarnation != oldInc || e.Member.Incarnation != newInc {
		t.Errorf("restart event: old incarnation %d, new %d; want %d, %d", e.OldIncarnation, e.Member.Incarnation, oldInc, newInc)
	}
}

func TestUpdateMeta(t *testing.T) {
	nodes := startCluster(t, "meta", 2)
	eventually(t, wait, func() string { return allSee(nodes, StatusAlive, names(nodes)...) })
	col := collect(nodes[0])
	if err := nodes[1].UpdateMeta(map[string]string{"zone": "b"}, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	e := col.waitFor(t, wait, "NodeUpdated", func(e Event) bool { return e.Type == NodeUpdated && e.Node == nodes[1].LocalName() })
	if e.Member.Meta["zone"] != "b" {
		t.Errorf("updated meta %v", e.Member.Meta)
	}
	big := map[string]string{"x": string(make([]byte, 600))}
	if err := nodes[1].UpdateMeta(big, time.Second); err == nil {
		t.Error("oversized meta accepted")
	}
}

func TestNameConflictIsLogged(t *testing.T) {
	first := startNode(t, testConfig("conflict", "same@host"))
	h := &captureHandler{}
	cfg := testConfig("conflict", "same@host", first.GossipAddr())
	cfg.Logger = slog.New(h)
	startNode(t, cfg)
	eventually(t, wait, func() string {
		if !h.contains("name conflict") {
			return "no name conflict logged"
		}
		return ""
	})
}

func TestEventFeedDropsForSlowSubscribers(t *testing.T) {
	c := startNode(t, testConfig("feed", nodeName(0)))
	slow, cancelSlow := c.Subscribe(1)
	defer cancelSlow()
	fast := collect(c)
	for i := range 20 {
		c.SetSimulated(i%2 == 0)
	}
	fast.waitFor(t, wait, "20 mode changes", func(e Event) bool {
		n := 0
		for _, e := range fast.all() {
			if e.Type == ModeChanged {
				n++
			}
		}
		return n == 20
	})
	if c.DroppedEvents() == 0 {
		t.Error("no events dropped for a subscriber that never reads")
	}
	if e := <-slow; e.Type != ModeChanged || e.Mode != Simulated {
		t.Errorf("slow subscriber's first event %+v", e)
	}
	if c.Mode() != SingleNode {
		t.Errorf("mode after toggling back: %s", c.Mode())
	}
	_ = c.Shutdown()
	<-fast.done // Shutdown closes subscriber channels
	if _, ok := <-slow; ok {
		// the buffered event was consumed above; the channel must be closed now
		t.Error("slow subscriber channel still open after Shutdown")
	}
}
