package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/internal/clusterstate"
	"github.com/arsenal-go/arsenal/internal/testutil"
)

// 'arsenal cluster start --binary' runs a cluster of the user's own binary
// (examples/jobq) with an operator token the CLI finds by itself; a node
// whose port is taken is retried with backoff, saying so; a node that
// fails for good stops the start at once with its last log lines.
func TestClusterStartUserBinary(t *testing.T) {
	c := cli{t: t, bin: buildArsenal(t), dir: t.TempDir()}
	t.Cleanup(func() { killRecorded(t, c.dir) })
	t.Setenv("ARSENAL_TOKEN", "")
	t.Setenv("ARSENAL_TOKEN_FILE", "")
	jobq := filepath.Join(t.TempDir(), "jobq")
	if out, err := exec.Command("go", "build", "-o", jobq, "../../examples/jobq/cmd/jobq").CombinedOutput(); err != nil {
		t.Fatalf("go build jobq: %v\n%s", err, out)
	}

	t.Run("token", func(t *testing.T) {
		c.t = t
		c.ok("cluster", "start", "--name", "ub", "--nodes", "2", "--profile", "fast", "--binary", jobq)
		defer c.ok("cluster", "clean", "--name", "ub")
		cs := c.status("ub")
		st, err := clusterstate.Load(filepath.Join(c.dir, "ub"))
		if err != nil {
			t.Fatal(err)
		}
		if len(cs.Nodes) != 2 || cs.Ready != 2 || len(st.Nodes) != 2 || st.Nodes[0].Args[0] != jobq {
			t.Fatalf("status: %+v; state: %+v", cs, st)
		}
		// rebalance is an operator operation: without the cluster's token
		// it would answer 401.
		tokenFile := filepath.Join(c.dir, "ub", "operator-token")
		r := c.ok("rebalance", "--addr", "http://"+cs.Nodes[0].HTTPAddr, "--token-file", tokenFile, "--format", "json")
		if !strings.Contains(r.stdout, `"moved"`) {
			t.Fatalf("rebalance: %s", r)
		}
	})

	t.Run("permanent failure", func(t *testing.T) {
		c.t = t
		bad := filepath.Join(t.TempDir(), "bad")
		if err := os.WriteFile(bad, []byte("#!/bin/sh\necho 'bad: the config is broken' >&2\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		r := c.run("cluster", "start", "--name", "bad", "--nodes", "1", "--binary", bad)
		if r.code == 0 || !strings.Contains(r.stderr, "bad: the config is broken") || strings.Contains(r.stderr, "retrying") {
			t.Fatalf("a node that fails for good: want a failure at once with its log lines, no retry:\n%s", r)
		}
		c.run("cluster", "clean", "--name", "bad")
	})

	t.Run("port taken", func(t *testing.T) {
		c.t = t
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		port := l.Addr().(*net.TCPAddr).Port
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(90*time.Second))
		defer cancel()
		cmd := exec.CommandContext(ctx, c.bin, "cluster", "start", "--name", "port", "--nodes", "1", "--profile", "fast",
			"--binary", jobq, "--http-port", strconv.Itoa(port), "--dir", c.dir)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.run("cluster", "clean", "--name", "port")
		sc := bufio.NewScanner(stderr)
		var said []string
		for sc.Scan() {
			said = append(said, sc.Text())
			if strings.Contains(sc.Text(), "a port is taken; retrying") {
				l.Close() // the port is free for the next attempt
			}
		}
		if err := cmd.Wait(); err != nil || !strings.Contains(strings.Join(said, "\n"), "a port is taken; retrying") {
			t.Fatalf("start with a port taken for a while: %v; want a retry that says so, then success:\n%s", err, strings.Join(said, "\n"))
		}
		if st := c.status("port"); len(st.Nodes) != 1 || !strings.HasSuffix(st.Nodes[0].HTTPAddr, ":"+strconv.Itoa(port)) {
			t.Fatalf("status after the retry: %+v", st)
		}
	})
}
