package inspect

import (
	"context"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/process"
)

type idle struct{ process.Server }

func TestTraceKeeperRemovesAndBounds(t *testing.T) {
	rt, err := process.NewRuntime(process.Config{Node: "k@127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Shutdown(context.Background()) })
	pid, err := rt.Spawn(idle{})
	if err != nil {
		t.Fatal(err)
	}
	k := newTraceKeeper(rt, 50*time.Millisecond)
	start := func(maxEvents int) *process.Trace {
		t.Helper()
		if err := k.admit(maxEvents); err != nil {
			t.Fatal(err)
		}
		tr, err := rt.Trace(pid, process.TraceOptions{MaxEvents: maxEvents, Duration: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		k.add(tr, maxEvents)
		return tr
	}

	// A stopped trace is removed after its retention, by the timer alone.
	first := start(10)
	running := start(10)
	first.Stop()
	testutil.Eventually(t, 10*time.Second, func() bool {
		_, kept := rt.LookupTrace(first.ID)
		return !kept
	}, "a stopped trace was not removed after its retention")
	if _, kept := rt.LookupTrace(running.ID); !kept {
		t.Fatal("a running trace was removed")
	}
	if l := k.list("k@127.0.0.1"); len(l) != 1 || l[0].ID != TraceID(running.ID, "k@127.0.0.1") || !l[0].Running || l[0].ExpiresAt != nil {
		t.Fatalf("list: %+v", l)
	}

	// The number of traces is bounded: with MaxTraces running, one more
	// is refused; once one stops, the new one replaces it.
	k.mu.Lock()
	k.retention = time.Hour
	k.mu.Unlock()
	all := []*process.Trace{running}
	for len(all) < MaxTraces {
		all = append(all, start(1))
	}
	if err := k.admit(1); err == nil {
		t.Fatalf("trace %d admitted, over the limit of %d", MaxTraces+1, MaxTraces)
	}
	all[3].Stop()
	start(1)
	if _, kept := rt.LookupTrace(all[3].ID); kept {
		t.Fatal("the oldest stopped trace was not removed to make room")
	}
	if n := len(k.list("k")); n != MaxTraces {
		t.Fatalf("%d traces kept, want %d", n, MaxTraces)
	}
	// So are their events together.
	if err := k.admit(MaxTraceEvents); err == nil {
		t.Fatal("a trace of MaxTraceEvents admitted next to others")
	}
	for _, tr := range all {
		tr.Stop()
	}
	k.mu.Lock()
	k.stopped = true // no timer left behind for goleak
	if k.timer != nil {
		k.timer.Stop()
	}
	k.mu.Unlock()
}
