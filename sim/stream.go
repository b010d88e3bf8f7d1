package sim

import (
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"
)

// streamBuffer is how many bytes one direction of a stream connection
// holds in flight (a socket's send and receive buffers together). A writer
// blocks, honouring its deadline, while the buffer is full.
const streamBuffer = 1 << 20

// half is one direction of a stream connection.
type half struct {
	mu     sync.Mutex
	chunks []chunk
	size   int       // bytes in chunks
	lastAt time.Time // delivery time of the last chunk, to keep FIFO under jitter
	eof    bool      // the writer closed: EOF after the data (its FIN)
	rerr   error     // reads fail with this at once (reset)
	werr   error     // writes fail with this (the reader is gone, or reset)
	notify chan struct{}
}

type chunk struct {
	b  []byte
	at time.Time // not readable before
}

func newHalf() *half { return &half{notify: make(chan struct{})} }

func (h *half) wakeLocked() {
	close(h.notify)
	h.notify = make(chan struct{})
}

// conn is one end of a stream connection.
type conn struct {
	nw            *Network
	host          *Host
	life          *life
	local, remote netip.AddrPort
	peer          *conn
	in, out       *half
	rdl, wdl      *deadline
	rsem, wsem    chan struct{} // one Read and one Write at a time, as on a socket
	once          sync.Once
	done          chan struct{}
}

var _ net.Conn = (*conn)(nil)

func newConn(nw *Network, h *Host, l *life, local, remote netip.AddrPort) *conn {
	return &conn{
		nw: nw, host: h, life: l, local: local, remote: remote,
		rdl: newDeadline(), wdl: newDeadline(),
		rsem: make(chan struct{}, 1), wsem: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
}

func (c *conn) LocalAddr() net.Addr  { return net.TCPAddrFromAddrPort(c.local) }
func (c *conn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }

func (c *conn) opErr(op string, err error) error {
	return opError(op, c.LocalAddr(), c.RemoteAddr(), err)
}

func (c *conn) SetDeadline(t time.Time) error {
	if isClosed(c.done) {
		return c.opErr("set", net.ErrClosed)
	}
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

func (c *conn) SetReadDeadline(t time.Time) error {
	if isClosed(c.done) {
		return c.opErr("set", net.ErrClosed)
	}
	c.rdl.set(t)
	return nil
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	if isClosed(c.done) {
		return c.opErr("set", net.ErrClosed)
	}
	c.wdl.set(t)
	return nil
}

// acquire takes a semaphore, or fails like the call would.
func (c *conn) acquire(sem chan struct{}, dl *deadline, op string) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-dl.wait():
		return c.opErr(op, os.ErrDeadlineExceeded)
	case <-c.done:
		return c.opErr(op, net.ErrClosed)
	}
}

