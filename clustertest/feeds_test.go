package clustertest_test

import (
	"bufio"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/clustertest"
	"github.com/arsenal-go/arsenal/internal/testutil"
)

// openFeeds opens n event feeds on base and returns, per feed, a channel
// that gets the last event name the feed saw before its end.
func openFeeds(t *testing.T, base string, n int) []chan string {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	t.Cleanup(client.CloseIdleConnections)
	var opened sync.WaitGroup
	opened.Add(n)
	out := make([]chan string, n)
	for i := range out {
		out[i] = make(chan string, 1)
		go func(last chan string) {
			req, _ := http.NewRequest("GET", base+"/api/v1/cluster/events", nil)
			resp, err := client.Do(req)
			if err != nil {
				opened.Done()
				last <- "error: " + err.Error()
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(nil, 1<<20)
			name, first := "", true
			for sc.Scan() {
				if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
					name = ev
					if first {
						first = false
						opened.Done()
					}
				}
			}
			if first {
				opened.Done()
			}
			last <- name
		}(out[i])
	}
	opened.Wait()
	return out
}

// A node with 100 open event feeds stops as a node without: it leaves
// (its peers see it left, not dead), exits 0, and every feed ends with a
// shutdown event. The times to stop are logged, for docs/BENCHMARKS.md.
func TestNodeWithOpenFeedsLeavesAtOnce(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	const feeds = 100
	last := openFeeds(t, c.Node(1).URL(), feeds)

	start := time.Now()
	c.Stop(1) // fails the test unless the node exits 0 within its deadline
	withFeeds := time.Since(start)
	for i, ch := range last {
		select {
		case name := <-ch:
			if name != "shutdown" {
				t.Fatalf("feed %d ended after %q, want a final shutdown event", i, name)
			}
		case <-time.After(testutil.Scale(10 * time.Second)):
			t.Fatalf("feed %d did not end when its node stopped", i)
		}
	}
	c.WaitStatus(c.Node(0), c.Node(1), "left", testutil.Scale(within))

	start = time.Now()
	c.Stop(2)
	without := time.Since(start)
	c.WaitStatus(c.Node(0), c.Node(2), "left", testutil.Scale(within))
	t.Logf("time to stop (SIGTERM to exit 0): %s with %d open feeds, %s with none", withFeeds.Round(time.Millisecond), feeds, without.Round(time.Millisecond))
}
