package process

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

func env(i int) letter { return letter{body: i} }

func popAll(t *testing.T, m *mailbox) []int {
	t.Helper()
	var out []int
	for {
		e, ok := m.pop()
		if !ok {
			return out
		}
		out = append(out, e.body.(int))
	}
}

// TestMailboxGrowthAndWrap pushes across many chunk boundaries, drains,
// and does it again with chunks that come back from the pool.
func TestMailboxGrowthAndWrap(t *testing.T) {
	var m mailbox
	next, want := 0, 0
	for round := 0; round < 4; round++ {
		n := chunkLen*3 + 17*round + 1
		for i := 0; i < n; i++ {
			m.push(env(next))
			next++
		}
		if m.len() != n {
			t.Fatalf("round %d: len %d, want %d", round, m.len(), n)
		}
		// Half by pop, half by take: both orders must agree.
		for i := 0; i < n/2; i++ {
			e, ok := m.pop()
			if !ok || e.body.(int) != want {
				t.Fatalf("round %d: pop %v %v, want %d", round, e.body, ok, want)
			}
			want++
		}
		for c := m.take(); c != nil; c = m.take() {
			for i := c.r; i < c.w; i++ {
				if got := c.e[i].body.(int); got != want {
					t.Fatalf("round %d: took %d, want %d", round, got, want)
				}
				want++
			}
			c.r = c.w
			putChunk(c)
		}
		if m.len() != 0 || m.head != nil || m.tail != nil {
			t.Fatalf("round %d: drained mailbox holds len %d, chunks %v %v", round, m.len(), m.head, m.tail)
		}
	}
	if m.in != uint64(next) {
		t.Fatalf("in = %d, want %d", m.in, next)
	}
}

// TestMailboxUntake: the unhandled rest of a taken chunk goes back in
// front of what arrived meanwhile.
func TestMailboxUntake(t *testing.T) {
	var m mailbox
	for i := 0; i < chunkLen+10; i++ {
		m.push(env(i))
	}
	c := m.take()
	c.r += 5 // five handled
	for i := chunkLen + 10; i < chunkLen+20; i++ {
		m.push(env(i))
	}
	m.untake(c)
	if m.len() != chunkLen+15 {
		t.Fatalf("len %d after untake, want %d", m.len(), chunkLen+15)
	}
	got := popAll(t, &m)
	for i, v := range got {
		if v != i+5 {
			t.Fatalf("position %d: %d, want %d", i, v, i+5)
		}
	}
	// A taken chunk of the only chunk, put back into an empty mailbox,
	// becomes head and tail: pushes go after it.
	m.push(env(1))
	c = m.take()
	m.untake(c)
	m.push(env(2))
	if got := popAll(t, &m); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("untake into an empty mailbox: %v", got)
	}
	// A chain from takeAll, its first chunk partly handled, goes back in
	// front of what arrived meanwhile.
	for i := 0; i < 3*chunkLen; i++ {
		m.push(env(i))
	}
	chain := m.takeAll()
	chain.r = 7
	m.push(env(3 * chunkLen))
	m.untake(chain)
	if m.len() != 3*chunkLen-7+1 {
		t.Fatalf("len %d after untaking a chain, want %d", m.len(), 3*chunkLen-6)
	}
	got = popAll(t, &m)
	for i, v := range got {
		if v != i+7 {
			t.Fatalf("chain position %d: %d, want %d", i, v, i+7)
		}
	}
	// A fully handled chunk is pooled, not queued.
	m.push(env(3))
	c = m.take()
	c.r = c.w
	m.untake(c)
	if m.head != nil || m.len() != 0 {
		t.Fatal("a handled chunk was put back")
	}
}

func TestMailboxTakeAll(t *testing.T) {
	var m mailbox
	for i := 0; i < 2*chunkLen+3; i++ {
		m.push(env(i))
	}
	m.pop()
	chain := m.takeAll()
	if m.len() != 0 || m.head != nil {
		t.Fatal("takeAll left envelopes")
	}
	want := 1
	each(chain, func(e *letter) {
		if e.body.(int) != want {
			t.Fatalf("each: %d, want %d", e.body.(int), want)
		}
		want++
	})
	if want != 2*chunkLen+3 {
		t.Fatalf("each saw %d envelopes", want-1)
	}
	release(chain)
}

