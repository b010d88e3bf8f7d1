package supervisor_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/supervisor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 5 * time.Second

var bg = context.Background()

func newRT(t *testing.T) *process.Runtime {
	t.Helper()
	rt, err := process.NewRuntime(process.Config{Node: "sup@localhost"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(bg, 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return rt
}

// journal records lifecycle events in order.
type journal struct {
	mu sync.Mutex
	ev []string
}

func (j *journal) add(s string) { j.mu.Lock(); j.ev = append(j.ev, s); j.mu.Unlock() }
func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.ev...)
}

type worker struct {
	process.Server
	id       string
	j        *journal
	trap     bool
	stubborn chan struct{} // if set, Terminate ignores shutdown until it is closed
}

func (w *worker) Init(p *process.Proc) error {
	if w.trap {
		p.TrapExits(true)
	}
	w.j.add("start " + w.id)
	return nil
}

func (w *worker) HandleInfo(p *process.Proc, msg any) error {
	switch msg {
	case "crash":
		return errors.New("crash")
	case "normal":
		return process.Normal
	}
	return nil
}

func (w *worker) Terminate(p *process.Proc, r process.Reason) {
	if w.stubborn != nil {
		<-w.stubborn
	}
	w.j.add("stop " + w.id)
}

func spec(id string, j *journal, mods ...func(*supervisor.ChildSpec)) supervisor.ChildSpec {
	c := supervisor.ChildSpec{ID: id, Start: func() process.Behaviour { return &worker{id: id, j: j} }}
	for _, m := range mods {
		m(&c)
	}
	return c
}

func children(t *testing.T, rt *process.Runtime, sup process.PID) map[string]process.PID {
	t.Helper()
	list, err := supervisor.WhichChildren(bg, rt, sup)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]process.PID{}
	for _, c := range list {
		out[c.ID] = c.PID
	}
	return out
}

func waitRestarted(t *testing.T, rt *process.Runtime, sup process.PID, id string, old process.PID) process.PID {
	t.Helper()
	var now process.PID
	testutil.Eventually(t, wait, func() bool {
		now = children(t, rt, sup)[id]
		return !now.IsZero() && now != old && rt.Alive(now)
	}, "child %s not restarted", id)
	return now
}

func TestOneForOne(t *testing.T) {
	rt := newRT(t)
	j := &journal{}
	sup, err := supervisor.Start(rt, supervisor.Spec{Children: []supervisor.ChildSpec{spec("a", j), spec("b", j), spec("c", j)}})
	if err != nil {
		t.Fatal(err)
	}
	before := children(t, rt, sup)
	rt.Send(before["b"], "crash")
	nb := waitRestarted(t, rt, sup, "b", before["b"])
	after := children(t, rt, sup)
	if after["a"] != before["a"] || after["c"] != before["c"] {
		t.Fatal("one_for_one restarted siblings")
	}
	in, _ := rt.Info(nb)
	if in.Restarts != 1 || in.Parent != sup {
		t.Fatalf("restarted child info %+v", in)
	}
	d, _ := supervisor.Describe(bg, rt, sup)
	if d.Strategy != supervisor.OneForOne || d.TotalRestarts != 1 || d.Children[1].Restarts != 1 {
		t.Fatalf("describe %+v", d)
	}
	if in, _ := rt.Info(sup); !in.Supervisor || in.Behaviour != "supervisor" {
		t.Fatalf("supervisor info %+v", in)
	}
}

func TestOneForAll(t *testing.T) {
	rt := newRT(t)
	j := &journal{}
	sup, _ := supervisor.Start(rt, supervisor.Spec{Strategy: supervisor.OneForAll, Children: []supervisor.ChildSpec{spec("a", j), spec("b", j), spec("c", j)}})
	before := children(t, rt, sup)
	rt.Send(before["b"], "crash")
	for _, id := range []string{"a", "b", "c"} {
		waitRestarted(t, rt, sup, id, before[id])
	}
	// Order: b crashed (no terminate for a crash? it returns an error, so
	// Terminate runs), then the others stop in reverse order, then all
	// start in order.
	ev := j.list()[3:]
	want := []string{"stop b", "stop c", "stop a", "start a", "start b", "start c"}
	if len(ev) != len(want) {
		t.Fatalf("events %v, want %v", ev, want)
	}
	for i := range want {
		if ev[i] != want[i] {
			t.Fatalf("events %v, want %v", ev, want)
		}
	}
}

