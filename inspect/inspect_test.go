package inspect_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/inspect"
	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/supervisor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

func twoNodes(t *testing.T) (*node.Node, *node.Node) {
	t.Helper()
	return twoNodesWith(t, 0)
}

// twoNodesWith starts two nodes whose request timeout is reqTimeout (0:
// the default).
func twoNodesWith(t *testing.T, reqTimeout time.Duration) (*node.Node, *node.Node) {
	t.Helper()
	cl := fmt.Sprintf("i%d", time.Now().UnixNano())
	start := func(name string, seeds ...string) *node.Node {
		cfg := node.Config{Name: name, Cluster: cl, Secret: []byte("inspect-test-secret-0123"), Profile: cluster.ProfileFast, RequestTimeout: reqTimeout}
		if len(seeds) > 0 {
			cfg.Discovery = cluster.StaticSeeds(seeds...)
		}
		n, err := node.Start(bg, cfg)
		if err != nil {
			t.Fatal(err)
		}
		inspect.Install(n)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(bg, 10*time.Second)
			defer cancel()
			_ = n.Close(ctx)
		})
		return n
	}
	a := start("a@127.0.0.1")
	b := start("b@127.0.0.1", a.Addr())
	testutil.Eventually(t, 20*time.Second, func() bool {
		return a.Cluster().Topology().Alive == 2 && b.Cluster().Topology().Alive == 2
	}, "no cluster")
	return a, b
}

type worker struct{ process.Server }

func (worker) HandleCall(_ *process.Proc, _ process.From, req any) (any, error) {
	return map[string]any{"echo": req}, nil
}

