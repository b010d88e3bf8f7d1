package operations

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/ops"
)

// Each snapshot of the health history keeps every node's score as it was
// then, so the dashboard can chart each node from the real buffer.
func TestHealthHistoryKeepsEachNodesScore(t *testing.T) {
	n := loneNode(t, "h")
	h := NewHealthMonitor(n, time.Hour, 3)
	for range 4 {
		h.sample()
	}
	hist := h.History()
	if len(hist) != 3 {
		t.Fatalf("%d snapshots kept, want the last 3", len(hist))
	}
	want := h.Report().Nodes
	for _, s := range hist {
		if len(s.Scores) != len(want) {
			t.Fatalf("snapshot scores %v, want one per node of %+v", s.Scores, want)
		}
		for _, nh := range want {
			// The score itself may have changed since (facts arrive in
			// the background): the snapshot holds one for every node.
			if sc, ok := s.Scores[nh.Node]; !ok || sc < 0 || sc > 100 {
				t.Fatalf("snapshot score of %s: %d (%v)", nh.Node, sc, ok)
			}
		}
		if s.MinScore != minOf(s.Scores) {
			t.Fatalf("min_score %d, lowest of %v", s.MinScore, s.Scores)
		}
	}
}

// history_limit gives only the newest snapshots; without it, all kept.
func TestHealthHistoryLimit(t *testing.T) {
	n := loneNode(t, "hl")
	h := NewHealthMonitor(n, time.Hour, 10)
	for range 4 {
		h.sample()
	}
	reg := ops.NewRegistry()
	if err := Register(reg, &Env{Node: n, Health: h}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg.Handler(ops.ServerConfig{Node: n.Name(), OpenReads: true}))
	t.Cleanup(srv.Close)
	all := h.History()
	for q, want := range map[string][]HealthSnapshot{"": all, "&history_limit=0": all, "&history_limit=2": all[2:], "&history_limit=9": all} {
		resp, err := http.Get(srv.URL + "/api/v1/cluster/health?include_history=true" + q)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Data struct{ History []HealthSnapshot }
		}
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%q: %d %v", q, resp.StatusCode, err)
		}
		if len(r.Data.History) != len(want) {
			t.Fatalf("%q: %d snapshots, want %d", q, len(r.Data.History), len(want))
		}
		if !r.Data.History[0].Time.Equal(want[0].Time) {
			t.Fatalf("%q: the snapshots begin at %v, want %v", q, r.Data.History[0].Time, want[0].Time)
		}
	}
}

func minOf(m map[string]int) int {
	out := 100
	for _, v := range m {
		out = min(out, v)
	}
	return out
}

// loneNode starts a node of its own cluster named prefix@127.0.0.1,
// closed when the test ends.
func loneNode(t *testing.T, prefix string) *node.Node {
	t.Helper()
	cfg := node.Config{Name: prefix + "@127.0.0.1", Cluster: fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()),
		Secret: []byte("health-test-secret-0123"), Profile: cluster.ProfileFast}
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	return n
}
