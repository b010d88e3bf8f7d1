package arsenal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal"
	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/placement"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/registry"
	"github.com/arsenal-go/arsenal/supervisor"
	"go.uber.org/goleak"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

// Every node a test starts is stopped, and leaves nothing running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/go-metrics.(*InmemSink).run"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"), goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
}

type echo struct{ process.Server }

func (echo) HandleCall(_ *process.Proc, _ process.From, req any) (any, error) { return req, nil }

func newEcho([]byte) (process.Behaviour, error)  { return echo{}, nil }
func newOther([]byte) (process.Behaviour, error) { return echo{}, nil }

type ping struct{ N int }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }

func config(name, clusterName string, app arsenal.App, seeds ...string) arsenal.Config {
	c := arsenal.Config{
		Node: node.Config{Name: name, Cluster: clusterName, Secret: secret, Profile: cluster.ProfileFast,
			BindAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		HTTPAddr: "127.0.0.1:0", Placement: placement.Config{StableAfter: 200 * time.Millisecond},
		App: app,
	}
	c.API.OpenReads = true
	if len(seeds) > 0 {
		c.Node.Discovery = cluster.StaticSeeds(seeds...)
	}
	return c
}

func TestBadInputIsAnErrorAtStart(t *testing.T) {
	cases := []struct {
		name string
		app  arsenal.App
		want string
	}{
		{"kind twice", arsenal.App{Kinds: []arsenal.Kind{{Name: "t.a", New: newEcho}, {Name: "t.a", New: newEcho}}}, `kind "t.a" registered twice`},
		{"invalid kind name", arsenal.App{Kinds: []arsenal.Kind{{Name: "has space", New: newEcho}}}, `name "has space" is invalid`},
		{"kind without New", arsenal.App{Kinds: []arsenal.Kind{{Name: "t.nonew"}}}, `kind "t.nonew" has no New function`},
		{"message name clash", arsenal.App{Messages: []arsenal.MessageType{arsenal.Message[ping]("t.ping"), arsenal.Message[echo]("t.ping")}}, `message name "t.ping" is given to`},
		{"singleton of an unknown kind", arsenal.App{Singletons: []placement.ChildSpec{{ID: "s", Kind: "t.nope"}}}, `singleton "s": unknown kind "t.nope"`},
		{"app check", arsenal.App{Check: func() error { return errors.New("--jobs: want a number") }}, "--jobs: want a number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := arsenal.Start(context.Background(), config("bad@127.0.0.1", "bad", c.app))
			if err == nil {
				_ = n.Stop(context.Background())
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not name the problem (%q)", err, c.want)
			}
		})
	}
	t.Run("config", func(t *testing.T) {
		cfg := config("no-host", "bad", arsenal.App{})
		cfg.Node.Secret = []byte("short")
		cfg.Placement.SplitBrain = "coin-toss"
		_, err := arsenal.Start(context.Background(), cfg)
		if err == nil {
			t.Fatal("started")
		}
		for _, want := range []string{"secret", "coin-toss"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		}
	})
	t.Run("kind registered twice across apps", func(t *testing.T) {
		a, err := arsenal.Start(context.Background(), config("k1@127.0.0.1", "k", arsenal.App{Kinds: []arsenal.Kind{{Name: "t.shared", New: newEcho}}}))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Stop(context.Background())
		// The same App again (the simulator, several nodes in one process) is fine…
		b, err := arsenal.Start(context.Background(), config("k2@127.0.0.1", "k", arsenal.App{Kinds: []arsenal.Kind{{Name: "t.shared", New: newEcho}}}))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Stop(context.Background())
		// …another factory under the name is not.
		_, err = arsenal.Start(context.Background(), config("k3@127.0.0.1", "k", arsenal.App{Kinds: []arsenal.Kind{{Name: "t.shared", New: newOther}}}))
		if err == nil || !strings.Contains(err.Error(), `kind "t.shared" registered twice`) {
			t.Fatalf("err = %v", err)
		}
	})
}

