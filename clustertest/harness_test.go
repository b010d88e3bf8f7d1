package clustertest_test

// Tests of the harness itself: the same body on both backends, the
// diagnostics (printed on failure, not on success), the per-pair sequence
// checker and the partition spec validation.

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/clustertest"
)

// splitAndHeal is one test body for either backend.
func splitAndHeal(t *testing.T, h clustertest.Harness) {
	h.Partition([]int{0}, []int{1, 2})
	h.WaitPartitioned(within, []int{0}, []int{1, 2})
	h.Heal()
	h.WaitConverged(within)
	fs := h.History().Faults()
	if len(fs) != 1 {
		t.Fatalf("faults %v", fs)
	}
	if _, ok := fs[0].EffectAfter(); !ok {
		t.Errorf("the partition was never marked in effect: %v", fs[0])
	}
	if _, ok := fs[0].RecoveryAfter(); !ok {
		t.Errorf("the partition was never marked recovered: %v", fs[0])
	}
}

func TestHarnessBothBackends(t *testing.T) {
	for _, b := range []string{clustertest.BackendReal, clustertest.BackendSim} {
		t.Run(b, func(t *testing.T) {
			h := clustertest.New(t, 3, clustertest.Options{Backend: b})
			if h.Backend() != b {
				t.Fatalf("backend %s, want %s", h.Backend(), b)
			}
			splitAndHeal(t, h)
		})
	}
}

// recordingTB stands in for a test so that the harness's own failure
// handling can be observed: Fatal ends the goroutine as FailNow does, and
// cleanups run in finish.
type recordingTB struct {
	testing.TB
	mu       sync.Mutex
	failed   bool
	out      strings.Builder
	cleanups []func()
}

func (r *recordingTB) Cleanup(f func()) {
	r.mu.Lock()
	r.cleanups = append(r.cleanups, f)
	r.mu.Unlock()
}
func (r *recordingTB) Failed() bool    { r.mu.Lock(); defer r.mu.Unlock(); return r.failed }
func (r *recordingTB) Log(args ...any) { r.mu.Lock(); fmt.Fprintln(&r.out, args...); r.mu.Unlock() }
func (r *recordingTB) Logf(f string, args ...any) {
	r.mu.Lock()
	fmt.Fprintf(&r.out, f+"\n", args...)
	r.mu.Unlock()
}
func (r *recordingTB) Error(args ...any)            { r.Log(args...); r.fail() }
func (r *recordingTB) Errorf(f string, args ...any) { r.Logf(f, args...); r.fail() }
func (r *recordingTB) Fatal(args ...any)            { r.Error(args...); runtime.Goexit() }
func (r *recordingTB) Fatalf(f string, args ...any) { r.Errorf(f, args...); runtime.Goexit() }
func (r *recordingTB) FailNow()                     { r.fail(); runtime.Goexit() }
func (r *recordingTB) fail()                        { r.mu.Lock(); r.failed = true; r.mu.Unlock() }

// run runs body as a test would (in its own goroutine), then the
// cleanups, and returns what was logged.
func (r *recordingTB) run(body func(tb testing.TB)) string {
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(r)
	}()
	<-done
	r.mu.Lock()
	fs := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

func TestHarnessDiagnosticsOnlyOnFailure(t *testing.T) {
	t.Setenv("ARSENAL_TEST_REPORTS", t.TempDir()) // the failing body writes one
	failing := &recordingTB{TB: t}
	out := failing.run(func(tb testing.TB) {
		c := clustertest.Start(tb, 2, clustertest.Options{})
		c.Partition([]int{0}, []int{1})
		c.Eventually(200*time.Millisecond, func() bool { return false }, "a condition that never holds")
	})
	if !failing.Failed() {
		t.Fatal("the failed wait did not fail the test")
	}
	for _, want := range []string{
		"a condition that never holds",                  // the failure itself
		"-- membership matrix (row sees column) --",     // who sees whom
		"fault: #1 partition [[0] [1]]",                 // the timeline
		"FAILED: wait: a condition that never holds",    // the failure in it
		"[n1@127.0.0.1] node_up n2@127.0.0.1",           // membership changes
		"-- n2@127.0.0.1: arsenal node --control stdio", // command lines
		"[n2@127.0.0.1] time=",                          // logs with a node prefix
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the diagnostics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("what the failing test logged:\n%s", out)
	}

	passing := &recordingTB{TB: t}
	out = passing.run(func(tb testing.TB) {
		c := clustertest.Start(tb, 2, clustertest.Options{})
		c.Kill(1)
		c.WaitDead(1, within)
	})
	if passing.Failed() {
		t.Fatalf("the passing body failed:\n%s", out)
	}
	if strings.Contains(out, "membership matrix") || strings.Contains(out, "[n1@127.0.0.1] time=") {
		t.Errorf("diagnostics printed although the test passed:\n%s", out)
	}
	if !strings.Contains(out, "#1 kill -9 n2@127.0.0.1: injected at") {
		t.Errorf("no fault summary on success:\n%s", out)
	}
}

func TestHarnessPartitionSpecValidated(t *testing.T) {
	t.Setenv("ARSENAL_TEST_REPORTS", t.TempDir()) // the failing bodies write some
	r := &recordingTB{TB: t}
	bad := [][][]int{
		{{0, 1}, {1, 2}}, // repeated
		{{0}, {5}},       // out of range
		{{0, 1, 2}},      // one group
		{{0}, {}},        // empty group
	}
	out := r.run(func(tb testing.TB) {
		c := clustertest.Start(tb, 3, clustertest.Options{NoWait: true})
		for _, groups := range bad {
			done := make(chan struct{})
			go func() { // Fatal ends this goroutine, as it would end a test
				defer close(done)
				c.Partition(groups...)
			}()
			<-done
		}
	})
	if n := strings.Count(out, "bad partition spec"); n != len(bad) {
		t.Errorf("%d of %d bad partition specs refused:\n%s", n, len(bad), out)
	}
}

