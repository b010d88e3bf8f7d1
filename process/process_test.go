package process_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/process"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 5 * time.Second

func newRT(t testing.TB) *process.Runtime {
	t.Helper()
	rt, err := process.NewRuntime(process.Config{Node: "test@localhost"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		limit := 10 * time.Second
		if _, ok := t.(*testing.B); ok {
			limit = 2 * time.Minute // benchmarks leave millions of processes
		}
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return rt
}

// sink is a function process that forwards every message to a channel.
func sink(t testing.TB, rt *process.Runtime, opts ...process.SpawnOption) (process.PID, chan any) {
	t.Helper()
	ch := make(chan any, 1024)
	pid, err := rt.SpawnFunc(func(p *process.Proc) error {
		for {
			m, err := p.Receive(context.Background())
			if err != nil {
				return err
			}
			ch <- m
		}
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return pid, ch
}

// echo is a behaviour that replies to calls and reports infos.
type echo struct {
	process.Server
	infos chan any
	term  chan process.Reason
}

func (e *echo) HandleCall(p *process.Proc, from process.From, req any) (any, error) {
	switch r := req.(type) {
	case string:
		switch {
		case r == "crash":
			panic("boom")
		case r == "stop":
			return nil, errors.New("asked to stop")
		case strings.HasPrefix(r, "sleep"):
			d, _ := time.ParseDuration(strings.TrimPrefix(r, "sleep "))
			select {
			case <-time.After(d):
			case <-p.Context().Done():
			}
			return "slept", nil
		case r == "apperr":
			return errors.New("application error"), nil
		}
	}
	return req, nil
}

func (e *echo) HandleInfo(p *process.Proc, msg any) error {
	if e.infos != nil {
		e.infos <- msg
	}
	if msg == "die" {
		return errors.New("died on request")
	}
	return nil
}

func (e *echo) Terminate(p *process.Proc, reason process.Reason) {
	if e.term != nil {
		e.term <- reason
	}
}

// exitOf watches pid from now on and yields its exit reason.
func exitOf(rt *process.Runtime, pid process.PID) <-chan process.Reason {
	ch := make(chan process.Reason, 1)
	rt.Watch(pid, func(d process.DownMsg) { ch <- d.Reason })
	return ch
}

func TestPIDTextRoundTrip(t *testing.T) {
	pids := []process.PID{
		{Node: "a@localhost", Incarnation: 1, ID: 1},
		{Node: "api@10.0.0.5", Incarnation: process.NewIncarnation(), ID: 1<<63 + 7},
		{Node: "x@[::1]", Incarnation: 0, ID: 9},
	}
	for _, p := range pids {
		s := p.String()
		if strings.ContainsAny(s, "/?#% <>") {
			t.Errorf("%q is not URL-path safe", s)
		}
		q, err := process.ParsePID(s)
		if err != nil || q != p {
			t.Errorf("round trip %v -> %q -> %v, %v", p, s, q, err)
		}
		b, _ := p.MarshalText()
		var r process.PID
		if err := r.UnmarshalText(b); err != nil || r != p {
			t.Errorf("text marshal round trip failed: %v", err)
		}
	}
	for _, bad := range []string{"", "1", "1.2", "x.2@n", "1.!@n", "0.1@n", "1.1@", "1.1@n/x", "1.1@n x", strings.Repeat("1", 600)} {
		if _, err := process.ParsePID(bad); !errors.Is(err, process.ErrBadPID) {
			t.Errorf("ParsePID(%q) = %v, want ErrBadPID", bad, err)
		}
	}
}

func FuzzParsePID(f *testing.F) {
	f.Add("42.lx3k2f9a1@api@127.0.0.1")
	f.Add("1.0@a")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := process.ParsePID(s)
		if err != nil {
			return
		}
		q, err := process.ParsePID(p.String())
		if err != nil || q != p {
			t.Fatalf("%q parsed to %v which does not round trip: %v", s, p, err)
		}
	})
}

func TestBadInput(t *testing.T) {
	rt := newRT(t)
	if _, err := rt.Spawn(nil); !errors.Is(err, process.ErrNilBehaviour) {
		t.Errorf("Spawn(nil) = %v", err)
	}
	var nilEcho *echo
	if _, err := rt.Spawn(nilEcho); !errors.Is(err, process.ErrNilBehaviour) {
		t.Errorf("Spawn(typed nil) = %v", err)
	}
	if _, err := rt.SpawnFunc(nil); !errors.Is(err, process.ErrNilBehaviour) {
		t.Errorf("SpawnFunc(nil) = %v", err)
	}
	unknown := process.PID{Node: rt.Node(), Incarnation: rt.Incarnation(), ID: 999999}
	rt.Send(unknown, "dropped") // not an error, as in Erlang
	if _, err := rt.Call(context.Background(), unknown, "x"); !errors.Is(err, process.NoProc) {
		t.Errorf("Call(unknown) = %v, want noproc", err)
	}
	if _, err := rt.Info(unknown); !errors.Is(err, process.NoProc) {
		t.Errorf("Info(unknown) = %v", err)
	}
	if err := rt.Register("", unknown); err == nil {
		t.Error("Register to unknown pid succeeded")
	}
	if _, err := process.NewRuntime(process.Config{Node: "bad node/name"}); err == nil {
		t.Error("bad node name accepted")
	}
	if _, err := rt.Trace(unknown, process.TraceOptions{}); !errors.Is(err, process.NoProc) {
		t.Errorf("Trace(unknown) = %v", err)
	}
}

func TestCallReplyAndAppError(t *testing.T) {
	rt := newRT(t)
	pid, err := rt.Spawn(&echo{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := rt.Call(context.Background(), pid, "hello")
	if err != nil || got != "hello" {
		t.Fatalf("Call = %v, %v", got, err)
	}
	if _, err := rt.Call(context.Background(), pid, "apperr"); err == nil || err.Error() != "application error" {
		t.Fatalf("app error = %v", err)
	}
	if !rt.Alive(pid) {
		t.Fatal("an application error reply stopped the process")
	}
}

func TestFIFOPerSenderUnderConcurrency(t *testing.T) {
	rt := newRT(t)
	const senders, each = 8, 2000
	type msg struct{ from, seq int }
	pid, ch := sink(t, rt)
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each sender is a process of its own.
			done := make(chan struct{})
			_, err := rt.SpawnFunc(func(p *process.Proc) error {
				for i := 0; i < each; i++ {
					p.Send(pid, msg{s, i})
				}
				close(done)
				return nil
			})
			if err != nil {
				t.Error(err)
				return
			}
			<-done
		}()
	}
	next := make([]int, senders)
	for n := 0; n < senders*each; n++ {
		m := testutil.Recv(t, ch, wait, "message").(msg)
		if m.seq != next[m.from] {
			t.Fatalf("sender %d: got seq %d, want %d", m.from, m.seq, next[m.from])
		}
		next[m.from]++
	}
	wg.Wait()
}

func TestPanicIsContained(t *testing.T) {
	rt := newRT(t)
	term := make(chan process.Reason, 1)
	pid, _ := rt.Spawn(&echo{term: term})
	_, err := rt.Call(context.Background(), pid, "crash")
	var pe *process.PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
		t.Fatalf("call to panicking handler = %v, want PanicError with stack", err)
	}
	r := testutil.Recv(t, term, wait, "terminate")
	if !errors.As(r, &pe) {
		t.Fatalf("terminate reason = %v", r)
	}
	testutil.Eventually(t, wait, func() bool { return !rt.Alive(pid) }, "process still alive")
	// The runtime lives on.
	pid2, _ := rt.Spawn(&echo{})
	if v, err := rt.Call(context.Background(), pid2, 1); err != nil || v != 1 {
		t.Fatalf("runtime broken after panic: %v %v", v, err)
	}
	if _, err := rt.Spawn(&panicInit{}); err == nil || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("panicking Init: %v", err)
	}
	// A panicking function process.
	pid3, _ := rt.SpawnFunc(func(p *process.Proc) error {
		_, _ = p.Receive(context.Background())
		panic("fn boom")
	})
	exited := exitOf(rt, pid3)
	rt.Send(pid3, "go")
	reason := testutil.Recv(t, exited, wait, "exit")
	if !errors.As(reason, &pe) || pe.Value != "fn boom" {
		t.Fatalf("function panic reason = %v", reason)
	}
}

