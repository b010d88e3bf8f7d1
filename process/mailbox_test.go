package process_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/process"
)

// seqMsg is message seq of sender from.
type seqMsg struct{ from, seq int }

// orderChecker is a behaviour that checks FIFO per sender and counts.
type orderChecker struct {
	process.Server
	next    map[int]int
	bad     chan string
	handled atomic.Int64
	want    int64
	done    chan struct{}
}

func (o *orderChecker) HandleInfo(_ *process.Proc, msg any) error {
	m := msg.(seqMsg)
	if m.seq != o.next[m.from] {
		select {
		case o.bad <- fmt.Sprintf("sender %d: seq %d, want %d", m.from, m.seq, o.next[m.from]):
		default:
		}
	}
	o.next[m.from] = m.seq + 1
	if o.handled.Add(1) == o.want {
		close(o.done)
	}
	return nil
}

// TestMailboxManyProducersFIFO: 48 producers (process senders and plain
// goroutines) flood one behaviour across many chunks; every message
// arrives once, in order per sender.
func TestMailboxManyProducersFIFO(t *testing.T) {
	rt := newRT(t)
	const procs, goroutines, each = 32, 16, 3000
	oc := &orderChecker{next: map[int]int{}, bad: make(chan string, 1), want: (procs + goroutines) * each, done: make(chan struct{})}
	to, err := rt.Spawn(oc)
	if err != nil {
		t.Fatal(err)
	}
	for s := 0; s < procs; s++ {
		if _, err := rt.SpawnFunc(func(p *process.Proc) error {
			for i := 0; i < each; i++ {
				p.Send(to, seqMsg{s, i})
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				rt.Send(to, seqMsg{procs + g, i})
			}
		}()
	}
	wg.Wait()
	testutil.Recv(t, oc.done, wait, "all messages")
	select {
	case b := <-oc.bad:
		t.Fatal(b)
	default:
	}
	in, err := rt.Info(to)
	if err != nil {
		t.Fatal(err)
	}
	if in.MessagesIn != uint64(oc.want) || in.MailboxLen != 0 {
		t.Fatalf("info: %d in, mailbox %d; want %d and 0", in.MessagesIn, in.MailboxLen, oc.want)
	}
}

// acker sends every message it handles to a channel.
type acker struct {
	process.Server
	ch chan any
}

func (a *acker) HandleInfo(_ *process.Proc, msg any) error { a.ch <- msg; return nil }

// TestMailboxWakeUpRace: the receiver's loop ends whenever its mailbox is
// empty, so nearly every message below races with a loop that is going
// away. A lost wake-up leaves a message unhandled and fails the wait.
func TestMailboxWakeUpRace(t *testing.T) {
	rt := newRT(t)
	const senders, rounds = 4, 3000
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for s := 0; s < senders; s++ {
		a := &acker{ch: make(chan any, 1)}
		pid, err := rt.Spawn(a)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.After(wait)
			for i := 0; i < rounds; i++ {
				rt.Send(pid, i)
				select {
				case got := <-a.ch:
					if got != i {
						errs <- fmt.Errorf("receiver %d: got %v, want %d", s, got, i)
						return
					}
				case <-deadline:
					errs <- fmt.Errorf("receiver %d: message %d never handled (lost wake-up)", s, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// gated blocks in HandleInfo on "gate" messages until released, and
// counts every message it handles.
type gated struct {
	process.Server
	gates   chan chan struct{}
	handled atomic.Int64
}

func (g *gated) HandleInfo(p *process.Proc, msg any) error {
	g.handled.Add(1)
	if msg == "gate" {
		release := make(chan struct{})
		g.gates <- release
		<-release
	}
	return nil
}

func (g *gated) HandleCall(_ *process.Proc, _ process.From, req any) (any, error) {
	g.handled.Add(1)
	return req, nil
}

func callAsync(rt *process.Runtime, pid process.PID, n int) chan error {
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := rt.Call(context.Background(), pid, i)
			errs <- err
		}()
	}
	return errs
}

// TestKillOvertakesQueuedMessages: while a handler runs, messages and
// calls wait in the mailbox (across several chunks). Kill ends the process
// at once: none of them is handled, and every queued call is answered
// with killed before the running handler returns.
func TestKillOvertakesQueuedMessages(t *testing.T) {
	rt := newRT(t)
	g := &gated{gates: make(chan chan struct{}, 2)}
	pid, _ := rt.Spawn(g)
	down := exitOf(rt, pid)
	rt.Send(pid, "gate")
	release := testutil.Recv(t, g.gates, wait, "handler blocked")
	for i := 0; i < 1000; i++ {
		rt.Send(pid, i)
	}
	const calls = 20
	errs := callAsync(rt, pid, calls)
	testutil.Eventually(t, wait, func() bool {
		in, err := rt.Info(pid)
		return err == nil && in.MailboxLen == 1000+calls
	}, "mailbox never held every message and call")
	if err := rt.Kill(pid); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < calls; i++ {
		if err := testutil.Recv(t, errs, wait, "queued call"); !errors.Is(err, process.Killed) {
			t.Fatalf("queued call: %v, want killed", err)
		}
	}
	if r := testutil.Recv(t, down, wait, "down"); !errors.Is(r, process.Killed) {
		t.Fatalf("exit reason %v", r)
	}
	close(release)
	if n := g.handled.Load(); n != 1 {
		t.Fatalf("%d messages handled, want only the one that was running", n)
	}
}

// TestKillAnswersCallsOfTheChunkInHand: calls that the loop had already
// taken from the mailbox with the message it is handling are answered
// with killed when that handler returns, not left to time out.
func TestKillAnswersCallsOfTheChunkInHand(t *testing.T) {
	rt := newRT(t)
	g := &gated{gates: make(chan chan struct{}, 2)}
	pid, _ := rt.Spawn(g)
	rt.Send(pid, "gate")
	first := testutil.Recv(t, g.gates, wait, "first gate")
	// Queued behind the first gate, in one chunk: a second gate, then calls.
	rt.Send(pid, "gate")
	const calls = 5
	errs := callAsync(rt, pid, calls)
	testutil.Eventually(t, wait, func() bool {
		in, err := rt.Info(pid)
		return err == nil && in.MailboxLen == 1+calls
	}, "calls never queued")
	close(first) // the loop takes the chunk: second gate and the calls
	second := testutil.Recv(t, g.gates, wait, "second gate")
	if err := rt.Kill(pid); err != nil {
		t.Fatal(err)
	}
	close(second)
	for i := 0; i < calls; i++ {
		if err := testutil.Recv(t, errs, wait, "call in hand"); !errors.Is(err, process.Killed) {
			t.Fatalf("call in hand: %v, want killed", err)
		}
	}
	if n := g.handled.Load(); n != 2 {
		t.Fatalf("%d messages handled, want the two gates", n)
	}
}

// slowCounter handles infos and calls with a little work each.
type slowCounter struct {
	process.Server
	handled atomic.Int64
}

func (s *slowCounter) HandleInfo(*process.Proc, any) error {
	s.handled.Add(1)
	return nil
}

func (s *slowCounter) HandleCall(_ *process.Proc, _ process.From, req any) (any, error) {
	s.handled.Add(1)
	return req, nil
}

// TestKilledMidDrainStress: many producers flood a process with messages
// and calls; it is killed while it drains. Every call returns (its reply,
// or killed / noproc, never a timeout), exactly one DOWN fires, and after
// Kill at most the handler already running completes.
func TestKilledMidDrainStress(t *testing.T) {
	rt := newRT(t)
	for round := 0; round < 5; round++ {
		sc := &slowCounter{}
		pid, err := rt.Spawn(sc)
		if err != nil {
			t.Fatal(err)
		}
		var downs atomic.Int32
		downCh := make(chan process.Reason, 2)
		rt.Watch(pid, func(d process.DownMsg) { downs.Add(1); downCh <- d.Reason })
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var replies, killed atomic.Int64
		callErrs := make(chan error, 64)
		for s := 0; s < 24; s++ {
			if _, err := rt.SpawnFunc(func(p *process.Proc) error {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return nil
					default:
					}
					p.Send(pid, i)
				}
			}); err != nil {
				t.Fatal(err)
			}
		}
		for c := 0; c < 8; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					v, err := rt.CallTimeout(pid, i, wait)
					switch {
					case err == nil && v == i:
						replies.Add(1)
					case errors.Is(err, process.Killed) || errors.Is(err, process.NoProc):
						killed.Add(1)
						return
					default:
						callErrs <- fmt.Errorf("call %d: %v, %v", i, v, err)
						return
					}
				}
			}()
		}
		target := int64(2000 * (round + 1))
		testutil.Eventually(t, wait, func() bool { return sc.handled.Load() >= target }, "receiver never handled %d", target)
		if err := rt.Kill(pid); err != nil {
			t.Fatal(err)
		}
		atKill := sc.handled.Load()
		wg.Wait()
		close(stop)
		close(callErrs)
		for err := range callErrs {
			t.Fatal(err)
		}
		if r := testutil.Recv(t, downCh, wait, "down"); !errors.Is(r, process.Killed) {
			t.Fatalf("round %d: down reason %v", round, r)
		}
		testutil.Eventually(t, wait, func() bool { return rt.Count() == 0 }, "producers did not end")
		if n := downs.Load(); n != 1 {
			t.Fatalf("round %d: %d DOWNs", round, n)
		}
		if n := sc.handled.Load(); n > atKill+1 {
			t.Fatalf("round %d: %d handled after kill (at kill %d): more than the running handler", round, n, atKill)
		}
		if killed.Load() != 8 {
			t.Fatalf("round %d: %d callers saw the death, want 8", round, killed.Load())
		}
	}
}

