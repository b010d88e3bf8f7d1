package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// writeChunk bounds one socket write so that WriteTimeout measures a
	// stall, not the time to push a large backlog over a slow link.
	writeChunk = 256 << 10
	// goodbyeTimeout bounds the best-effort close frame on the way out.
	goodbyeTimeout = 500 * time.Millisecond
	// segmentSize is where the queue starts a new segment rather than grow
	// the last one, so that buffers stay small enough to reuse.
	segmentSize = writeChunk
	// maxFreeBufs and maxFreeBufCap bound the buffers a link keeps for reuse.
	maxFreeBufs   = 16
	maxFreeBufCap = 1 << 20
	// directGap is how long the link must have been quiet (no data frame
	// queued or written) for Send to write a frame itself instead of
	// waking the writer goroutine (see Send). A burst keeps going through
	// the writer, which writes it in batches.
	directGap = 10 * time.Microsecond
	// maxDirect bounds a frame that Send may write itself.
	maxDirect = 4 << 10
)

// Link is one authenticated connection to a peer node. Frames sent with Send
// arrive at the peer's handler in order; the link pings its peer to measure
// RTT and to notice a dead peer. A Link is created by Network.Dial or by an
// inbound connection (reported through Config.OnLink) and ends for good when
// it closes; the node layer reconnects by dialling again.
type Link struct {
	n        *Network
	conn     net.Conn
	fr       *frameReader
	peer     PeerInfo
	outbound bool
	log      *slog.Logger
	faults   *Faults
	start    time.Time

	handler    atomic.Pointer[linkHandler]
	handlerSet chan struct{}
	skipYield  bool // set by the handler (SkipYield), read by the reader: its goroutine only
	setOnce    sync.Once

	mu      sync.Mutex
	queue   []segment
	spare   []segment
	free    [][]byte
	queued  int
	closed  bool
	err     error
	goodbye []byte // close frame for the writer to send on the way out
	wake    chan struct{}
	done    chan struct{}

	// Direct writes (Send writing a frame itself on a quiet link). raw is
	// nil where the socket cannot be written without blocking (TLS, or
	// not a TCP socket). writing: the writer goroutine or a direct write
	// owns the socket; whoever clears it wakes the writer if frames are
	// queued. lastData: l.now() when Send last took a data frame (queued
	// or written directly); stamped in send only, never after a direct
	// write's syscall, whose thread may be descheduled right after it (on
	// loopback the write wakes the peer, often onto this core): a stamp
	// taken when it resumed made the next request of a round trip look
	// like a burst, and queued it for the writer. partial: the queue
	// starts with the rest of a frame that a direct write began. dbuf is
	// the direct write's buffer (owned by whoever set writing from Send).
	// wmu is held across a direct write's syscall, so that the goodbye on
	// the way out never lands mid-frame.
	raw      syscall.RawConn
	writing  bool
	lastData int64
	partial  bool
	dbuf     []byte
	wmu      sync.Mutex
	dfn      func(fd uintptr) bool // tryWrite's body; dn, derr: its results (under wmu)
	dn       int
	derr     error

	writeBroken atomic.Bool // a write failed: the stream may end mid-frame
	// ticks counts keepalive intervals (the writer's ticker); lastRecv is
	// the tick of the last frame received. A tick, not a clock reading:
	// the reader marks every frame with two plain loads, and the
	// keepalive's resolution is its interval anyway.
	ticks    atomic.Int64
	lastRecv atomic.Int64
	busy     atomic.Bool // reader is inside the handler (not idle, just slow)
	rtt      atomic.Int64

	framesSent, framesReceived, framesHeld atomic.Uint64
	directWrites                           atomic.Uint64
	bytesSent, bytesReceived               atomic.Uint64
}

// segment is a run of encoded frames written together. A segment with a
// release time (fault-injected delay) is written no earlier than that.
type segment struct {
	buf     []byte
	release time.Time
}

