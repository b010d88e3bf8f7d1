package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/internal/testutil"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// 'arsenal dev --simulate' runs the dev cluster in this process; its
// operations API reports mode simulated, and it stops on SIGINT.
func TestDevSimulate(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // the dev token goes here, not into the user's cache
	out, errs := &lockedBuf{}, &lockedBuf{}
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"dev", "--simulate", "--http-port", "0", "--no-demo", "--log-level", "error"}, out, errs)
	}()
	var addr string
	testutil.Eventually(t, 20*time.Second, func() bool {
		for _, line := range strings.Split(out.String(), "\n") {
			if i := strings.Index(line, "http://127.0.0.1:"); i >= 0 && strings.HasPrefix(line, "n1@") {
				addr = strings.TrimSpace(line[i:])
				return true
			}
		}
		return false
	}, "no address printed: %s %s", out.String(), errs.String())
	resp, err := http.Get(addr + "/api/v1/cluster/topology")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Data struct {
			Mode  string `json:"mode"`
			Alive int    `json:"alive_nodes"`
		} `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if body.Data.Mode != "simulated" || body.Data.Alive != 3 {
		t.Fatalf("topology %+v", body.Data)
	}
	cliOnRealNodes(t, addr)
	_ = syscall.Kill(syscall.Getpid(), syscall.SIGINT)
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(30*time.Second))
	defer cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs.String())
		}
	case <-ctx.Done():
		t.Fatal("dev --simulate did not stop on SIGINT")
	}
}

// cliOnRealNodes runs the client verbs against the nodes of a dev cluster:
// the whole envelope in JSON, health's exit code, --node by name.
func cliOnRealNodes(t *testing.T, addr string) {
	t.Helper()
	code, out, errs := runCLI("nodes", "--addr", addr, "--format", "json")
	var top struct {
		Data struct {
			Nodes []struct {
				Name string `json:"name"`
				Self bool   `json:"self"`
			} `json:"nodes"`
		} `json:"data"`
		Meta map[string]any `json:"meta"`
	}
	if err := json.Unmarshal([]byte(out), &top); code != 0 || err != nil || len(top.Data.Nodes) != 3 || top.Meta["operation"] != "cluster.topology" {
		t.Fatalf("nodes --format json: exit %d, %v: %s%s", code, err, out, errs)
	}
	other := ""
	for _, n := range top.Data.Nodes {
		if !n.Self {
			other = n.Name
		}
	}
	code, out, errs = runCLI("nodes", "--addr", addr, "--node", other)
	if code != 0 || !strings.Contains(out, other+" (this)") {
		t.Fatalf("nodes --node %s: exit %d: %s%s", other, code, out, errs)
	}
	if code, out, errs = runCLI("health", "--addr", addr); code != 0 || !strings.Contains(out, "overall: healthy") {
		t.Fatalf("health: exit %d: %s%s", code, out, errs)
	}
	code, out, errs = runCLI("ps", "--addr", addr, "--limit", "3", "--format", "json", "--node", other)
	var ps struct {
		Data struct {
			Processes []struct {
				Node string `json:"node"`
			} `json:"processes"`
		} `json:"data"`
		Meta map[string]any `json:"meta"`
	}
	if err := json.Unmarshal([]byte(out), &ps); code != 0 || err != nil || ps.Meta["operation"] != "cluster.processes" {
		t.Fatalf("ps --node: exit %d, %v: %s%s", code, err, out, errs)
	}
	for _, p := range ps.Data.Processes {
		if p.Node != other {
			t.Fatalf("ps --node %s listed a process of %s", other, p.Node)
		}
	}
}