// A graceful stop leaves: the peer sees the node "left" (not dead), and
// the distributed child it ran moves to the peer under its name. (Its
// names removed at once, and a crash for contrast:
// TestStopRemovesNamesCrashDoesNot.)
func TestStopLeavesCrashDoesNot(t *testing.T) {
	app := arsenal.App{
		Kinds:      []arsenal.Kind{{Name: "t.svc", New: newEcho}},
		Messages:   []arsenal.MessageType{arsenal.Message[ping]("t.Ping")},
		Singletons: []placement.ChildSpec{{ID: "svc", Kind: "t.svc", Name: "t.svc"}},
	}
	cl := "life"
	a, err := arsenal.Start(context.Background(), config("a@127.0.0.1", cl, app))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	b, err := arsenal.Start(context.Background(), config("b@127.0.0.1", cl, app, a.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop(context.Background())
	testutil.Eventually(t, 20*time.Second, func() bool {
		_, okA := a.Registry().Whereis("t.svc")
		_, okB := b.Registry().Whereis("t.svc")
		return okA && okB && a.Cluster().Topology().Up == 2
	}, "the singleton runs and both nodes see its name")
	// A typed call between the nodes, through the registry.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if v, err := a.Registry().Call(ctx, "t.svc", ping{N: 3}); err != nil || v != (ping{N: 3}) {
		t.Fatalf("call: %v, %v", v, err)
	}
	// The operations API, health and metrics are served.
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/arsenal/operations"} {
		resp, err := http.Get("http://" + b.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		if path == "/metrics" && !strings.Contains(string(body), "arsenal_messages_undeliverable_total") {
			t.Errorf("/metrics lacks the undeliverable counter")
		}
	}
	pid, _ := a.Registry().Whereis("t.svc")
	leaver, stayer := b, a
	if pid.Node == a.Name() {
		leaver, stayer = a, b
	}
	events, cancelEvents := stayer.Cluster().Subscribe(1024)
	defer cancelEvents()
	if err := leaver.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, func() bool {
		m, ok := stayer.Cluster().Member(leaver.Name())
		return ok && m.Status == cluster.StatusLeft
	}, "the peer sees the leaver left")
	for drained := false; !drained; {
		select {
		case ev := <-events:
			if ev.Node == leaver.Name() && ev.NewStatus == cluster.StatusDead {
				t.Fatalf("the peer saw the leaver dead (a crash), not left: %+v", ev)
			}
		default:
			drained = true
		}
	}
	testutil.Eventually(t, 20*time.Second, func() bool {
		p, ok := stayer.Registry().Whereis("t.svc")
		return ok && p.Node == stayer.Name()
	}, "the child moved to the node that stays, under its name")
	select {
	case <-leaver.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
}

// A graceful stop removes the node's names on its peers without waiting
// for failure detection (the peer hears the stop, or sees the node left),
// and the peer sees the node left; a crash does neither: the peer sees
// the node dead, and its names go only when it is found down.
func TestStopRemovesNamesCrashDoesNot(t *testing.T) {
	cl := "names"
	a, err := arsenal.Start(context.Background(), config("a@127.0.0.1", cl, arsenal.App{}))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	events, cancelEvents := a.Registry().Subscribe(1024)
	defer cancelEvents()
	// gone waits for the Unregistered event of name on a and returns its
	// reason.
	gone := func(name string) string {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case ev := <-events:
				if ev.Type == registry.Unregistered && ev.Name == name {
					return ev.Reason
				}
			case <-deadline:
				t.Fatalf("a never saw %q unregistered", name)
			}
		}
	}
	for _, c := range []struct {
		peer, name string
		crash      bool
		reasons    []string
	}{
		{"b@127.0.0.1", "t.on-b", false, []string{"node_stopped", "node_left"}},
		{"c@127.0.0.1", "t.on-c", true, []string{"node_down"}},
	} {
		p, err := arsenal.Start(context.Background(), config(c.peer, cl, arsenal.App{}, a.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		pid, err := p.Runtime().Spawn(echo{})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Registry().Register(c.name, pid, nil); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 20*time.Second, func() bool {
			got, ok := a.Registry().Whereis(c.name)
			return ok && got == pid
		}, "a sees %s's name", c.peer)
		if c.crash {
			p.Crash()
		} else if err := p.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		reason := gone(c.name)
		m, _ := a.Cluster().Member(c.peer)
		left := m.Status == cluster.StatusLeft
		if !slices.Contains(c.reasons, reason) || left == c.crash {
			t.Fatalf("after %s's %s: its name went with reason %q while a saw it %q; want one of %v, and left only after a graceful stop",
				c.peer, map[bool]string{false: "graceful stop", true: "crash"}[c.crash], reason, m.Status, c.reasons)
		}
		t.Logf("%s: name removed with reason %q, a sees it %s", c.peer, reason, m.Status)
		p.Stop(context.Background()) // a no-op after either
	}
}