func newLink(n *Network, conn net.Conn, fr *frameReader, peer PeerInfo, outbound bool) *Link {
	dir := "in"
	if outbound {
		dir = "out"
	}
	l := &Link{
		n:          n,
		conn:       conn,
		fr:         fr,
		peer:       peer,
		outbound:   outbound,
		log:        n.log.With("peer", peer.Name, "peer_addr", peer.Addr, "dir", dir),
		faults:     n.faults,
		start:      time.Now(),
		handlerSet: make(chan struct{}),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	if tc, ok := conn.(*net.TCPConn); ok && directWriteSupported {
		if rc, err := tc.SyscallConn(); err == nil {
			l.raw = rc
		}
	}
	return l
}

// Peer returns who is at the other end, as proven by the handshake.
func (l *Link) Peer() PeerInfo { return l.peer }

// Outbound reports whether this node dialled the link.
func (l *Link) Outbound() bool { return l.outbound }

// RemoteAddr returns the socket address of the peer (for an inbound link,
// an ephemeral port; the node address is Peer().Addr).
func (l *Link) RemoteAddr() net.Addr { return l.conn.RemoteAddr() }

// Done is closed when the link closes.
func (l *Link) Done() <-chan struct{} { return l.done }

// Err says why the link closed, nil while it is open. It wraps ErrClosed
// (closed here), ErrPeerClosed, ErrKeepalive, ErrFrameTooLarge, ErrProtocol,
// or the socket error.
func (l *Link) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Close closes the link, telling the peer. Frames still queued are dropped.
func (l *Link) Close() error {
	l.closeWith(detailed(ErrClosed, "closed by "+l.n.cfg.NodeName), true)
	return nil
}

// RTT returns the last measured round trip of a link ping, 0 before the
// first pong.
func (l *Link) RTT() time.Duration { return time.Duration(l.rtt.Load()) }

// LinkStats are a link's counters. Frames counts data frames only.
type LinkStats struct {
	FramesSent     uint64 // accepted by Send
	FramesReceived uint64 // delivered to the handler
	FramesHeld     uint64 // times a fault rule started holding the traffic (a cut), either direction
	DirectWrites   uint64 // data frames that Send wrote to the socket itself (a quiet link, see Send)
	BytesSent      uint64 // written to the socket, framing included
	BytesReceived  uint64
	QueuedBytes    int // waiting for the writer
	RTT            time.Duration
}

// QueuedBytes returns the bytes waiting for the writer (cheaper than
// Stats).
func (l *Link) QueuedBytes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.queued
}

// Stats returns the link's counters.
func (l *Link) Stats() LinkStats {
	l.mu.Lock()
	q := l.queued
	l.mu.Unlock()
	return LinkStats{
		FramesSent:     l.framesSent.Load(),
		FramesReceived: l.framesReceived.Load(),
		FramesHeld:     l.framesHeld.Load(),
		DirectWrites:   l.directWrites.Load(),
		BytesSent:      l.bytesSent.Load(),
		BytesReceived:  l.bytesReceived.Load(),
		QueuedBytes:    q,
		RTT:            l.RTT(),
	}
}

// SetHandler sets the function that receives the peer's frames, in order,
// one at a time, from the link's reader goroutine. The frame slice belongs
// to the handler. Frames are held (and the link is not considered idle)
// until a handler is set, so setting it right after Dial returns loses
// nothing; OnLink is the natural place. A slow handler slows the peer (TCP
// backpressure), it never drops frames.
func (l *Link) SetHandler(h func(frame []byte)) {
	l.setHandler(h, false)
}

// SetBorrowingHandler is SetHandler for a handler that keeps nothing of a
// frame after it returns (it copies what it keeps): the frame slice is
// valid only during the call, and the link reads the next frame into the
// same memory, with no allocation per frame.
func (l *Link) SetBorrowingHandler(h func(frame []byte)) {
	l.setHandler(h, true)
}

// linkHandler is a frame handler; borrowing: it keeps no frame past its
// return.
type linkHandler struct {
	fn        func([]byte)
	borrowing bool
}

