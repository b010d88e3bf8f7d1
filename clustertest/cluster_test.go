package clustertest_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arsenal-go/arsenal/clustertest"
)

func TestMain(m *testing.M) {
	code := clustertest.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const within = 30 * time.Second

// Formation, crash, leave, restart and partition tests live in
// scenarios_test.go (the failure-scenario suite); this file keeps what the
// scenarios do not cover.

func TestWrongSecretAndForeignClusterRefused(t *testing.T) {
	c := clustertest.Start(t, 2, clustertest.Options{})
	bad := c.StartForeign("intruder@127.0.0.1", c.Name, "a-different-secret-of-enough-length")
	c.Eventually(within, func() bool {
		return strings.Contains(bad.Logs(), "authentication failed") && strings.Contains(c.Node(0).Logs(), "authentication failed")
	}, "wrong secret not refused with a clear error on both sides")
	other := c.StartForeign("stranger@127.0.0.1", "another-cluster", c.Secret())
	c.Eventually(within, func() bool {
		return strings.Contains(other.Logs(), "cluster name mismatch") && strings.Contains(c.Node(0).Logs(), "cluster name mismatch")
	}, "foreign cluster not refused with a clear error on both sides")
	for _, n := range c.Nodes() {
		ms, err := n.Members()
		if err != nil || len(ms) != 2 {
			t.Fatalf("%s members %v %v: a refused node got in", n.Name, ms, err)
		}
	}
}