func TestCheckSeq(t *testing.T) {
	for _, tc := range []struct {
		msgs []string
		sent int
		want string
		ok   bool
	}{
		{[]string{"a:0", "a:1", "a:2"}, 3, "received 3, duplicates [], reordered [], missing [], foreign 0", true},
		{[]string{"a:0", "b:0", "a:3", "a:4"}, 6, "received 3, duplicates [], reordered [], missing [1-2 5], foreign 1", true},
		{[]string{"a:0", "a:2", "a:1"}, 3, "received 3, duplicates [], reordered [1], missing [], foreign 0", false},
		{[]string{"a:0", "a:1", "a:1"}, 2, "received 3, duplicates [1], reordered [], missing [], foreign 0", false},
	} {
		c := clustertest.CheckSeq(tc.msgs, "a", tc.sent)
		if c.String() != tc.want || c.OK() != tc.ok {
			t.Errorf("CheckSeq(%v) = %s (ok %v); want %s (ok %v)", tc.msgs, c, c.OK(), tc.want, tc.ok)
		}
	}
}

// TestDocExample is the complete example of docs/TESTING.md, kept here so
// that it compiles and passes. Keep the two in step.
func TestDocExample(t *testing.T) {
	// Three nodes: real processes, or in-process with ARSENAL_CLUSTER=sim.
	h := clustertest.New(t, 3, clustertest.Options{})

	// A server on n3, monitored from n1; a sink on n2 fed by a sender on n1.
	echo := h.Spawn(2, "echo")
	watcher := h.Monitor(0, echo)
	sink := h.Spawn(1, "sink")
	sender := h.Sender(0)
	mark := h.History().Len()

	// Cut n3 away and wait until the cut is in effect on both sides.
	h.Partition([]int{0, 1}, []int{2})
	h.WaitPartitioned(30*time.Second, []int{0, 1}, []int{2})

	// During the fault: n1's monitor fires exactly once, with noconnection,
	// and n1 -> n2 traffic is untouched.
	h.Eventually(10*time.Second, func() bool {
		return len(h.History().Signals(mark, clustertest.KindDown, "")) > 0
	}, "the monitor of a process on the cut node did not fire")
	downs := h.History().Signals(mark, clustertest.KindDown, h.NodeName(0))
	if len(downs) != 1 || downs[0].Watcher != watcher || downs[0].Reason != "noconnection" {
		t.Fatalf("DOWN signals on n1: %+v", downs)
	}
	h.SendSeq(0, sender, sink, "m", 50)
	h.Eventually(10*time.Second, func() bool {
		return len(h.History().Messages(mark, sink)) == 50
	}, "the sink did not get its 50 messages")
	if c := clustertest.CheckSeq(h.History().Messages(mark, sink), "m", 50); !c.OK() || len(c.Missing) > 0 {
		t.Fatalf("n1 -> n2: %s", c)
	}

	// Undo the fault and wait until recovered; nothing fires twice.
	h.Heal()
	h.WaitConverged(30 * time.Second)
	h.Consistently(500*time.Millisecond, func() bool {
		return len(h.History().Signals(mark, clustertest.KindDown, "")) == 1
	}, "a monitor fired twice")
	t.Log(h.History().Summary()) // time to effect and to recovery
}

// A failing test leaves one report per cluster: a text timeline and a
// JSON file that merge the harness's History and every node's log on one
// time axis; the log says where.
func TestFailureReportFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("ARSENAL_TEST_REPORTS", dir)
	failing := &recordingTB{TB: t}
	out := failing.run(func(tb testing.TB) {
		c := clustertest.Start(tb, 2, clustertest.Options{})
		c.Kill(1)
		c.Eventually(200*time.Millisecond, func() bool { return false }, "a condition that never holds")
	})
	if !failing.Failed() {
		t.Fatal("the failed wait did not fail the test")
	}
	i := strings.Index(out, "failure report: ")
	if i < 0 {
		t.Fatalf("no report path in the log:\n%s", out)
	}
	path := strings.Fields(out[i+len("failure report: "):])[0]
	if !strings.HasPrefix(path, dir) {
		t.Fatalf("report %s is not under ARSENAL_TEST_REPORTS %s", path, dir)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	txt := string(b)
	for _, want := range []string{"fault      [harness] #1 kill -9 n2@127.0.0.1", "FAILED", "member     [n1@127.0.0.1] node_up n2@127.0.0.1", "log        [n2@127.0.0.1] time="} {
		if !strings.Contains(txt, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	var r clustertest.Report
	jb, err := os.ReadFile(strings.TrimSuffix(path, ".txt") + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(jb, &r); err != nil {
		t.Fatal(err)
	}
	for k := 1; k < len(r.Timeline); k++ {
		if r.Timeline[k].At < r.Timeline[k-1].At {
			t.Fatalf("the timeline is not in time order at %d: %v after %v", k, r.Timeline[k], r.Timeline[k-1])
		}
	}
	if len(r.Faults) != 1 || r.Test == "" {
		t.Errorf("report: %d faults, test %q", len(r.Faults), r.Test)
	}
	if t.Failed() {
		t.Logf("the report:\n%s", txt)
	}
}