func (l *Link) setHandler(h func([]byte), borrowing bool) {
	if h == nil {
		h = func([]byte) {}
	}
	l.handler.Store(&linkHandler{fn: h, borrowing: borrowing})
	l.setOnce.Do(func() { close(l.handlerSet) })
}

// Send queues frame for the peer and returns; frames from one goroutine
// arrive in the order sent. Send copies frame and never waits: not for the
// network, not for the queue. On a quiet link (nothing queued, the writer
// idle, no data frame for directGap) Send writes a small frame to the
// socket itself, with one non-blocking write, instead of waking the writer
// goroutine: that takes one goroutine hand-off off a request's round
// trip. What the socket does not take at once is queued for the writer,
// ahead of anything sent later. A frame that would take the queue past
// SendQueueBytes (a peer that does not keep up) closes the link with
// ErrOverload, telling the peer, and Send returns that error: the one
// overload policy, never blocking and never dropping silently. Send fails
// if the link is closed or the frame exceeds MaxFrameSize (the link stays
// open then). A frame to a peer cut by a fault rule waits in the queue, as
// TCP holds bytes over a cut network, until the cut is lifted or the link
// closes.
func (l *Link) Send(frame []byte) error {
	if len(frame) > l.n.cfg.MaxFrameSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(frame), l.n.cfg.MaxFrameSize)
	}
	sent, err := l.send(frameData, frame, false)
	if sent {
		l.framesSent.Add(1)
	}
	return err
}

// send applies outbound delay rules, then queues (a cut is applied by the
// writer, which holds the queue). Control frames skip the queue bound:
// they are small and the writer itself sends pings.
func (l *Link) send(typ byte, payload []byte, control bool) (bool, error) {
	e := l.faults.match(l.peer.Name, l.peer.Addr)
	var release time.Time
	if d := e.wait(); d > 0 {
		release = time.Now().Add(d)
	}
	size := frameHeaderLen + len(payload)
	var now int64
	if !control && l.raw != nil {
		now = l.now()
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false, l.closedErr()
	}
	if now != 0 {
		quiet := now-l.lastData > int64(directGap)
		l.lastData = now
		if quiet && !l.writing && len(l.queue) == 0 && release.IsZero() && size <= maxDirect &&
			!e.blocksLink(Outbound) {
			l.writing = true
			l.dbuf = appendFrame(l.dbuf[:0], typ, payload)
			l.mu.Unlock()
			l.writeDirect()
			return true, nil
		}
	}
	if !control && l.queued > 0 && l.queued+size > l.n.cfg.SendQueueBytes {
		queued := l.queued
		l.mu.Unlock()
		err := detailed(ErrOverload, fmt.Sprintf("%d bytes waiting for %s, limit %d", queued+size, l.peer.Name, l.n.cfg.SendQueueBytes))
		l.log.Warn("closing link", "err", err)
		l.closeWith(err, true)
		return false, l.closedErr()
	}
	if k := len(l.queue); k > 0 && release.IsZero() && l.queue[k-1].release.IsZero() && len(l.queue[k-1].buf) < segmentSize {
		l.queue[k-1].buf = appendFrame(l.queue[k-1].buf, typ, payload)
	} else {
		var buf []byte
		if k := len(l.free); k > 0 {
			buf, l.free = l.free[k-1], l.free[:k-1]
		}
		l.queue = append(l.queue, segment{buf: appendFrame(buf, typ, payload), release: release})
	}
	l.queued += size
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return true, nil
}

func (l *Link) closedErr() error {
	err := l.Err()
	if errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("%w: link to %s: %w", ErrClosed, l.peer.Name, err)
}