// Read returns buffered bytes once they are due (their delay passed) and
// the path from the peer flows; otherwise it waits.
func (c *conn) Read(b []byte) (int, error) {
	if err := c.acquire(c.rsem, c.rdl, "read"); err != nil {
		return 0, err
	}
	defer func() { <-c.rsem }()
	h := c.in
	for {
		changed := c.nw.watch()
		switch {
		case isClosed(c.done):
			return 0, c.opErr("read", net.ErrClosed)
		case isClosed(c.rdl.wait()):
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		flow := c.nw.flows(c.remote.Addr(), c.peer.life, c.local.Addr(), c.life)
		var timer *time.Timer
		var due <-chan time.Time
		h.mu.Lock()
		if h.rerr != nil {
			err := h.rerr
			h.mu.Unlock()
			return 0, c.opErr("read", err)
		}
		if flow {
			now := time.Now()
			n := 0
			for n < len(b) && len(h.chunks) > 0 && !now.Before(h.chunks[0].at) {
				ch := &h.chunks[0]
				k := copy(b[n:], ch.b)
				n += k
				ch.b = ch.b[k:]
				h.size -= k
				if len(ch.b) == 0 {
					h.chunks[0] = chunk{}
					h.chunks = h.chunks[1:]
				}
			}
			if n > 0 || len(b) == 0 {
				h.wakeLocked() // room for the writer
				h.mu.Unlock()
				return n, nil
			}
			if len(h.chunks) > 0 {
				timer = time.NewTimer(h.chunks[0].at.Sub(now))
				due = timer.C
			} else if h.eof {
				h.mu.Unlock()
				return 0, io.EOF
			}
		}
		notify := h.notify
		h.mu.Unlock()
		select {
		case <-notify:
		case <-changed:
		case <-due:
		case <-c.rdl.wait():
		case <-c.done:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// Write buffers b for the peer (one delay decision per call) and returns
// once all of it is buffered; it blocks while the buffer is full.
func (c *conn) Write(b []byte) (int, error) {
	if err := c.acquire(c.wsem, c.wdl, "write"); err != nil {
		return 0, err
	}
	defer func() { <-c.wsem }()
	h := c.out
	var at time.Time
	n := 0
	for {
		switch {
		case isClosed(c.done):
			return n, c.opErr("write", net.ErrClosed)
		case isClosed(c.wdl.wait()):
			return n, c.opErr("write", os.ErrDeadlineExceeded)
		}
		if at.IsZero() {
			delay, _, _ := c.nw.draw(c.local.Addr(), c.remote.Addr(), KindStream)
			at = time.Now().Add(delay)
		}
		h.mu.Lock()
		if n == len(b) && n > 0 {
			h.mu.Unlock()
			return n, nil
		}
		if h.werr != nil {
			err := h.werr
			h.mu.Unlock()
			return n, c.opErr("write", err)
		}
		if n == len(b) {
			h.mu.Unlock()
			return n, nil
		}
		if space := streamBuffer - h.size; space > 0 {
			k := min(space, len(b)-n)
			if at.Before(h.lastAt) {
				at = h.lastAt
			}
			h.lastAt = at
			h.chunks = append(h.chunks, chunk{b: slices.Clone(b[n : n+k]), at: at})
			h.size += k
			n += k
			h.wakeLocked()
			h.mu.Unlock()
			continue
		}
		notify := h.notify
		h.mu.Unlock()
		select {
		case <-notify:
		case <-c.wdl.wait():
		case <-c.done:
		}
	}
}

// Close sends the peer EOF after the buffered data, and makes its later
// writes fail.
func (c *conn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.out.mu.Lock()
		c.out.eof = true
		c.out.wakeLocked()
		c.out.mu.Unlock()
		c.in.mu.Lock()
		if c.in.werr == nil {
			c.in.werr = errPipe
		}
		c.in.chunks, c.in.size = nil, 0
		c.in.wakeLocked()
		c.in.mu.Unlock()
		c.rdl.stop()
		c.wdl.stop()
		c.nw.mu.Lock()
		delete(c.nw.conns, c)
		c.nw.mu.Unlock()
	})
	return nil
}

// reset breaks the connection when its host crashes: this end's calls
// fail, and, if the reset reaches the peer (seen), so do the peer's.
func (c *conn) reset(seen bool) {
	c.out.mu.Lock()
	c.out.werr = errReset
	if seen {
		c.out.rerr = errReset
	}
	c.out.wakeLocked()
	c.out.mu.Unlock()
	c.in.mu.Lock()
	c.in.rerr = errReset
	if seen {
		c.in.werr = errReset
	}
	c.in.wakeLocked()
	c.in.mu.Unlock()
}

// ---- listener ----

type listener struct {
	nw      *Network
	h       *Host
	life    *life
	addr    netip.AddrPort
	mu      sync.Mutex
	closed  bool
	backlog chan *conn
	done    chan struct{}
}

var _ net.Listener = (*listener)(nil)

func (l *listener) Addr() net.Addr { return net.TCPAddrFromAddrPort(l.addr) }

func (l *listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Accept waits for a connection. A paused or crashed host accepts nothing.
func (l *listener) Accept() (net.Conn, error) {
	for {
		changed := l.nw.watch()
		if l.isClosed() {
			return nil, opError("accept", l.Addr(), nil, net.ErrClosed)
		}
		if l.h.state(l.life) != lifeUp {
			select {
			case <-changed:
			case <-l.done:
			}
			continue
		}
		select {
		case c := <-l.backlog:
			return c, nil
		case <-changed:
		case <-l.done:
		}
	}
}

// Close stops listening; connections not yet accepted are closed.
func (l *listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	var pending []*conn
	for {
		select {
		case c := <-l.backlog:
			pending = append(pending, c)
			continue
		default:
		}
		break
	}
	l.mu.Unlock()
	for _, c := range pending {
		c.Close()
	}
	l.nw.mu.Lock()
	if l.nw.listeners[l.addr] == l {
		delete(l.nw.listeners, l.addr)
	}
	l.nw.mu.Unlock()
	return nil
}

// connect creates both ends of a connection from host h (in life fl) and
// queues the accepting end. It fails when the backlog is full or the
// listener closed.
func (l *listener) connect(h *Host, fl *life) (*conn, error) {
	src := netip.AddrPortFrom(h.ip, h.ephemeral())
	a := newConn(l.nw, h, fl, src, l.addr)
	b := newConn(l.nw, l.h, l.life, l.addr, src)
	ab, ba := newHalf(), newHalf()
	a.out, b.in = ab, ab
	b.out, a.in = ba, ba
	a.peer, b.peer = b, a
	l.nw.mu.Lock()
	if l.nw.closed {
		l.nw.mu.Unlock()
		return nil, net.ErrClosed
	}
	l.nw.conns[a] = struct{}{}
	l.nw.conns[b] = struct{}{}
	l.nw.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	ok := !l.closed
	if ok {
		select {
		case l.backlog <- b:
		default:
			ok = false
		}
	}
	if !ok {
		l.nw.mu.Lock()
		delete(l.nw.conns, a)
		delete(l.nw.conns, b)
		l.nw.mu.Unlock()
		return nil, net.ErrClosed
	}
	return a, nil
}