func TestRestForOne(t *testing.T) {
	rt := newRT(t)
	j := &journal{}
	sup, _ := supervisor.Start(rt, supervisor.Spec{Strategy: supervisor.RestForOne, Children: []supervisor.ChildSpec{spec("a", j), spec("b", j), spec("c", j)}})
	before := children(t, rt, sup)
	rt.Send(before["b"], "crash")
	waitRestarted(t, rt, sup, "b", before["b"])
	waitRestarted(t, rt, sup, "c", before["c"])
	if children(t, rt, sup)["a"] != before["a"] {
		t.Fatal("rest_for_one restarted an earlier child")
	}
}

func TestRestartTypes(t *testing.T) {
	rt := newRT(t)
	j := &journal{}
	sup, _ := supervisor.Start(rt, supervisor.Spec{Children: []supervisor.ChildSpec{
		spec("perm", j),
		spec("trans", j, func(c *supervisor.ChildSpec) { c.Restart = supervisor.Transient }),
		spec("trans2", j, func(c *supervisor.ChildSpec) { c.Restart = supervisor.Transient }),
		spec("temp", j, func(c *supervisor.ChildSpec) { c.Restart = supervisor.Temporary }),
	}})
	before := children(t, rt, sup)
	rt.Send(before["perm"], "normal")
	waitRestarted(t, rt, sup, "perm", before["perm"]) // permanent: even after a normal exit
	rt.Send(before["trans"], "normal")
	rt.Send(before["trans2"], "crash")
	waitRestarted(t, rt, sup, "trans2", before["trans2"]) // transient: after an abnormal exit
	testutil.Eventually(t, wait, func() bool { return children(t, rt, sup)["trans"].IsZero() }, "transient child restarted after normal exit")
	rt.Send(before["temp"], "crash")
	testutil.Eventually(t, wait, func() bool { _, ok := children(t, rt, sup)["temp"]; return !ok }, "temporary child not forgotten")
	n, _ := supervisor.CountChildren(bg, rt, sup)
	if n.Specs != 3 || n.Active != 2 || n.Workers != 3 {
		t.Fatalf("counts %+v", n)
	}
}

func TestIntensityLimit(t *testing.T) {
	rt := newRT(t)
	j := &journal{}
	sup, _ := supervisor.Start(rt, supervisor.Spec{
		Intensity: supervisor.Intensity{MaxRestarts: 2, Period: time.Hour},
		Children:  []supervisor.ChildSpec{spec("a", j)},
	})
	exited := make(chan process.Reason, 1)
	rt.Watch(sup, func(d process.DownMsg) { exited <- d.Reason })
	pid := children(t, rt, sup)["a"]
	for i := 0; i < 2; i++ {
		rt.Send(pid, "crash")
		pid = waitRestarted(t, rt, sup, "a", pid)
	}
	rt.Send(pid, "crash") // the third restart within the period is one too many
	r := testutil.Recv(t, exited, wait, "supervisor exit")
	var ie *supervisor.IntensityError
	if !errors.As(r, &ie) || !errors.Is(r, process.Shutdown) || ie.Child != "a" {
		t.Fatalf("supervisor exit reason %v", r)
	}
	testutil.Eventually(t, wait, func() bool { return rt.Count() == 0 }, "children left behind")
}

