package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger discards logs unless CLUSTER_TEST_LOG is set (to a level:
// debug, info, warn).
func testLogger() *slog.Logger {
	lvl := os.Getenv("CLUSTER_TEST_LOG")
	if lvl == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var l slog.Level
	_ = l.UnmarshalText([]byte(lvl))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// eventually polls cond until it holds or timeout passes. cond returns a
// description of what is still wrong, or "" when satisfied; the last
// description is the failure message.
func eventually(t testing.TB, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %s", timeout, msg)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

// testConfig is a Fast-profile node on loopback with a free port.
func testConfig(cluster, name string, seeds ...string) Config {
	cfg := Config{
		ClusterName: cluster,
		NodeName:    name,
		BindAddr:    "127.0.0.1:0",
		Profile:     ProfileFast,
		Logger:      testLogger(),
	}
	if len(seeds) > 0 {
		cfg.Discovery = StaticSeeds(seeds...)
	}
	return cfg
}

func startNode(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.NodeName, err)
	}
	t.Cleanup(func() { _ = c.Shutdown() })
	return c
}

// startCluster starts n nodes; each is given every earlier node as a seed.
// It does not wait for convergence.
func startCluster(t testing.TB, cluster string, n int) []*Cluster {
	t.Helper()
	var nodes []*Cluster
	var seeds []string
	for i := range n {
		c := startNode(t, testConfig(cluster, nodeName(i), seeds...))
		nodes = append(nodes, c)
		seeds = append(seeds, c.GossipAddr())
	}
	return nodes
}

func nodeName(i int) string { return fmt.Sprintf("n%d@127.0.0.1", i) }

// statusOf returns what c thinks of name ("" when unknown).
func statusOf(c *Cluster, name string) Status {
	for _, m := range c.Members() {
		if m.Name == name {
			return m.Status
		}
	}
	return ""
}

func memberOf(c *Cluster, name string) (Member, bool) {
	for _, m := range c.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// allSee returns "" when every observer sees every name in want with the
// given status, or says who is missing what.
func allSee(observers []*Cluster, want Status, names ...string) string {
	var problems []string
	for _, o := range observers {
		for _, n := range names {
			if got := statusOf(o, n); got != want {
				problems = append(problems, fmt.Sprintf("%s sees %s as %q (want %q)", o.LocalName(), n, got, want))
			}
		}
	}
	return strings.Join(problems, "; ")
}

func names(nodes []*Cluster) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.LocalName()
	}
	return out
}

// collector records every event of one subscription.
type collector struct {
	mu     sync.Mutex
	events []Event
	done   chan struct{}
}

func collect(c *Cluster) *collector {
	ch, _ := c.Subscribe(4096)
	col := &collector{done: make(chan struct{})}
	go func() {
		defer close(col.done)
		for e := range ch {
			col.mu.Lock()
			col.events = append(col.events, e)
			col.mu.Unlock()
		}
	}()
	return col
}

func (col *collector) all() []Event {
	col.mu.Lock()
	defer col.mu.Unlock()
	return slices.Clone(col.events)
}

// forNode returns the node events about name, in order.
func (col *collector) forNode(name string) []EventType {
	var out []EventType
	for _, e := range col.all() {
		if e.Node == name {
			out = append(out, e.Type)
		}
	}
	return out
}

func (col *collector) has(pred func(Event) bool) bool {
	return slices.ContainsFunc(col.all(), pred)
}

// waitFor waits until the collector has an event matching pred.
func (col *collector) waitFor(t testing.TB, timeout time.Duration, what string, pred func(Event) bool) Event {
	t.Helper()
	var found Event
	eventually(t, timeout, func() string {
		for _, e := range col.all() {
			if pred(e) {
				found = e
				return ""
			}
		}
		return "no event: " + what
	})
	return found
}

// captureHandler records log records for assertions.
type captureHandler struct {
	mu      sync.Mutex
	records []string
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Message)
	return nil
}
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }
func (h *captureHandler) contains(sub string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.records {
		if strings.Contains(r, sub) {
			return true
		}
	}
	return false
}

func slogWith(h slog.Handler) *slog.Logger { return slog.New(h) }
