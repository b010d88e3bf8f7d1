package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/go-metrics.(*InmemSink).run"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

var secret = []byte("0123456789abcdef-test-secret")

const wait = 20 * time.Second

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func start(t *testing.T, name, clusterName string, sec []byte, seeds ...string) (*node.Node, *syncBuf) {
	t.Helper()
	logs := &syncBuf{}
	cfg := node.Config{
		Name: name, Cluster: clusterName, Secret: sec, Profile: cluster.ProfileFast,
		Logger:        slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		FactsInterval: 200 * time.Millisecond,
	}
	if len(seeds) > 0 {
		cfg.Discovery = cluster.StaticSeeds(seeds...)
	}
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	return n, logs
}

func startCluster(t *testing.T, size int) []*node.Node {
	t.Helper()
	cl := fmt.Sprintf("c%d", time.Now().UnixNano())
	first, _ := start(t, "n1@127.0.0.1", cl, secret)
	nodes := []*node.Node{first}
	for i := 2; i <= size; i++ {
		n, _ := start(t, fmt.Sprintf("n%d@127.0.0.1", i), cl, secret, first.Addr())
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		testutil.Eventually(t, wait, func() bool { return n.Cluster().Topology().Alive == size }, "%s sees %d alive", n.Name(), n.Cluster().Topology().Alive)
	}
	return nodes
}

type echo struct{ process.Server }

func (echo) HandleCall(p *process.Proc, _ process.From, req any) (any, error) {
	if req == "stop" {
		return nil, errors.New("stopped on request")
	}
	return req, nil
}

func TestRemoteSendCallMonitor(t *testing.T) {
	nodes := startCluster(t, 3)
	a, b := nodes[0], nodes[1]
	target, err := b.Runtime().Spawn(echo{})
	if err != nil {
		t.Fatal(err)
	}
	// Call across nodes.
	v, err := a.Runtime().Call(context.Background(), target, "ping")
	if err != nil || v != "ping" {
		t.Fatalf("remote call = %v, %v", v, err)
	}
	// Call to a missing remote process: noproc.
	missing := target
	missing.ID += 1000
	if _, err := a.Runtime().Call(context.Background(), missing, "x"); !errors.Is(err, process.NoProc) {
		t.Fatalf("remote call to missing = %v", err)
	}
	// FIFO per pair across nodes, from several senders.
	got := make(chan any, 10000)
	sink, _ := b.Runtime().SpawnFunc(func(p *process.Proc) error {
		for {
			m, err := p.Receive(context.Background())
			if err != nil {
				return err
			}
			got <- m
		}
	})
	const senders, each = 3, 500
	for s := 0; s < senders; s++ {
		_, _ = a.Runtime().SpawnFunc(func(p *process.Proc) error {
			for i := 0; i < each; i++ {
				p.Send(sink, fmt.Sprintf("%d:%d", s, i))
			}
			return nil
		})
	}
	next := make([]int, senders)
	for i := 0; i < senders*each; i++ {
		var s, seq int
		m := testutil.Recv(t, got, wait, "remote message")
		fmt.Sscanf(m.(string), "%d:%d", &s, &seq)
		if seq != next[s] {
			t.Fatalf("sender %d: got %d, want %d", s, seq, next[s])
		}
		next[s]++
	}
	// Remote monitor: exactly one DOWN with the real reason.
	downs := make(chan process.DownMsg, 4)
	_, _ = a.Runtime().SpawnFunc(func(p *process.Proc) error {
		p.Monitor(target)
		for {
			m, err := p.Receive(context.Background())
			if err != nil {
				return err
			}
			if d, ok := m.(process.DownMsg); ok {
				downs <- d
			}
		}
	})
	testutil.Eventually(t, wait, func() bool { in, _ := b.Runtime().Info(target); return len(in.MonitoredBy) == 1 }, "monitor not registered")
	if _, err := a.Runtime().Call(context.Background(), target, "stop"); err == nil || !strings.Contains(err.Error(), "stopped on request") {
		t.Fatalf("call that stops = %v", err)
	}
	d := testutil.Recv(t, downs, wait, "DOWN")
	if d.PID != target || !strings.Contains(d.Reason.Error(), "stopped on request") {
		t.Fatalf("DOWN %+v", d)
	}
	testutil.Never(t, downs, 200*time.Millisecond, "second DOWN")
	// Remote link: a linked process on another node dies with the reason.
	victim, _ := b.Runtime().Spawn(echo{})
	linked := make(chan process.Reason, 1)
	lp, _ := a.Runtime().SpawnFunc(func(p *process.Proc) error {
		p.TrapExits(true)
		p.Link(victim)
		m, err := p.Receive(context.Background())
		if err != nil {
			return err
		}
		linked <- m.(process.ExitMsg).Reason
		return nil
	})
	testutil.Eventually(t, wait, func() bool { in, _ := b.Runtime().Info(victim); return len(in.Links) == 1 }, "link not established")
	b.Runtime().Exit(victim, errors.New("custom reason"))
	if r := testutil.Recv(t, linked, wait, "linked exit"); r.Error() != "custom reason" {
		t.Fatalf("linked exit %v", r)
	}
	_ = lp
	// Facts from every node, collected in the background.
	testutil.Eventually(t, wait, func() bool {
		f := a.Facts()
		for _, n := range nodes {
			if e, ok := f[n.Name()]; !ok || e.Facts == nil || e.Facts.Incarnation != n.Incarnation() {
				return false
			}
		}
		return true
	}, "facts not collected")
}