// closeWith closes the link once with reason err. With notify, the writer
// sends the peer a close frame saying why before closing the socket.
func (l *Link) closeWith(err error, notify bool) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.err = err
	if notify {
		l.goodbye = appendFrame(nil, frameClose, closePayload(errCode(err), detailOf(err)))
	}
	if l.partial {
		// The queue held the rest of a frame begun by a direct write.
		l.writeBroken.Store(true)
	}
	l.queue, l.queued = nil, 0
	l.mu.Unlock()
	close(l.done)
	// Unblock the reader now and the writer soon; the writer closes the
	// socket once it has said goodbye.
	now := time.Now()
	l.conn.SetReadDeadline(now)
	if notify {
		l.conn.SetWriteDeadline(now.Add(goodbyeTimeout))
	} else {
		l.conn.SetWriteDeadline(now)
	}
}

func detailOf(err error) string {
	var de *detailError
	if errors.As(err, &de) {
		return de.detail
	}
	if isSentinel(err) || err == ErrClosed {
		return ""
	}
	return err.Error()
}

func (l *Link) isDone() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func (l *Link) now() int64 { return int64(time.Since(l.start)) }

// SkipYield, called by the link's handler (on the reader's goroutine)
// while it handles a frame, tells the reader not to yield after that
// frame: the handler made nothing runnable that should run before the
// reader's next read.
func (l *Link) SkipYield() { l.skipYield = true }

func (l *Link) readLoop() {
	defer l.n.wg.Done()
	l.markRecv()
	for {
		var (
			typ byte
			p   []byte
			err error
		)
		// Into reused memory if the handler borrows (deliver copies the
		// frame if the handler changed meanwhile to one that keeps it).
		h := l.handler.Load()
		borrowed := h != nil && h.borrowing
		if borrowed {
			typ, p, err = l.fr.nextInto()
		} else {
			typ, p, err = l.fr.next()
		}
		if err != nil {
			l.readFailed(err)
			return
		}
		if !l.holdWhileCut(Inbound) {
			return
		}
		l.markRecv()
		l.bytesReceived.Add(uint64(frameHeaderLen + len(p)))
		switch typ {
		case frameData:
			if !l.deliver(p, borrowed) {
				return
			}
			if l.skipYield {
				// The handler woke no goroutine (SkipYield): a yield
				// would only put the reader on the global queue and wake
				// a second thread for it.
				l.skipYield = false
			} else if l.fr.r.Buffered() == 0 {
				// The next read will most likely find nothing and park. The
				// handler has probably just woken a goroutine (a process
				// with a message, a caller with its reply) onto this P: let
				// it run first, rather than after that read's syscall.
				runtime.Gosched()
			}
		case framePing:
			if len(p) != 8 {
				l.protocolError(fmt.Errorf("%w: ping of %d bytes", ErrProtocol, len(p)))
				return
			}
			l.send(framePong, p, true)
		case framePong:
			if len(p) != 8 {
				l.protocolError(fmt.Errorf("%w: pong of %d bytes", ErrProtocol, len(p)))
				return
			}
			if rtt := l.now() - int64(binary.BigEndian.Uint64(p)); rtt >= 0 {
				l.rtt.Store(rtt)
			}
		case frameClose:
			l.closeWith(parseClose(p), false)
			return
		default:
			l.protocolError(fmt.Errorf("%w: frame type 0x%02x after handshake", ErrProtocol, typ))
			return
		}
	}
}

// holdWhileCut waits while a fault rule cuts the link in direction d, as
// TCP over a cut network delivers nothing, then lets the traffic flow in
// order. Nothing counts as received meanwhile, so the keepalive closes a
// link cut for too long. It reports false if the link closed meanwhile.
func (l *Link) holdWhileCut(d Direction) bool {
	held := false
	for {
		changed := l.faults.changes()
		if !l.faults.match(l.peer.Name, l.peer.Addr).blocksLink(d) {
			return true
		}
		if !held {
			held = true
			l.framesHeld.Add(1)
		}
		select {
		case <-changed:
		case <-l.done:
			return false
		}
	}
}