// relay sends, on a call relayOrder, n numbered messages to each of its
// destinations in turn, then answers.
type relay struct{ process.Server }

type relayOrder struct {
	to []process.PID
	n  int
}

func (relay) HandleCall(p *process.Proc, _ process.From, req any) (any, error) {
	o := req.(relayOrder)
	for i := 0; i < o.n; i++ {
		for d, to := range o.to {
			p.Send(to, seqMsg{from: d, seq: i})
		}
	}
	return true, nil
}

// tally records every seqMsg it gets, in order.
type tally struct {
	process.Server
	mu  sync.Mutex
	got []seqMsg
}

func (t *tally) HandleInfo(_ *process.Proc, msg any) error {
	t.mu.Lock()
	t.got = append(t.got, msg.(seqMsg))
	t.mu.Unlock()
	return nil
}

func (t *tally) seen() []seqMsg {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]seqMsg(nil), t.got...)
}

// TestSendDestinationCache: a process remembers its last destination to
// skip the process table. Alternating destinations, a destination that
// died, and a PID that differs from a live one only in its incarnation
// must each reach exactly the process the PID names, or none.
func TestSendDestinationCache(t *testing.T) {
	rt := newRT(t)
	r, err := rt.Spawn(relay{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := &tally{}, &tally{}
	pa, _ := rt.Spawn(a)
	pb, _ := rt.Spawn(b)
	order := func(to []process.PID, n int) {
		t.Helper()
		if _, err := rt.Call(context.Background(), r, relayOrder{to: to, n: n}); err != nil {
			t.Fatal(err)
		}
	}
	settled := func(tl *tally, want int) {
		t.Helper()
		testutil.Eventually(t, wait, func() bool { return len(tl.seen()) >= want }, "got %d of %d", len(tl.seen()), want)
	}
	// One destination, then two in turn: a hit, then a miss per send.
	order([]process.PID{pa}, 3)
	order([]process.PID{pa, pb}, 5)
	settled(a, 8)
	settled(b, 5)
	// pa dies while it is the relay's last destination.
	order([]process.PID{pa}, 1)
	settled(a, 9)
	if err := rt.Kill(pa); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, wait, func() bool { return !rt.Alive(pa) }, "pa still alive")
	order([]process.PID{pa}, 4) // dropped
	// pb's ID under another incarnation names no process here.
	other := pb
	other.Incarnation++
	order([]process.PID{pb}, 1) // pb is the last destination
	order([]process.PID{other, pb}, 2)
	settled(b, 8)
	// Every call returned after the relay's sends, and a live process's
	// messages are queued when Send returns; a stray message to b (from
	// other) would be among them by now. Check after one more round trip.
	order([]process.PID{pb}, 1)
	settled(b, 9)
	want := map[int][]int{} // from -> seqs, as b must see them
	gotB := b.seen()
	for _, m := range gotB {
		want[m.from] = append(want[m.from], m.seq)
	}
	// b got: 5 as destination 1 (0..4), then 1+2+1 as destination 0 or 1.
	if len(gotB) != 9 {
		t.Fatalf("b got %d messages, want 9: %v", len(gotB), gotB)
	}
	if fmt.Sprint(gotB[5:]) != fmt.Sprint([]seqMsg{{0, 0}, {1, 0}, {1, 1}, {0, 0}}) {
		t.Fatalf("b's last messages %v", gotB[5:])
	}
	if n := len(a.seen()); n != 9 {
		t.Fatalf("a got %d messages, want 9 (none after its death)", n)
	}
}