func TestNodeCrashFiresNoConnectionOnce(t *testing.T) {
	nodes := startCluster(t, 3)
	a, c := nodes[0], nodes[2]
	target, _ := c.Runtime().Spawn(echo{})
	linkedTarget, _ := c.Runtime().Spawn(echo{})
	events := make(chan any, 16)
	_, _ = a.Runtime().SpawnFunc(func(p *process.Proc) error {
		p.TrapExits(true)
		p.Monitor(target)
		p.Monitor(target)
		p.Link(linkedTarget)
		for {
			m, err := p.Receive(context.Background())
			if err != nil {
				return err
			}
			events <- m
		}
	})
	testutil.Eventually(t, wait, func() bool {
		in, err := c.Runtime().Info(target)
		in2, _ := c.Runtime().Info(linkedTarget)
		return err == nil && len(in.MonitoredBy) == 2 && len(in2.Links) == 1
	}, "monitors not registered")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.Close(ctx) // a crash: no leave
	var downs, exits int
	for i := 0; i < 3; i++ {
		switch m := testutil.Recv(t, events, wait, "noconnection signal").(type) {
		case process.DownMsg:
			if !errors.Is(m.Reason, process.NoConnection) {
				t.Fatalf("DOWN reason %v", m.Reason)
			}
			downs++
		case process.ExitMsg:
			if !errors.Is(m.Reason, process.NoConnection) {
				t.Fatalf("EXIT reason %v", m.Reason)
			}
			exits++
		}
	}
	if downs != 2 || exits != 1 {
		t.Fatalf("downs %d exits %d", downs, exits)
	}
	testutil.Never(t, events, 300*time.Millisecond, "extra signal")
	testutil.Eventually(t, wait, func() bool {
		for _, m := range a.Cluster().Members() {
			if m.Name == c.Name() {
				return m.Status == cluster.StatusDead
			}
		}
		return false
	}, "crashed node not dead in topology")
	if _, err := a.Runtime().Call(context.Background(), target, "x"); !errors.Is(err, process.NoConnection) {
		t.Fatalf("call to a process on a dead node = %v", err)
	}
}

func TestWrongSecretRefused(t *testing.T) {
	cl := fmt.Sprintf("w%d", time.Now().UnixNano())
	a, alog := start(t, "a@127.0.0.1", cl, secret)
	b, blog := start(t, "b@127.0.0.1", cl, []byte("another-secret-of-16+bytes"), a.Addr())
	pid, _ := a.Runtime().Spawn(echo{})
	// Gossip is encrypted with a key derived from the secret, so b cannot
	// even join; and a node link refuses it with a clear error.
	if a.Cluster().Topology().Alive != 1 || b.Cluster().Topology().Alive != 1 {
		t.Fatal("nodes with different secrets formed a cluster")
	}
	_ = pid
	testutil.Eventually(t, wait, func() bool {
		return strings.Contains(alog.String()+blog.String(), "level=")
	}, "no logs")
	if err := node.ProbeLink(context.Background(), b, a.Addr()); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("link with wrong secret: %v", err)
	}
	testutil.Eventually(t, wait, func() bool {
		return strings.Contains(alog.String(), "authentication failed") && strings.Contains(blog.String(), "authentication failed")
	}, "refusal not logged on both sides:\nA: %s\nB: %s", alog.String(), blog.String())
}

func TestDuplicateNameRefused(t *testing.T) {
	cl := fmt.Sprintf("d%d", time.Now().UnixNano())
	a, _ := start(t, "a@127.0.0.1", cl, secret)
	b, _ := start(t, "b@127.0.0.1", cl, secret, a.Addr())
	testutil.Eventually(t, wait, func() bool { return a.Cluster().Topology().Alive == 2 }, "no cluster")
	_, err := node.Start(context.Background(), node.Config{Name: "b@127.0.0.1", Cluster: cl, Secret: secret,
		Profile: cluster.ProfileFast, Discovery: cluster.StaticSeeds(a.Addr())})
	if !errors.Is(err, transport.ErrNameTaken) {
		t.Fatalf("a second node named b started: %v", err)
	}
	// A node restarted after a crash, before the crash is detected, is not
	// a duplicate: the old one no longer answers.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = b.Close(ctx)
	b2, _ := start(t, "b@127.0.0.1", cl, secret, a.Addr())
	testutil.Eventually(t, wait, func() bool {
		m, ok := a.Cluster().Member("b@127.0.0.1")
		return ok && m.Incarnation == b2.Incarnation() && m.Status == cluster.StatusAlive
	}, "restarted b not accepted")
}
