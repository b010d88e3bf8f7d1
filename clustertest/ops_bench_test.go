package clustertest_test

import (
	"io"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/clustertest"
)

// BenchmarkClusterProcessList measures the cluster-wide process list over
// 5 real node processes holding 10,000 processes each: the first page of
// 100, and a filtered, sorted query. Each request asks all 5 nodes.
//
//	go test -run '^$' -bench ClusterProcessList -benchtime 1x ./clustertest/
func BenchmarkClusterProcessList(b *testing.B) {
	if testing.Short() {
		b.Skip("starts real nodes")
	}
	b.Setenv("ARSENAL_TEST_NORACE", "1") // measure the binary as users run it
	c := clustertest.Start(b, 5, clustertest.Options{})
	for _, n := range c.Nodes() {
		n.MustDo("spawn", map[string]any{"count": 10000}, nil)
	}
	base := c.Node(0).URL() + "/api/v1/cluster/processes"
	for _, q := range []struct{ name, query string }{
		{"first100", "?limit=100"},
		{"filtered", "?behaviour=echo&sort=messages&min_mailbox=0&limit=100&offset=100"},
	} {
		b.Run(q.name, func(b *testing.B) {
			const samples = 200
			lat := make([]time.Duration, 0, samples)
			for i := 0; i < samples; i++ {
				start := time.Now()
				resp, err := http.Get(base + q.query)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("%d %s", resp.StatusCode, body)
				}
				lat = append(lat, time.Since(start))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[samples/2].Microseconds())/1000, "p50_ms")
			b.ReportMetric(float64(lat[samples*99/100].Microseconds())/1000, "p99_ms")
			b.Logf("%s over %d requests: p50 %s, p99 %s", q.name, samples, lat[samples/2], lat[samples*99/100])
		})
	}
}