func (l *Link) readFailed(err error) {
	if l.isDone() {
		return // we closed it; the read error is the consequence
	}
	switch {
	case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrProtocol):
		l.protocolError(err)
	case errors.Is(err, io.EOF):
		l.closeWith(detailed(ErrPeerClosed, "connection closed without a close frame"), false)
	default:
		l.closeWith(fmt.Errorf("transport: read from %s: %w", l.peer.Name, err), false)
	}
}

func (l *Link) protocolError(err error) {
	l.log.Error("closing link: peer broke the framing", "err", err)
	l.closeWith(err, true)
}

// deliver hands one frame to the handler, waiting for one to be set. It
// reports false if the link closed meanwhile. borrowed: p is in reused
// memory.
func (l *Link) deliver(p []byte, borrowed bool) (ok bool) {
	l.busy.Store(true)
	defer func() {
		// Time spent in the handler is not the peer's silence.
		l.markRecv()
		l.busy.Store(false)
		if r := recover(); r != nil {
			l.log.Error("link handler panicked", "panic", r, "stack", string(debug.Stack()))
			l.closeWith(fmt.Errorf("transport: link handler panicked: %v", r), true)
			ok = false
		}
	}()
	h := l.handler.Load()
	if h == nil {
		select {
		case <-l.handlerSet:
			h = l.handler.Load()
		case <-l.done:
			return false
		}
	}
	if borrowed && !h.borrowing {
		p = append([]byte(nil), p...)
	}
	h.fn(p)
	l.framesReceived.Add(1)
	return true
}

func (l *Link) writeLoop() {
	defer l.n.wg.Done()
	defer func() {
		l.conn.Close()
		l.n.removeLink(l)
		err := l.Err()
		if errors.Is(err, ErrClosed) {
			l.log.Debug("link closed", "err", err)
		} else {
			l.log.Info("link closed", "err", err)
		}
	}()
	ticker := time.NewTicker(l.n.cfg.KeepaliveInterval)
	defer ticker.Stop()
	held := false
	for {
		changed := l.faults.changes()
		select {
		case <-l.done:
			l.sayGoodbye()
			return
		case <-ticker.C:
			l.keepalive()
		case <-l.wake:
		case <-changed:
		}
		if l.faults.match(l.peer.Name, l.peer.Addr).blocksLink(Outbound) {
			// Cut: hold the queue, as TCP holds its bytes, until the cut
			// is lifted (changed) or the keepalive gives up.
			if !held {
				held = true
				l.framesHeld.Add(1)
			}
			continue
		}
		held = false
		if batch := l.take(); batch != nil {
			l.writeBatch(batch)
			l.recycle(batch)
		}
	}
}

// take hands the writer the queue and the socket; nil if the queue is
// empty or a direct write owns the socket (it wakes the writer when it is
// done).
func (l *Link) take() []segment {
	l.mu.Lock()
	if l.writing || len(l.queue) == 0 {
		l.mu.Unlock()
		return nil
	}
	b := l.queue
	l.queue, l.spare = l.spare, nil
	l.queued = 0
	l.partial = false
	l.writing = true
	l.mu.Unlock()
	return b
}

// recycle keeps the written batch's buffers and gives up the socket; if
// frames were queued meanwhile, the writer goes round again.
func (l *Link) recycle(b []segment) {
	l.mu.Lock()
	for i := range b {
		if len(l.free) < maxFreeBufs && cap(b[i].buf) <= maxFreeBufCap {
			l.free = append(l.free, b[i].buf[:0])
		}
		b[i] = segment{}
	}
	if l.spare == nil {
		l.spare = b[:0]
	}
	l.writing = false
	again := len(l.queue) > 0
	l.mu.Unlock()
	if again {
		l.wakeWriter()
	}
}

