package operations

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/ops"
)

type frame struct{ id, name, data string }

// readFrames reads frames of the feed at url (with lastID as
// Last-Event-ID) until it has n of them.
func readFrames(t *testing.T, url, lastID string, n int) []frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("feed: %d", resp.StatusCode)
	}
	var out []frame
	var f frame
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for len(out) < n && sc.Scan() {
		l := sc.Text()
		switch {
		case l == "":
			if f.name != "" {
				out = append(out, f)
			}
			f = frame{}
		case strings.HasPrefix(l, "id: "):
			f.id = l[4:]
		case strings.HasPrefix(l, "event: "):
			f.name = l[7:]
		case strings.HasPrefix(l, "data: "):
			f.data = l[6:]
		}
	}
	if len(out) < n {
		t.Fatalf("got %d frames, want %d: %+v (%v)", len(out), n, out, sc.Err())
	}
	return out
}

// A client that reconnects with Last-Event-ID gets exactly the events it
// missed, in order, from the backlog; with an id the node never gave, it
// gets a new snapshot that says it did not resume.
func TestEventFeedResumesFromLastEventID(t *testing.T) {
	cl := fmt.Sprintf("ev%d", time.Now().UnixNano())
	start := func(name string, seeds ...string) *node.Node {
		cfg := node.Config{Name: name, Cluster: cl, Secret: []byte("events-test-secret-0123"), Profile: cluster.ProfileFast}
		if len(seeds) > 0 {
			cfg.Discovery = cluster.StaticSeeds(seeds...)
		}
		n, err := node.Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	a := start("a@127.0.0.1")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Close(ctx)
	})
	reg := ops.NewRegistry()
	if err := Register(reg, &Env{Node: a, Health: NewHealthMonitor(a, time.Hour, 1)}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg.Handler(ops.ServerConfig{Node: a.Name(), OpenReads: true}))
	t.Cleanup(srv.Close)
	url := srv.URL + "/api/v1/cluster/events"

	first := readFrames(t, url, "", 1)[0]
	if first.name != "topology" || first.id == "" || !strings.Contains(first.data, `"resume_failed":false`) {
		t.Fatalf("first frame %+v", first)
	}
	seen, _ := strconv.ParseUint(first.id, 10, 64)

	// Events happen while no client listens: b joins, then leaves.
	b := start("b@127.0.0.1", a.Addr())
	testutil.Eventually(t, 20*time.Second, func() bool { return a.Cluster().Topology().Alive == 2 }, "b did not join")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, func() bool {
		for _, m := range a.Cluster().Members() {
			if m.Name == "b@127.0.0.1" {
				return m.Status == cluster.StatusLeft
			}
		}
		return false
	}, "b did not leave")
	last := a.Cluster().Topology().Seq
	if last <= seen {
		t.Fatalf("no event after seq %d", seen)
	}

	// Resumed: the missed events, seq by seq, and no snapshot.
	missed := readFrames(t, url, first.id, int(last-seen))
	for i, f := range missed {
		if want := strconv.FormatUint(seen+1+uint64(i), 10); f.id != want || f.name == "topology" {
			t.Fatalf("resumed frame %d: %+v, want id %s and an event", i, f, want)
		}
	}
	names := make([]string, len(missed))
	for i, f := range missed {
		names[i] = f.name
	}
	if !strings.Contains(strings.Join(names, " "), "node_up") || !strings.Contains(strings.Join(names, " "), "node_left") {
		t.Fatalf("resumed events %v, want b's node_up and node_left", names)
	}

	// An id from elsewhere (or an earlier incarnation): a new snapshot.
	again := readFrames(t, url, strconv.FormatUint(last+1000, 10), 1)[0]
	if again.name != "topology" || !strings.Contains(again.data, `"resume_failed":true`) || again.id != strconv.FormatUint(last, 10) {
		t.Fatalf("resume from an unknown id: %+v", again)
	}
	// Not a number: 400.
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Last-Event-ID", "abc")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("Last-Event-ID abc: %d", resp.StatusCode)
	}
}
