package clustertest_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal"
	"github.com/arsenal-go/arsenal/clustertest"
	"github.com/arsenal-go/arsenal/placement"
	"github.com/arsenal-go/arsenal/process"
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
		c.WaitServicesReady(30 * time.Second)
		if _, err := c.Place(1, placement.ChildSpec{ID: "att-child", Kind: "echo", Name: "att.child"}); err != nil {
			tb.Fatalf("place: %v", err) // left running: detaching stops it
		}
		c.Partition([]int{0}, []int{1}) // left in force: detaching clears it
		c.Kill(0)
	})
	if !refused.Failed() || !strings.Contains(log, "belongs to the attached cluster") || strings.Contains(log, "place:") {
		t.Fatalf("a kill of an attached node was not refused:\n%s", log)
	}
	// A test of another binary's App is refused at attach, by name.
	other := &recordingTB{TB: t}
	log = other.run(func(tb testing.TB) {
		app := arsenal.App{Name: "other", Kinds: []arsenal.Kind{{Name: "other.kind", New: func([]byte) (process.Behaviour, error) { return process.Server{}, nil }}}}
		clustertest.Start(tb, 2, clustertest.Options{Attach: "att", App: &app})
	})
	if !other.Failed() || !strings.Contains(log, `lack "other.kind" of the test's App: not the test's binary`) {
		t.Fatalf("attaching a test of another App was not refused by name:\n%s", log)
	}
	// The nodes still run, the partition the refused run left is gone, and
	// so is the child it placed: the next run can place it again.
	again := clustertest.Start(t, 2, clustertest.Options{Attach: "att"})
	if got, err := again.Call(0, echo, "still"); err != nil || got != "still" {
		t.Fatalf("after the refused run: %q, %v", got, err)
	}
	again.WaitServicesReady(30 * time.Second)
	for i := 0; i < 2; i++ {
		s, err := again.Services(i)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.Children["att-child"]; ok {
			t.Fatalf("node %d still knows the child the refused run placed: %+v", i, s.Children)
		}
	}
	if _, err := again.Place(0, placement.ChildSpec{ID: "att-child", Kind: "echo", Name: "att.child"}); err != nil {
		t.Fatalf("placing the child again: %v", err)
	}
}