// TestMailboxLock: the spin lock excludes; run with -race, which also
// checks that it orders the protected writes.
func TestMailboxLock(t *testing.T) {
	var m mailbox
	const workers, each = 8, 5000
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				m.lock()
				m.push(env(i))
				if i%3 == 0 {
					m.pop()
				}
				m.unlock()
			}
		}()
	}
	wg.Wait()
	popped := workers * ((each + 2) / 3)
	if m.len() != workers*each-popped || m.in != workers*each {
		t.Fatalf("len %d in %d, want %d and %d", m.len(), m.in, workers*each-popped, workers*each)
	}
}

// TestMailboxSpare: a push that needs a chunk takes the spare first, and
// a mailbox keeps at most one spare.
func TestMailboxSpare(t *testing.T) {
	var m mailbox
	s := getChunk()
	if r := m.give(s); r != nil {
		t.Fatal("an empty mailbox refused a spare")
	}
	other := getChunk()
	if r := m.give(other); r != other {
		t.Fatal("a mailbox took a second spare")
	}
	putChunk(other)
	m.push(env(1))
	if m.head != s || m.spare != nil {
		t.Fatalf("push did not use the spare: head %p, spare %p, want head %p", m.head, m.spare, s)
	}
	for i := 2; i <= chunkLen+1; i++ {
		m.push(env(i))
	}
	if m.head == m.tail || m.head != s {
		t.Fatal("a full spare did not grow into a second chunk")
	}
	if got := popAll(t, &m); len(got) != chunkLen+1 || got[0] != 1 || got[chunkLen] != chunkLen+1 {
		t.Fatalf("popped %d letters, first %v", len(got), got[:1])
	}
	if m.takeSpare() != nil {
		t.Fatal("a spare left after the push took it")
	}
}

// gatedSink counts info messages; the first one waits for gate.
type gatedSink struct {
	Server
	entered, gate chan struct{}
	n             atomic.Int64
}

func (s *gatedSink) HandleInfo(*Proc, any) error {
	if s.n.Add(1) == 1 {
		close(s.entered)
		<-s.gate
	}
	return nil
}

// TestIdleMailboxHoldsNoSpare: the loop hands a handled chunk to the
// senders as the spare when it comes back for more, and takes the spare
// back when its goroutine ends, in the critical section that marks it
// unscheduled: an idle process holds no chunk. The first message holds
// the loop while the rest queue, so the loop gives its first chunk as the
// spare with the rest, and no push takes it before the loop ends.
func TestIdleMailboxHoldsNoSpare(t *testing.T) {
	rt, err := NewRuntime(Config{Node: "spare@test"})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Shutdown(context.Background())
	for round := 0; round < 3; round++ {
		s := &gatedSink{entered: make(chan struct{}), gate: make(chan struct{})}
		pid, err := rt.Spawn(s)
		if err != nil {
			t.Fatal(err)
		}
		p := rt.lookup(pid)
		n := 1 + round*chunkLen + 7
		rt.Send(pid, 0)
		select {
		case <-s.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the first message was not handled in 10 s", round)
		}
		for i := 1; i < n; i++ {
			rt.Send(pid, i)
		}
		close(s.gate)
		deadline := time.Now().Add(10 * time.Second)
		for {
			p.mbox.lock()
			idle, spare, head := !p.mbox.scheduled, p.mbox.spare, p.mbox.head
			p.mbox.unlock()
			if idle {
				if spare != nil || head != nil {
					t.Fatalf("round %d: idle mailbox holds spare %p, head %p", round, spare, head)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: loop still scheduled after 10 s, %d of %d handled", round, s.n.Load(), n)
			}
			runtime.Gosched()
		}
		if got := s.n.Load(); got != int64(n) {
			t.Fatalf("round %d: handled %d, want %d", round, got, n)
		}
	}
}

// TestProcessSizeClass: an idle behaviour process is its struct, and the
// struct stays in the 416-byte size class (docs/BENCHMARKS.md, idle
// memory); a field that pushes it into the next class costs every idle
// process 32 bytes.
func TestProcessSizeClass(t *testing.T) {
	if s := unsafe.Sizeof(process{}); s > 416 {
		t.Fatalf("process is %d bytes, over the 416-byte size class", s)
	}
}
