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
