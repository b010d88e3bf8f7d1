package clustertest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arsenal-go/arsenal/clustertest"
	"github.com/arsenal-go/arsenal/internal/control"
	"github.com/arsenal-go/arsenal/internal/testutil"
)

func TestMain(m *testing.M) {
	code := clustertest.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const within = 30 * time.Second

// nextSignal waits for the next down/exit/message event of a node.
func nextSignal(t *testing.T, n *clustertest.Node, kind string) control.Signal {
	t.Helper()
	deadline := time.After(testutil.Scale(within))
	for {
		select {
		case l := <-n.Events():
			if l.Event != kind {
				continue
			}
			var s control.Signal
			if err := json.Unmarshal(l.Data, &s); err != nil {
				t.Fatal(err)
			}
			return s
		case <-deadline:
			t.Fatalf("no %s event on %s within %s", kind, n.Name, testutil.Scale(within))
		}
	}
}

func noSignal(t *testing.T, n *clustertest.Node, kind string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case l := <-n.Events():
			if l.Event == kind {
				t.Fatalf("unexpected %s event on %s: %s", kind, n.Name, l.Data)
			}
		case <-deadline:
			return
		}
	}
}

func TestFormation(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c := clustertest.Start(t, size, clustertest.Options{})
			var top struct {
				Alive int
				Mode  string
			}
			c.Node(size-1).MustDo("topology", nil, &top)
			if top.Alive != size || top.Mode != "multi_node" {
				t.Fatalf("topology %+v", top)
			}
			// Every node serves its health endpoints.
			for _, n := range c.Nodes() {
				base := "http://" + n.Ready().HTTPAddr
				for path, want := range map[string]string{"/healthz": `"status":"ok"`, "/readyz": `"status":"ready"`, "/metrics": "arsenal_cluster_members"} {
					resp, err := http.Get(base + path)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
						t.Fatalf("%s%s: %d %s", n.Name, path, resp.StatusCode, body)
					}
				}
			}
		})
	}
}

func TestRemoteMessagingAndCrash(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	a, b, x := c.Node(0), c.Node(1), c.Node(2)
	var echo, sink string
	x.MustDo("spawn", map[string]any{"kind": "echo"}, &echo)
	b.MustDo("spawn", map[string]any{"kind": "sink"}, &sink)
	// Call across real nodes.
	var got string
	a.MustDo("call", map[string]any{"to": echo, "msg": "hello"}, &got)
	if got != "hello" {
		t.Fatalf("remote call = %q", got)
	}
	// FIFO from one sender on a to the sink on b.
	a.MustDo("send", map[string]any{"to": sink, "msg": "m", "count": 200}, nil)
	for i := 0; i < 200; i++ {
		s := nextSignal(t, b, "message")
		if s.Message != fmt.Sprintf("m:%d", i) {
			t.Fatalf("message %d = %v", i, s.Message)
		}
	}
	// Two monitors and a link from a to the echo on x; kill -9 x.
	var w1, w2, l1 string
	a.MustDo("monitor", map[string]any{"pid": echo}, &w1)
	a.MustDo("monitor", map[string]any{"pid": echo}, &w2)
	a.MustDo("link", map[string]any{"pid": echo}, &l1)
	c.Kill(2)
	// Exactly one DOWN per monitor and one EXIT for the link, in any order.
	seen := map[string]int{}
	deadline := time.After(testutil.Scale(within))
	for len(seen) < 3 {
		select {
		case l := <-a.Events():
			var s control.Signal
			_ = json.Unmarshal(l.Data, &s)
			if (l.Event != "down" && l.Event != "exit") || s.Reason != "noconnection" || s.PID != echo {
				t.Fatalf("unexpected %s %+v", l.Event, s)
			}
			seen[l.Event+" "+s.Watcher]++
		case <-deadline:
			t.Fatalf("signals after the kill: %v; want one DOWN for %s and %s and one EXIT for %s", seen, w1, w2, l1)
		}
	}
	if seen["down "+w1] != 1 || seen["down "+w2] != 1 || seen["exit "+l1] != 1 {
		t.Fatalf("signals %v", seen)
	}
	noSignal(t, a, "down", 500*time.Millisecond)
	c.WaitStatus(a, x, "dead", within)
	c.WaitStatus(b, x, "dead", within)
	if err := a.Do("call", map[string]any{"to": echo, "msg": "x"}, nil); err == nil || !strings.Contains(err.Error(), "noconnection") {
		t.Fatalf("call to a process on a dead node: %v", err)
	}
}