func TestInspectAcrossNodes(t *testing.T) {
	a, b := twoNodes(t)
	sup, err := supervisor.Start(b.Runtime(), supervisor.Spec{Strategy: supervisor.RestForOne, Children: []supervisor.ChildSpec{
		{ID: "w1", Name: "w1", Start: func() process.Behaviour { return worker{} }},
		supervisor.Child("inner", supervisor.Spec{Children: []supervisor.ChildSpec{
			{ID: "w2", Start: func() process.Behaviour { return worker{} }},
		}}),
	}}, process.WithName("top"))
	if err != nil {
		t.Fatal(err)
	}
	sys, _ := b.Runtime().Spawn(worker{}, process.AsSystem())
	for i := 0; i < 5; i++ {
		_, _ = a.Runtime().Spawn(worker{})
	}
	// Cluster-wide list with paging and the true total.
	l, err := inspect.ListProcesses(bg, a, nil, inspect.Filter{Limit: 3, Offset: 1})
	if err != nil {
		t.Fatal(err)
	}
	if l.Total != 5+5 || len(l.Processes) != 3 || len(l.Nodes) != 2 || l.Processes[0].Node != "a@127.0.0.1" {
		t.Fatalf("listing total %d, %d entries, nodes %v: %+v", l.Total, len(l.Processes), l.Nodes, l.Processes)
	}
	l, _ = inspect.ListProcesses(bg, a, []string{"b@127.0.0.1"}, inspect.Filter{NamePattern: "^w"})
	if l.Total != 1 || l.Processes[0].Name != "w1" {
		t.Fatalf("filtered %+v", l)
	}
	if _, err := inspect.ListProcesses(bg, a, nil, inspect.Filter{NamePattern: "("}); err == nil {
		t.Fatal("bad pattern accepted")
	}
	// Info of a remote process.
	w1, _ := b.Runtime().Whereis("w1")
	in, err := inspect.Info(bg, a, w1)
	if err != nil || in.Name != "w1" || in.Parent != sup {
		t.Fatalf("info %+v %v", in, err)
	}
	// Trees with the real strategy.
	trees, failed := inspect.Trees(bg, a, nil, 0)
	if len(failed) != 0 || len(trees) != 2 {
		t.Fatalf("trees %+v failed %v", trees, failed)
	}
	var bt inspect.NodeTrees
	for _, nt := range trees {
		if nt.Node == b.Name() {
			bt = nt
		}
	}
	if len(bt.Trees) != 1 || bt.Trees[0].Strategy != "rest_for_one" || bt.Trees[0].Children[1].Tree == nil || bt.Trees[0].Children[1].Tree.Strategy != "one_for_one" {
		t.Fatalf("b's trees %+v", bt)
	}
	// Call through send.
	res, err := inspect.Send(bg, a, inspect.SendRequest{PID: w1, Mode: "call", Message: "hi"})
	if err != nil || !res.Delivered || fmt.Sprint(res.Reply) != "map[echo:hi]" {
		t.Fatalf("send call %+v %v", res, err)
	}
	// Trace a remote process, read it back, stop it.
	tr, err := inspect.StartTrace(bg, a, inspect.TraceRequest{PID: w1, MaxEvents: 10, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = inspect.Send(bg, a, inspect.SendRequest{PID: w1, Mode: "send", Message: "traced"})
	testutil.Eventually(t, 10*time.Second, func() bool {
		s, err := inspect.GetTrace(bg, a, tr.ID)
		return err == nil && len(s.Events) == 1 && s.Events[0].Message == "traced"
	}, "trace events")
	if s, err := inspect.StopTrace(bg, a, tr.ID); err != nil || s.Running {
		t.Fatalf("stop trace %+v %v", s, err)
	}
	// Protected processes need force.
	var re *node.RequestError
	if _, err := inspect.Kill(bg, a, inspect.KillRequest{PID: sup}); !errors.As(err, &re) || re.Code != inspect.CodeProtected {
		t.Fatalf("kill supervisor without force: %v", err)
	}
	if _, err := inspect.Kill(bg, a, inspect.KillRequest{PID: sys}); !errors.As(err, &re) || re.Code != inspect.CodeProtected {
		t.Fatalf("kill system process without force: %v", err)
	}
	// Restart through the supervisor, then kill and see it restarted.
	rr, err := inspect.Restart(bg, a, w1)
	if err != nil || rr.ChildID != "w1" || rr.NewPID == w1 {
		t.Fatalf("restart %+v %v", rr, err)
	}
	kr, err := inspect.Kill(bg, a, inspect.KillRequest{PID: rr.NewPID})
	if err != nil || !kr.Exited || kr.ExitReason != "killed" {
		t.Fatalf("kill %+v %v", kr, err)
	}
	// Unknown process and unknown node.
	missing := w1
	missing.ID = 99999
	if _, err := inspect.Info(bg, a, missing); !errors.As(err, &re) || re.Code != inspect.CodeNoProc {
		t.Fatalf("info of missing: %v", err)
	}
	if _, err := inspect.Info(bg, a, process.PID{Node: "nobody@127.0.0.1", Incarnation: 1, ID: 1}); !errors.As(err, &re) || re.Code != inspect.CodeNotFound {
		t.Fatalf("info on unknown node: %v", err)
	}
}

// slowWorker answers a call after a delay longer than the nodes' request
// timeout, and traps exits so that a kill with reason shutdown waits.
type slowWorker struct {
	process.Server
	delay time.Duration
}

func (w slowWorker) HandleCall(_ *process.Proc, _ process.From, req any) (any, error) {
	time.Sleep(w.delay) // the slow handler under test, not a wait for a condition
	return "late but here", nil
}

// A remote call and a remote kill are bounded by the timeouts they carry,
// not by the node's request timeout.
func TestRemoteOperationsHonourTheirOwnTimeouts(t *testing.T) {
	const reqTimeout = 200 * time.Millisecond
	a, b := twoNodesWith(t, reqTimeout)
	pid, err := b.Runtime().Spawn(slowWorker{delay: 3 * reqTimeout}, process.WithTrapExits())
	if err != nil {
		t.Fatal(err)
	}
	res, err := inspect.Send(bg, a, inspect.SendRequest{PID: pid, Mode: "call", Message: "ping", Timeout: 10 * time.Second})
	if err != nil || res.Reply != "late but here" {
		t.Fatalf("a remote call with a 10 s timeout to a process that answers after %s: %+v, %v", 3*reqTimeout, res, err)
	}
	// Its own shorter timeout still applies.
	if _, err := inspect.Send(bg, a, inspect.SendRequest{PID: pid, Mode: "call", Message: "ping", Timeout: reqTimeout / 2}); err == nil {
		t.Fatal("a call with a timeout shorter than the reply succeeded")
	}
	// A kill that the process traps waits its whole wait, then says so.
	wait := 3 * reqTimeout
	kr, err := inspect.Kill(bg, a, inspect.KillRequest{PID: pid, Reason: "shutdown", Wait: wait})
	if err != nil {
		t.Fatalf("a remote kill waiting %s, over the request timeout of %s: %v", wait, reqTimeout, err)
	}
	if kr.Exited || kr.WaitedMS < float64(wait.Milliseconds()) {
		t.Fatalf("the trapped kill: %+v", kr)
	}
	kr, err = inspect.Kill(bg, a, inspect.KillRequest{PID: pid, Reason: "kill", Wait: wait})
	if err != nil || !kr.Exited {
		t.Fatalf("kill: %+v %v", kr, err)
	}
}

// slowStop takes its time to stop, as a child that flushes its work.
type slowStop struct {
	process.Server
	stop time.Duration
}

func (s slowStop) Terminate(*process.Proc, process.Reason) {
	time.Sleep(s.stop) // the slow stop under test, not a wait for a condition
}

// A remote restart waits for the old child's shutdown longer than the
// nodes' request timeout, within the time its caller gives it.
func TestRemoteRestartOutlastsTheRequestTimeout(t *testing.T) {
	const reqTimeout = 200 * time.Millisecond
	a, b := twoNodesWith(t, reqTimeout)
	sup, err := supervisor.Start(b.Runtime(), supervisor.Spec{Children: []supervisor.ChildSpec{
		{ID: "slow", Start: func() process.Behaviour { return slowStop{stop: 3 * reqTimeout} }, Shutdown: 10 * reqTimeout},
	}})
	if err != nil {
		t.Fatal(err)
	}
	children, err := supervisor.WhichChildren(bg, b.Runtime(), sup)
	if err != nil || len(children) != 1 {
		t.Fatalf("%v %v", children, err)
	}
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	res, err := inspect.Restart(ctx, a, children[0].PID)
	if err != nil || res.NewPID.IsZero() || res.NewPID == children[0].PID {
		t.Fatalf("a remote restart whose child takes %s to stop: %+v, %v", 3*reqTimeout, res, err)
	}
}
