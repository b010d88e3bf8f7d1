package clustertest_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/clustertest"
)

// A test run attaches to a running 'arsenal cluster' by name, uses its
// nodes (commands, faults, waits), refuses to kill what it did not
// start, and leaves the nodes running with its faults cleared.
func TestAttachToRunningCluster(t *testing.T) {
	bin := clustertest.Binary(t)
	dir := t.TempDir()
	t.Setenv("ARSENAL_ATTACH_DIR", dir)
	t.Setenv("ARSENAL_TEST_REPORTS", t.TempDir()) // the refused run writes one
	out, err := exec.Command(bin, "cluster", "start", "--name", "att", "--nodes", "2", "--profile", "fast", "--dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("arsenal cluster start: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(bin, "cluster", "stop", "--name", "att", "--dir", dir).CombinedOutput(); err != nil {
			t.Errorf("arsenal cluster stop: %v\n%s", err, out)
		}
	})

	c := clustertest.Start(t, 2, clustertest.Options{Attach: "att"})
	echo := c.Spawn(1, "echo")
	if got, err := c.Call(0, echo, "hi"); err != nil || got != "hi" {
		t.Fatalf("call: %q, %v", got, err)
	}
	if i, err := c.TryAddNode(""); err == nil || !strings.Contains(err.Error(), "attached") || c.Size() != 2 {
		t.Errorf("AddNode on an attached cluster: index %d, error %v, size %d; want a refusal", i, err, c.Size())
	}
	c.Partition([]int{0}, []int{1})
	c.WaitPartitioned(30*time.Second, []int{0}, []int{1})
	c.Heal()
	c.WaitConverged(30 * time.Second)

	refused := &recordingTB{TB: t}
	log := refused.run(func(tb testing.TB) {
		c := clustertest.Start(tb, 2, clustertest.Options{Attach: "att"})
		c.Partition([]int{0}, []int{1}) // left in force: detaching clears it
		c.Kill(0)
	})
	if !refused.Failed() || !strings.Contains(log, "belongs to the attached cluster") {
		t.Fatalf("a kill of an attached node was not refused:\n%s", log)
	}
	// The nodes still run, and the partition the refused run left is gone.
	again := clustertest.Start(t, 2, clustertest.Options{Attach: "att"})
	if got, err := again.Call(0, echo, "still"); err != nil || got != "still" {
		t.Fatalf("after the refused run: %q, %v", got, err)
	}
}
