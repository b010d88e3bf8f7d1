package operations

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/node"
)

// Each snapshot of the health history keeps every node's score as it was
// then, so the dashboard can chart each node from the real buffer.
func TestHealthHistoryKeepsEachNodesScore(t *testing.T) {
	cfg := node.Config{Name: "h@127.0.0.1", Cluster: fmt.Sprintf("hh%d", time.Now().UnixNano()),
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
	h := NewHealthMonitor(n, time.Hour, 2)
	for range 3 {
		h.sample()
	}
	hist := h.History()
	if len(hist) != 2 {
		t.Fatalf("%d snapshots kept, want the last 2", len(hist))
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

func minOf(m map[string]int) int {
	out := 100
	for _, v := range m {
		out = min(out, v)
	}
	return out
}
