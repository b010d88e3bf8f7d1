package jobq_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/clustertest"
	"github.com/arsenal-go/arsenal/examples/jobq"
)

// The measurements of docs/BENCHMARKS.md ("The composed node"). They
// only run with ARSENAL_MEASURE=1 (build without -race:
// ARSENAL_TEST_NORACE=1), and report; they assert nothing about speed.

func measuring(t *testing.T) {
	if os.Getenv("ARSENAL_MEASURE") == "" {
		t.Skip("set ARSENAL_MEASURE=1 to measure")
	}
}

func pct(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// TestMeasureHarnessStart5: clustertest start → converged, and → services
// ready, for 5 nodes of the jobq binary, 20 times.
func TestMeasureHarnessStart5(t *testing.T) {
	measuring(t)
	app := jobq.App()
	clustertest.BuildBinary(t, "./cmd/jobq") // not in the first start's time
	var conv, ready []time.Duration
	for i := range 20 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			start := time.Now()
			h := clustertest.Start(t, 5, clustertest.Options{Build: "./cmd/jobq", App: &app, Args: args})
			conv = append(conv, time.Since(start))
			h.WaitServicesReady(30 * time.Second)
			ready = append(ready, time.Since(start))
		})
	}
	// p99 of 20 samples is the 19th smallest; max is the 20th.
	t.Logf("5 nodes of jobq, %d starts: start → converged p50 %s p99 %s max %s; start → services ready p50 %s p99 %s max %s",
		len(conv), pct(conv, .5), pct(conv, .99), slices.Max(conv), pct(ready, .5), pct(ready, .99), slices.Max(ready))
}

// TestMeasureNodeStartup: one jobq node, started alone 20 times: the time
// from exec to its "ready" on the control channel, and its memory after 5
// s idle (RSS from /proc, Go heap in use from /metrics).
func TestMeasureNodeStartup(t *testing.T) {
	measuring(t)
	bin := clustertest.BuildBinary(t, "./cmd/jobq")
	var toReady []time.Duration
	var rss, heap []float64
	for i := range 20 {
		cmd := exec.Command(bin, "--control", "stdio", "--name", fmt.Sprintf("m%d@127.0.0.1", i), "--cluster", "measure",
			"--node-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--profile", "fast")
		cmd.Env = append(os.Environ(), "ARSENAL_SECRET=measure-measure-measure")
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		var httpAddr string
		for sc.Scan() {
			var l struct {
				Event string `json:"event"`
				Data  struct {
					HTTPAddr string `json:"http_addr"`
				} `json:"data"`
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Event == "ready" {
				httpAddr = l.Data.HTTPAddr
				break
			}
		}
		toReady = append(toReady, time.Since(start))
		time.Sleep(5 * time.Second) // idle, on purpose: this measures memory at rest
		if b, err := os.ReadFile(filepath.Join("/proc", fmt.Sprint(cmd.Process.Pid), "status")); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				var kb float64
				if _, err := fmt.Sscanf(line, "VmRSS: %f kB", &kb); err == nil {
					rss = append(rss, kb/1024)
				}
			}
		}
		if resp, err := http.Get("http://" + httpAddr + "/metrics"); err == nil {
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range strings.Split(string(out), "\n") {
				var v float64
				if _, err := fmt.Sscanf(line, "go_memstats_heap_inuse_bytes %g", &v); err == nil {
					heap = append(heap, v/(1<<20))
				}
			}
		}
		stdin.Close() // the node stops gracefully at EOF
		if err := cmd.Wait(); err != nil {
			t.Fatalf("node exit: %v", err)
		}
	}
	slices.Sort(rss)
	slices.Sort(heap)
	t.Logf("jobq node, %d starts: exec → ready p50 %s p99 %s max %s; idle RSS p50 %.1f MiB (min %.1f, max %.1f); Go heap in use p50 %.1f MiB",
		len(toReady), pct(toReady, .5), pct(toReady, .99), slices.Max(toReady), rss[len(rss)/2], rss[0], rss[len(rss)-1], heap[len(heap)/2])
}
