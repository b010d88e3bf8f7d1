package clustertest

import (
	"testing"
	"time"
)

func TestDoubleRunsFromHistory(t *testing.T) {
	t0 := time.Now()
	h := newHistory(t0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	names := []string{"n1", "n2", "n3"}
	// c1: n1 runs it, n2 starts a copy 100 ms before n1 stops: a double run.
	// c2: n1 stops it, then n3 starts it: clean.
	// c3: runs on n2, which is killed at 500 ms; n3 starts it at 600: clean.
	// c4: runs on n2 (killed at 500), n1 starts it at 400: 100 ms double.
	for _, ev := range []ChildEvent{
		{Type: "started", Time: at(0), ID: "c1", PID: "<1>", Node: "n1"},
		{Type: "started", Time: at(0), ID: "c2", PID: "<2>", Node: "n1"},
		{Type: "started", Time: at(10), ID: "c3", PID: "<3>", Node: "n2"},
		{Type: "started", Time: at(10), ID: "c4", PID: "<4>", Node: "n2"},
		{Type: "started", Time: at(200), ID: "c1", PID: "<5>", Node: "n2"},
		{Type: "stopped", Time: at(300), ID: "c1", PID: "<1>", Node: "n1", Reason: "lease_expired"},
		{Type: "stopped", Time: at(300), ID: "c2", PID: "<2>", Node: "n1", Reason: "lease_expired"},
		{Type: "started", Time: at(350), ID: "c2", PID: "<6>", Node: "n3"},
		{Type: "started", Time: at(400), ID: "c4", PID: "<7>", Node: "n1"},
		{Type: "started", Time: at(600), ID: "c3", PID: "<8>", Node: "n3"},
	} {
		if !h.addChild(ev) {
			t.Fatalf("%+v refused", ev)
		}
	}
	if h.addChild(ChildEvent{Type: "started", Time: at(0), ID: "c1", PID: "<1>", Node: "n1"}) {
		t.Error("a repeated event was added twice")
	}
	f := h.inject("kill", "kill -9 n2", 1)
	f.Injected = 500 * time.Millisecond
	runs := h.ChildRuns(func(i int) string { return names[i] })
	if len(runs) != 8 {
		t.Fatalf("%d runs: %+v", len(runs), runs)
	}
	bad := DoubleRuns(runs)
	if len(bad) != 2 || bad[0].ID != "c1" || bad[1].ID != "c4" {
		t.Fatalf("double runs %v, want c1 and c4", bad)
	}
	if d := bad[0].Duration(); d != 100*time.Millisecond {
		t.Errorf("c1 overlap %s, want 100ms", d)
	}
	if d := bad[1].Duration(); d != 100*time.Millisecond || bad[1].A.EndReason != "killed" {
		t.Errorf("c4: %v", bad[1])
	}
	// Child entries stay in time order.
	var es []Entry
	for _, e := range h.Entries() {
		if e.Kind == KindChild {
			es = append(es, e)
		}
	}
	for i := 1; i < len(es); i++ {
		if es[i].At < es[i-1].At {
			t.Fatalf("entry %d at %s before entry %d at %s", i, es[i].At, i-1, es[i-1].At)
		}
	}
}
