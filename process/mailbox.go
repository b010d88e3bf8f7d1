package process

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// chunkLen is the number of letters in one mailbox chunk (8 KiB).
const chunkLen = 256

// chunk is a fixed block of letters. A mailbox is a singly linked list
// of chunks; letters e[r:w] are queued. Chunks come from a pool and go
// back to it once consumed, so a mailbox that keeps a backlog never
// copies it to grow (a slice would), and an idle mailbox holds none.
type chunk struct {
	next *chunk
	r, w int32
	e    [chunkLen]letter
}

var chunkPool = sync.Pool{New: func() any { return new(chunk) }}

func getChunk() *chunk { return chunkPool.Get().(*chunk) }

// reset clears the letters that were used, for c to be filled again.
func (c *chunk) reset() {
	clear(c.e[:c.w])
	c.next, c.r, c.w = nil, 0, 0
}

// putChunk clears c and pools it.
func putChunk(c *chunk) {
	c.reset()
	chunkPool.Put(c)
}

// mailbox is the FIFO queue of a process, with its own small lock (see
// lock): producers append, the consumer (the behaviour's loop, Receive,
// or finalize) takes from the head. The lock is held for one append, or
// once per chunk on the consumer's side, never while a handler runs, and
// never while taking another lock. It also guards scheduled and in.
type mailbox struct {
	mu         atomic.Int32
	scheduled  bool   // a goroutine owns the behaviour's loop (or Init is running)
	in         uint64 // messages ever queued
	head, tail *chunk // letters head.e[r:w], ..., tail.e[r:w]; len counts them
	// spare is an empty chunk that the loop handed back (see give), for
	// the next push that needs one: a sender then takes no chunk from the
	// pool while it holds the lock. Only a running loop leaves one; the
	// loop takes it back before its goroutine ends, so an idle mailbox
	// holds none.
	spare *chunk
}

// lock takes the mailbox lock. It is a spin lock: its critical sections
// are a few stores long, so a waiter spins briefly and then yields its
// thread (the holder may have been preempted) instead of parking, which
// is what made a sync.Mutex slow under many senders (docs/ARCHITECTURE.md).
func (m *mailbox) lock() {
	if m.mu.CompareAndSwap(0, 1) {
		return
	}
	m.lockSlow()
}

func (m *mailbox) lockSlow() {
	for i := 0; ; i++ {
		if m.mu.Load() == 0 && m.mu.CompareAndSwap(0, 1) {
			return
		}
		if i >= 16 {
			runtime.Gosched()
		}
	}
}

func (m *mailbox) unlock() { m.mu.Store(0) }

// len counts the queued letters, chunk by chunk: it serves introspection,
// and keeping a count instead would cost every push and take a store.
func (m *mailbox) len() int {
	n := 0
	for c := m.head; c != nil; c = c.next {
		n += int(c.w - c.r)
	}
	return n
}

func (m *mailbox) push(e letter) {
	m.in++
	t := m.tail
	if t == nil || t.w == chunkLen {
		c := m.spare
		if c != nil {
			m.spare = nil
		} else {
			c = getChunk()
		}
		if t == nil {
			m.head = c
		} else {
			t.next = c
		}
		m.tail, t = c, c
	}
	t.e[t.w] = e
	t.w++
}

// give offers c, an empty chunk (reset), as the spare; it returns c if
// there already is one, nil if c was kept.
func (m *mailbox) give(c *chunk) *chunk {
	if m.spare != nil {
		return c
	}
	m.spare = c
	return nil
}

// takeSpare removes the spare chunk, if any.
func (m *mailbox) takeSpare() *chunk {
	c := m.spare
	m.spare = nil
	return c
}

// take detaches the head chunk, with its queued letters e[r:w], for the
// consumer to handle outside the lock. It returns nil if the mailbox is
// empty. Once the head is taken, new messages go to a new chunk.
func (m *mailbox) take() *chunk {
	c := m.head
	if c == nil {
		return nil
	}
	m.head = c.next
	if m.head == nil {
		m.tail = nil
	}
	c.next = nil
	return c
}

// untake puts back a chain of chunks from take or takeAll, whose letters
// e[r:w] were not handled, at the head of the mailbox.
func (m *mailbox) untake(c *chunk) {
	for c != nil && c.r == c.w {
		next := c.next
		putChunk(c)
		c = next
	}
	if c == nil {
		return
	}
	last := c
	for x := c; x != nil; x = x.next {
		last = x
	}
	last.next = m.head
	m.head = c
	if m.tail == nil {
		m.tail = last
	}
}

// pop removes the first letter.
func (m *mailbox) pop() (letter, bool) {
	c := m.head
	if c == nil {
		return letter{}, false
	}
	e := c.e[c.r]
	c.e[c.r] = letter{}
	c.r++
	if c.r == c.w {
		m.head = c.next
		if m.head == nil {
			m.tail = nil
		}
		putChunk(c)
	}
	return e, true
}

// takeAll detaches every chunk; the caller goes through them with each
// and then releases them with release.
func (m *mailbox) takeAll() *chunk {
	c := m.head
	m.head, m.tail = nil, nil
	return c
}

// each calls fn for every queued letter of a chain from takeAll.
func each(c *chunk, fn func(*letter)) {
	for ; c != nil; c = c.next {
		for i := c.r; i < c.w; i++ {
			fn(&c.e[i])
		}
	}
}

// release pools every chunk of a chain from takeAll.
func release(c *chunk) {
	for c != nil {
		next := c.next
		putChunk(c)
		c = next
	}
}