func (l *Link) wakeWriter() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// writeDirect writes l.dbuf with one non-blocking write, from Send, with
// l.writing set by Send. What the socket does not take goes to the head
// of the queue, for the writer; a socket error closes the link, as in
// writeBatch.
func (l *Link) writeDirect() {
	buf := l.dbuf
	var (
		n   int
		err error
	)
	// Direct writes exclude each other (writing), so only the goodbye can
	// hold wmu, across a blocking write to a peer that may not read: never
	// wait for it (Send may run under the node's peer lock). The frame is
	// then one the socket did not take: queued for the writer or, as the
	// link is closing, dropped with the rest of its queue.
	if l.wmu.TryLock() {
		n, err = l.tryWrite()
		l.wmu.Unlock()
	}
	if n > 0 {
		l.bytesSent.Add(uint64(n))
	}
	if n == len(buf) {
		l.directWrites.Add(1)
	}
	if err != nil {
		l.writeBroken.Store(true)
		l.closeWith(fmt.Errorf("transport: write to %s: %w", l.peer.Name, err), false)
	}
	l.mu.Lock()
	l.writing = false
	if n < len(buf) && !l.closed {
		rest := append([]byte(nil), buf[n:]...)
		l.queue = append(l.queue, segment{})
		copy(l.queue[1:], l.queue)
		l.queue[0] = segment{buf: rest}
		l.queued += len(rest)
		l.partial = l.partial || n > 0
	} else if n > 0 && n < len(buf) {
		// Closed mid-frame: no goodbye after half a frame.
		l.writeBroken.Store(true)
	}
	again := len(l.queue) > 0
	l.mu.Unlock()
	if again {
		l.wakeWriter()
	}
}

func (l *Link) writeBatch(batch []segment) {
	for _, seg := range batch {
		if d := time.Until(seg.release); !seg.release.IsZero() && d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
		}
		for off := 0; off < len(seg.buf); off += writeChunk {
			end := min(off+writeChunk, len(seg.buf))
			// Set the deadline, then check done: closeWith sets its own
			// deadline after closing done, so either order stops us promptly.
			l.conn.SetWriteDeadline(time.Now().Add(l.n.cfg.WriteTimeout))
			if l.isDone() {
				return
			}
			if _, err := l.conn.Write(seg.buf[off:end]); err != nil {
				l.writeBroken.Store(true)
				if errors.Is(err, os.ErrDeadlineExceeded) && !l.isDone() {
					err = fmt.Errorf("%w (peer not reading for %s)", err, l.n.cfg.WriteTimeout)
				}
				l.closeWith(fmt.Errorf("transport: write to %s: %w", l.peer.Name, err), false)
				return
			}
			l.bytesSent.Add(uint64(end - off))
		}
	}
}

// markRecv records that a frame arrived in the current keepalive interval.
func (l *Link) markRecv() {
	if t := l.ticks.Load(); l.lastRecv.Load() != t {
		l.lastRecv.Store(t)
	}
}

// keepalive closes a link that has been silent for too long, else pings.
// Silent: nothing received in the last KeepaliveMisses whole intervals
// (the interval of the last frame counts as heard).
func (l *Link) keepalive() {
	now := l.now()
	t := l.ticks.Add(1)
	if idle := t - l.lastRecv.Load() - 1; idle >= int64(l.n.cfg.KeepaliveMisses) && !l.busy.Load() {
		err := detailed(ErrKeepalive, fmt.Sprintf("nothing received from %s for %d keepalive intervals of %s", l.peer.Name, idle, l.n.cfg.KeepaliveInterval))
		l.log.Warn("closing link", "err", err)
		l.closeWith(err, true)
		return
	}
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], uint64(now))
	l.send(framePing, p[:], true)
}

func (l *Link) sayGoodbye() {
	l.mu.Lock()
	g := l.goodbye
	l.mu.Unlock()
	// A cut link cannot say goodbye either.
	if g == nil || l.faults.match(l.peer.Name, l.peer.Addr).blocksLink(Outbound) {
		return
	}
	l.wmu.Lock() // after a direct write in progress, which may leave the stream mid-frame
	defer l.wmu.Unlock()
	if !l.writeBroken.Load() {
		l.conn.Write(g) // deadline set by closeWith
	}
}