func TestShutdownOrderAndTimeoutThenKill(t *testing.T) {
	rt := newRT(t)
	j := &journal{}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stubborn := func(c *supervisor.ChildSpec) {
		c.Shutdown = 50 * time.Millisecond
		c.Start = func() process.Behaviour { return &worker{id: "stubborn", j: j, trap: true, stubborn: release} }
	}
	sup, _ := supervisor.Start(rt, supervisor.Spec{Children: []supervisor.ChildSpec{
		spec("a", j), spec("stubborn", j, stubborn), spec("c", j),
		supervisor.Child("nested", supervisor.Spec{Children: []supervisor.ChildSpec{spec("n1", j), spec("n2", j)}}),
	}})
	stubPID := children(t, rt, sup)["stubborn"]
	stubExit := make(chan process.Reason, 1)
	rt.Watch(stubPID, func(d process.DownMsg) { stubExit <- d.Reason })
	done := make(chan process.Reason, 1)
	rt.Watch(sup, func(d process.DownMsg) { done <- d.Reason })
	rt.Exit(sup, process.Shutdown)
	testutil.Recv(t, done, wait, "supervisor exit")
	if r := testutil.Recv(t, stubExit, wait, "stubborn exit"); !errors.Is(r, process.Killed) {
		t.Fatalf("stubborn child exit %v, want killed after its timeout", r)
	}
	ev := j.list()
	want := []string{"start a", "start stubborn", "start c", "start n1", "start n2", "stop n2", "stop n1", "stop c", "stop a"}
	var got []string
	for _, e := range ev {
		if e != "stop stubborn" { // the killed child's Terminate finishes late, if at all
			got = append(got, e)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
}

func TestDynamicSupervisor(t *testing.T) {
	rt := newRT(t)
	j := &journal{}
	sup, err := supervisor.Start(rt, supervisor.Spec{Strategy: supervisor.Dynamic, MaxChildren: 2})
	if err != nil {
		t.Fatal(err)
	}
	c1, err := supervisor.StartChild(bg, rt, sup, supervisor.ChildSpec{Start: func() process.Behaviour { return &worker{id: "d1", j: j} }})
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := supervisor.StartChild(bg, rt, sup, supervisor.ChildSpec{StartFunc: func(p *process.Proc) error {
		_, err := p.Receive(context.Background())
		return err
	}})
	if _, err := supervisor.StartChild(bg, rt, sup, spec("x", j)); !errors.Is(err, supervisor.ErrMaxChildren) {
		t.Fatalf("third child: %v", err)
	}
	if err := supervisor.TerminateChildPID(bg, rt, sup, c2); err != nil {
		t.Fatal(err)
	}
	if rt.Alive(c2) {
		t.Fatal("terminated child alive")
	}
	rt.Send(c1, "crash")
	testutil.Eventually(t, wait, func() bool {
		l, _ := supervisor.WhichChildren(bg, rt, sup)
		return len(l) == 1 && l[0].PID != c1 && rt.Alive(l[0].PID)
	}, "dynamic child not restarted")
	if _, err := supervisor.StartChild(bg, rt, sup, supervisor.ChildSpec{}); !errors.Is(err, supervisor.ErrBadSpec) {
		t.Fatalf("empty spec: %v", err)
	}
}

func TestBadSpecs(t *testing.T) {
	rt := newRT(t)
	j := &journal{}
	bad := []supervisor.Spec{
		{Strategy: "one_for_none"},
		{Children: []supervisor.ChildSpec{{ID: "x"}}},
		{Children: []supervisor.ChildSpec{spec("a", j), spec("a", j)}},
		{Children: []supervisor.ChildSpec{spec("a", j, func(c *supervisor.ChildSpec) { c.Restart = "sometimes" })}},
		{Strategy: supervisor.Dynamic, Children: []supervisor.ChildSpec{spec("a", j)}},
	}
	for i, s := range bad {
		if _, err := supervisor.Start(rt, s); !errors.Is(err, supervisor.ErrBadSpec) {
			t.Errorf("spec %d: %v", i, err)
		}
	}
	// A child whose Init fails fails the supervisor's start, and the
	// children already started are stopped.
	failing := supervisor.ChildSpec{ID: "f", Start: func() process.Behaviour { return &failInit{} }}
	if _, err := supervisor.Start(rt, supervisor.Spec{Children: []supervisor.ChildSpec{spec("a", j), failing}}); err == nil {
		t.Fatal("start with a failing child succeeded")
	}
	testutil.Eventually(t, wait, func() bool { return rt.Count() == 0 }, "processes left after failed start")
	if _, err := supervisor.WhichChildren(bg, rt, process.PID{Node: rt.Node(), Incarnation: rt.Incarnation(), ID: 12345}); !errors.Is(err, process.NoProc) {
		t.Fatalf("which children of unknown: %v", err)
	}
}

type failInit struct{ process.Server }

func (failInit) Init(*process.Proc) error { return errors.New("cannot start") }