type panicInit struct{ process.Server }

func (panicInit) Init(*process.Proc) error { panic("init boom") }

func TestCallDeadAndDyingAndTimeout(t *testing.T) {
	rt := newRT(t)
	pid, _ := rt.Spawn(&echo{})
	rt.Exit(pid, process.Kill)
	if _, err := rt.Call(context.Background(), pid, "x"); !errors.Is(err, process.NoProc) {
		t.Fatalf("call to dead = %v", err)
	}
	// Dies mid-call: the caller gets the exit reason.
	pid, _ = rt.Spawn(&echo{})
	if _, err := rt.Call(context.Background(), pid, "stop"); err == nil || !strings.Contains(err.Error(), "asked to stop") {
		t.Fatalf("call to a process that stops = %v", err)
	}
	// Killed while a call is being handled.
	pid, _ = rt.Spawn(&echo{})
	errc := make(chan error, 1)
	go func() { _, err := rt.Call(context.Background(), pid, "sleep 1h"); errc <- err }()
	testutil.Eventually(t, wait, func() bool {
		in, err := rt.Info(pid)
		return err == nil && in.CurrentCall != nil
	}, "call never started")
	rt.Exit(pid, process.Kill)
	if err := testutil.Recv(t, errc, wait, "call result"); !errors.Is(err, process.Killed) {
		t.Fatalf("call to a killed process = %v, want killed", err)
	}
	// Timeout, and the process lives on.
	pid, _ = rt.Spawn(&echo{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := rt.Call(ctx, pid, "sleep 200ms"); !errors.Is(err, process.Timeout) {
		t.Fatalf("call timeout = %v", err)
	}
	if v, err := rt.CallTimeout(pid, "after", wait); err != nil || v != "after" {
		t.Fatalf("call after timeout = %v %v (a late reply must not leak into the next call)", v, err)
	}
	// Context cancelled.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := rt.Call(ctx2, pid, "sleep 100ms"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call = %v", err)
	}
}

func TestMonitorExactlyOneDown(t *testing.T) {
	rt := newRT(t)
	watcherPID, ch := sink(t, rt)
	target, _ := rt.Spawn(&echo{})
	_ = watcherPID
	// Monitor from inside a process: use a helper process that monitors twice.
	refs := make(chan process.Ref, 2)
	_, _ = rt.SpawnFunc(func(p *process.Proc) error {
		r1 := p.Monitor(target)
		r2 := p.Monitor(target)
		refs <- r1
		refs <- r2
		for i := 0; i < 2; i++ {
			m, err := p.Receive(context.Background())
			if err != nil {
				return err
			}
			p.Send(watcherPID, m)
		}
		return nil
	})
	r1 := testutil.Recv(t, refs, wait, "ref")
	r2 := testutil.Recv(t, refs, wait, "ref")
	rt.Send(target, "die")
	seen := map[process.Ref]int{}
	for i := 0; i < 2; i++ {
		d := testutil.Recv(t, ch, wait, "DOWN").(process.DownMsg)
		if d.PID != target || d.Reason == nil || d.Reason.Error() != "died on request" {
			t.Fatalf("bad DOWN %+v", d)
		}
		seen[d.Ref]++
	}
	if seen[r1] != 1 || seen[r2] != 1 {
		t.Fatalf("DOWN counts %v", seen)
	}
	// Monitoring a dead process: one DOWN with noproc.
	gone := make(chan process.DownMsg, 4)
	_, _ = rt.SpawnFunc(func(p *process.Proc) error {
		p.Monitor(target)
		m, err := p.Receive(context.Background())
		if err != nil {
			return err
		}
		gone <- m.(process.DownMsg)
		return nil
	})
	if d := testutil.Recv(t, gone, wait, "DOWN"); !errors.Is(d.Reason, process.NoProc) {
		t.Fatalf("DOWN for dead target = %v", d.Reason)
	}
	testutil.Never(t, ch, 20*time.Millisecond, "second DOWN")
}

func TestDemonitor(t *testing.T) {
	rt := newRT(t)
	target, _ := rt.Spawn(&echo{})
	got := make(chan any, 4)
	ready := make(chan struct{})
	_, _ = rt.SpawnFunc(func(p *process.Proc) error {
		ref := p.Monitor(target)
		p.Demonitor(ref)
		close(ready)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		m, err := p.Receive(ctx)
		if err == nil {
			got <- m
		}
		return nil
	})
	<-ready
	rt.Exit(target, process.Kill)
	testutil.Never(t, got, 250*time.Millisecond, "DOWN after demonitor")
}

func TestLinksPropagateAndTrapExits(t *testing.T) {
	rt := newRT(t)
	// a links b; b dies abnormally; a (not trapping) dies with the same reason.
	var b process.PID
	bReady := make(chan process.PID, 1)
	a, _ := rt.SpawnFunc(func(p *process.Proc) error {
		pid, err := p.SpawnLink(&echo{})
		if err != nil {
			return err
		}
		bReady <- pid
		_, err = p.Receive(context.Background())
		return err
	})
	b = testutil.Recv(t, bReady, wait, "child")
	aExit := exitOf(rt, a)
	rt.Send(b, "die")
	r := testutil.Recv(t, aExit, wait, "exit")
	if r == nil || r.Error() != "died on request" {
		t.Fatalf("linked process exit = %v", r)
	}
	// Trapping: the exit becomes a message; the process lives.
	trapped := make(chan any, 2)
	cReady := make(chan process.PID, 1)
	trapper, _ := rt.SpawnFunc(func(p *process.Proc) error {
		p.TrapExits(true)
		c, err := p.SpawnLink(&echo{})
		if err != nil {
			return err
		}
		cReady <- c
		m, err := p.Receive(context.Background())
		if err != nil {
			return err
		}
		trapped <- m
		_, err = p.Receive(context.Background())
		return err
	}, process.WithName("trapper"))
	c := testutil.Recv(t, cReady, wait, "child")
	rt.Send(c, "die")
	m := testutil.Recv(t, trapped, wait, "exit message").(process.ExitMsg)
	if m.From != c || m.Reason.Error() != "died on request" {
		t.Fatalf("trapped %+v", m)
	}
	if !rt.Alive(trapper) {
		t.Fatal("trapping process died")
	}
	// Kill is untrappable.
	exited := exitOf(rt, trapper)
	rt.Exit(trapper, process.Kill)
	r = testutil.Recv(t, exited, wait, "exit")
	if !errors.Is(r, process.Killed) {
		t.Fatalf("kill on a trapping process: %v", r)
	}
	// Its name is released.
	if _, ok := rt.Whereis("trapper"); ok {
		t.Fatal("name survived its process")
	}
	// Normal exit of a linked process does not kill a non-trapping partner.
	dReady := make(chan process.PID, 1)
	eGot := make(chan any, 1)
	e, _ := rt.SpawnFunc(func(p *process.Proc) error {
		d, _ := p.SpawnFuncLink(func(*process.Proc) error { return nil })
		dReady <- d
		m, err := p.Receive(context.Background())
		if err != nil {
			return err
		}
		eGot <- m
		_, err = p.Receive(context.Background()) // stay up until the test ends
		return err
	})
	d := testutil.Recv(t, dReady, wait, "child")
	_, _ = rt.WaitExit(context.Background(), d)
	rt.Send(e, "still here?")
	// The first thing e receives is the test's message, not an exit: the
	// normal exit of its linked child did not kill it.
	if got := testutil.Recv(t, eGot, wait, "partner's message"); got != "still here?" {
		t.Fatalf("partner received %v, want the test's message", got)
	}
	if !rt.Alive(e) {
		t.Fatal("partner did not survive its linked child's normal exit")
	}
	// Killed propagates through links as the trappable reason killed.
	fReady := make(chan process.PID, 1)
	g, _ := rt.SpawnFunc(func(p *process.Proc) error {
		f, _ := p.SpawnLink(&echo{})
		fReady <- f
		_, err := p.Receive(context.Background())
		return err
	})
	gExit := exitOf(rt, g)
	rt.Exit(testutil.Recv(t, fReady, wait, "child"), process.Kill)
	if r := testutil.Recv(t, gExit, wait, "exit"); !errors.Is(r, process.Killed) {
		t.Fatalf("link partner of a killed process exited with %v, want killed", r)
	}
}

func TestExitSignals(t *testing.T) {
	rt := newRT(t)
	term := make(chan process.Reason, 1)
	pid, _ := rt.Spawn(&echo{term: term})
	rt.Exit(pid, process.Normal) // ignored by a non-trapping process
	if v, err := rt.Call(context.Background(), pid, "ok"); err != nil || v != "ok" {
		t.Fatalf("normal exit signal killed the process: %v", err)
	}
	rt.Exit(pid, process.Shutdown)
	if r := testutil.Recv(t, term, wait, "terminate"); !errors.Is(r, process.Shutdown) {
		t.Fatalf("terminate reason %v", r)
	}
	// Link to a process that does not exist: exit signal noproc.
	res := make(chan any, 1)
	_, _ = rt.SpawnFunc(func(p *process.Proc) error {
		p.TrapExits(true)
		p.Link(pid)
		m, err := p.Receive(context.Background())
		res <- m
		return err
	})
	if m := testutil.Recv(t, res, wait, "exit").(process.ExitMsg); !errors.Is(m.Reason, process.NoProc) {
		t.Fatalf("link to dead: %+v", m)
	}
}

func TestNames(t *testing.T) {
	rt := newRT(t)
	pid, err := rt.Spawn(&echo{}, process.WithName("svc"))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := rt.Whereis("svc"); !ok || got != pid {
		t.Fatalf("whereis = %v %v", got, ok)
	}
	if _, err := rt.Spawn(&echo{}, process.WithName("svc")); !errors.Is(err, process.ErrNameTaken) {
		t.Fatalf("duplicate name: %v", err)
	}
	if n := rt.Count(); n != 1 {
		t.Fatalf("failed spawn left a process behind: %d", n)
	}
	if !rt.Unregister("svc") || rt.Unregister("svc") {
		t.Fatal("unregister")
	}
	if err := rt.Register("svc2", pid); err != nil {
		t.Fatal(err)
	}
	if err := rt.Register("", pid); !errors.Is(err, process.ErrBadName) {
		t.Fatalf("empty name: %v", err)
	}
	rt.Exit(pid, process.Kill)
	testutil.Eventually(t, wait, func() bool { _, ok := rt.Whereis("svc2"); return !ok }, "name not released")
	if got := rt.Names(); len(got) != 0 {
		t.Fatalf("names left: %v", got)
	}
}

func TestSendAfterAndCancel(t *testing.T) {
	rt := newRT(t)
	pid, ch := sink(t, rt)
	rt.SendAfter(pid, "later", time.Millisecond)
	tm := rt.SendAfter(pid, "never", time.Hour)
	if testutil.Recv(t, ch, wait, "timer message") != "later" {
		t.Fatal("wrong timer message")
	}
	if !tm.Cancel() {
		t.Fatal("cancel of pending timer")
	}
}

func TestIntrospectionAndTrace(t *testing.T) {
	rt := newRT(t)
	infos := make(chan any, 16)
	pid, _ := rt.Spawn(&echo{infos: infos}, process.WithName("intro"), process.AsSystem())
	tr, err := rt.Trace(pid, process.TraceOptions{MaxEvents: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		rt.Send(pid, fmt.Sprintf("m%d", i))
		testutil.Recv(t, infos, wait, "info")
	}
	testutil.Eventually(t, wait, func() bool { return !tr.Snapshot().Running }, "trace did not stop at max events")
	snap := tr.Snapshot()
	if len(snap.Events) != 3 || snap.Events[0].Message != "m0" || snap.Events[0].Dir != "in" || snap.StopReason != "max events reached" {
		t.Fatalf("trace snapshot %+v", snap)
	}
	in, err := rt.Info(pid)
	if err != nil {
		t.Fatal(err)
	}
	if in.Name != "intro" || !in.System || in.MessagesIn != 5 || in.Behaviour != "process_test.echo" || in.StartedAt.IsZero() {
		t.Fatalf("info %+v", in)
	}
	if !rt.IsSystem(pid) {
		t.Fatal("system flag lost")
	}
	if all := rt.Processes(); len(all) != 1 || all[0].PID != pid {
		t.Fatalf("processes %+v", all)
	}
	// Outbound messages of a traced process, with a filter and a removal.
	tr2, _ := rt.Trace(pid, process.TraceOptions{Filter: "int"})
	rt.Send(pid, 42)
	rt.Send(pid, "skip me")
	testutil.Recv(t, infos, wait, "info")
	testutil.Recv(t, infos, wait, "info")
	if !rt.RemoveTrace(tr2.ID) {
		t.Fatal("remove trace")
	}
	s2 := tr2.Snapshot()
	if len(s2.Events) != 1 || s2.Events[0].Type != "int" || s2.Filtered != 1 {
		t.Fatalf("filtered trace %+v", s2)
	}
	if _, ok := rt.LookupTrace(tr2.ID); ok {
		t.Fatal("removed trace still found")
	}
}

func TestStaleIncarnationDropped(t *testing.T) {
	rt := newRT(t)
	pid, ch := sink(t, rt)
	stale := pid
	stale.Incarnation--
	rt.Send(stale, "stale")
	if _, err := rt.Call(context.Background(), stale, "x"); !errors.Is(err, process.NoProc) {
		t.Fatalf("call to stale incarnation: %v", err)
	}
	rt.Send(pid, "fresh")
	if m := testutil.Recv(t, ch, wait, "message"); m != "fresh" {
		t.Fatalf("got %v: a message to an old incarnation was delivered", m)
	}
}

func TestDeferredReply(t *testing.T) {
	rt := newRT(t)
	pid, _ := rt.Spawn(&deferring{})
	v, err := rt.Call(context.Background(), pid, "q")
	if err != nil || v != "later:q" {
		t.Fatalf("deferred reply %v %v", v, err)
	}
	// A function process answers a Request.
	fp, _ := rt.SpawnFunc(func(p *process.Proc) error {
		m, err := p.Receive(context.Background())
		if err != nil {
			return err
		}
		req := m.(process.Request)
		p.Reply(req.From, fmt.Sprint("fn:", req.Body))
		return nil
	})
	if v, err := rt.Call(context.Background(), fp, 7); err != nil || v != "fn:7" {
		t.Fatalf("func process call: %v %v", v, err)
	}
}

type deferring struct{ process.Server }

func (deferring) HandleCall(p *process.Proc, from process.From, req any) (any, error) {
	p.Send(p.Self(), replyLater{from, req})
	return process.NoReply, nil
}

type replyLater struct {
	from process.From
	req  any
}

func (deferring) HandleInfo(p *process.Proc, msg any) error {
	if r, ok := msg.(replyLater); ok {
		p.Reply(r.from, fmt.Sprint("later:", r.req))
	}
	return nil
}

func TestShutdownStopsEverything(t *testing.T) {
	rt, _ := process.NewRuntime(process.Config{})
	for i := 0; i < 100; i++ {
		if _, err := rt.Spawn(&echo{}); err != nil {
			t.Fatal(err)
		}
		_, _ = rt.SpawnFunc(func(p *process.Proc) error { _, err := p.Receive(context.Background()); return err })
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := rt.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if rt.Count() != 0 {
		t.Fatalf("%d processes left", rt.Count())
	}
	if _, err := rt.Spawn(&echo{}); !errors.Is(err, process.ErrNotRunning) {
		t.Fatalf("spawn after shutdown: %v", err)
	}
}