func TestGracefulLeaveAndRestart(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	a, x := c.Node(0), c.Node(2)
	var sink string
	x.MustDo("spawn", map[string]any{"kind": "sink"}, &sink)
	oldInc := x.Ready().Incarnation
	c.Stop(2)
	c.WaitStatus(a, x, "left", within)
	c.WaitStatus(c.Node(1), x, "left", within)
	c.Restart(2)
	if x.Ready().Incarnation == oldInc {
		t.Fatal("restart kept the incarnation")
	}
	c.WaitConverged(within)
	// A process on the new incarnation gets the same id as the old sink
	// (ids restart at 1), but a message to the old PID must not reach it.
	var sink2 string
	x.MustDo("spawn", map[string]any{"kind": "sink"}, &sink2)
	if sink2 == sink {
		t.Fatalf("new pid %s equals the old one", sink2)
	}
	a.MustDo("send", map[string]any{"to": sink, "msg": "to-the-old-incarnation"}, nil)
	a.MustDo("send", map[string]any{"to": sink2, "msg": "to-the-new-one"}, nil)
	if s := nextSignal(t, x, "message"); s.Message != "to-the-new-one" {
		t.Fatalf("new incarnation received %v", s.Message)
	}
	noSignal(t, x, "message", 500*time.Millisecond)
}

func TestWrongSecretAndForeignClusterRefused(t *testing.T) {
	c := clustertest.Start(t, 2, clustertest.Options{})
	bad := c.StartForeign("intruder@127.0.0.1", c.Name, "a-different-secret-of-enough-length")
	c.Eventually(within, func() bool {
		return strings.Contains(bad.Logs(), "authentication failed") && strings.Contains(c.Node(0).Logs(), "authentication failed")
	}, "wrong secret not refused with a clear error on both sides")
	other := c.StartForeign("stranger@127.0.0.1", "another-cluster", c.Secret())
	c.Eventually(within, func() bool {
		return strings.Contains(other.Logs(), "cluster name mismatch") && strings.Contains(c.Node(0).Logs(), "cluster name mismatch")
	}, "foreign cluster not refused with a clear error on both sides")
	for _, n := range c.Nodes() {
		ms, err := n.Members()
		if err != nil || len(ms) != 2 {
			t.Fatalf("%s members %v %v: a refused node got in", n.Name, ms, err)
		}
	}
}

func TestPartitionAndHeal(t *testing.T) {
	c := clustertest.Start(t, 5, clustertest.Options{})
	c.Partition([]int{0, 1, 2}, []int{3, 4})
	for _, i := range []int{0, 1, 2} {
		for _, j := range []int{3, 4} {
			c.WaitStatus(c.Node(i), c.Node(j), "dead", within)
			c.WaitStatus(c.Node(j), c.Node(i), "dead", within)
		}
	}
	var top struct{ Partition struct{ State string } }
	c.Node(4).MustDo("topology", nil, &top)
	if top.Partition.State != "minority" {
		t.Fatalf("minority side reports %q", top.Partition.State)
	}
	c.Node(0).MustDo("topology", nil, &top)
	if top.Partition.State != "partial" {
		t.Fatalf("majority side reports %q", top.Partition.State)
	}
	c.Heal()
	c.WaitConverged(within)
}