// recorder is a tree's worker: it traps exits, so that its supervisor's
// shutdown runs its Terminate, which records it.
type recorder struct {
	process.Server
	note func(string)
}

func (r recorder) Init(p *process.Proc) error              { p.TrapExits(true); return nil }
func (r recorder) Terminate(*process.Proc, process.Reason) { r.note("tree stopped") }

// One ordered lifecycle: the App's trees start before its Start hook, and
// at a graceful stop its Stop hook runs first, while the trees and the
// registry still run, then the trees stop. A step that fails undoes the
// steps before it (the HTTP address is free again) and the error names it.
func TestLifecycleOrder(t *testing.T) {
	var mu sync.Mutex
	var got []string
	note := func(s string) { mu.Lock(); got = append(got, s); mu.Unlock() }
	app := func(startErr error) arsenal.App {
		return arsenal.App{
			Trees: []arsenal.Tree{{Name: "t.tree", Spec: func(*arsenal.Node) supervisor.Spec {
				return supervisor.Spec{Children: []supervisor.ChildSpec{{ID: "w", Name: "t.worker",
					Start: func() process.Behaviour { return recorder{note: note} }}}}
			}}},
			Start: func(_ context.Context, n *arsenal.Node) error {
				_, ok := n.Runtime().Whereis("t.worker")
				note(fmt.Sprintf("start hook (tree running: %v)", ok))
				return startErr
			},
			Stop: func(_ context.Context, n *arsenal.Node) {
				_, ok := n.Runtime().Whereis("t.worker")
				err := n.Registry().Register("t.late", n.Trees()[0], nil)
				note(fmt.Sprintf("stop hook (tree running: %v, registry: %v)", ok, err))
			},
		}
	}
	n, err := arsenal.Start(context.Background(), config("life@127.0.0.1", "order", app(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"start hook (tree running: true)", "stop hook (tree running: true, registry: <nil>)", "tree stopped"}
	mu.Lock()
	if !slices.Equal(got, want) {
		t.Errorf("lifecycle %q, want %q", got, want)
	}
	got = nil
	mu.Unlock()

	// A Start hook that fails: the error names the step, and what started
	// before it is undone (the tree stopped, the HTTP address free).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := config("fail@127.0.0.1", "order", app(errors.New("boom")))
	cfg.HTTPAddr = addr
	if n, err := arsenal.Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "app start: boom") {
		if n != nil {
			n.Stop(context.Background())
		}
		t.Fatalf("a failing Start hook: %v; want an error naming the step", err)
	}
	mu.Lock()
	if want := []string{"start hook (tree running: true)", "tree stopped"}; !slices.Equal(got, want) {
		t.Errorf("after a failing Start hook: %q, want %q", got, want)
	}
	mu.Unlock()
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the HTTP address is still taken after a failed start: %v", err)
	}
	ln.Close()
}
