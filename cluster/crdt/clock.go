package crdt

import (
	"sync/atomic"
	"time"
)

// MaxAhead is how far into the local future an observed timestamp may be
// and still move a Clock: one node with a wrong clock cannot drag the
// others further than this.
const MaxAhead = time.Minute

// Clock is a hybrid logical clock (see the package doc). The zero value
// reads time.Now; it is safe for concurrent use.
type Clock struct {
	last atomic.Uint64
	now  func() time.Time
}

// NewClock returns a Clock that reads now instead of time.Now (for tests).
func NewClock(now func() time.Time) *Clock { return &Clock{now: now} }

func (c *Clock) wall() uint64 {
	if c.now != nil {
		return uint64(c.now().UnixNano())
	}
	return uint64(time.Now().UnixNano())
}

// Tick returns a new timestamp: the wall clock, or one past the clock's
// last timestamp if that is not smaller. Timestamps from one Clock
// strictly increase.
func (c *Clock) Tick() uint64 {
	for {
		last := c.last.Load()
		ts := max(c.wall(), last+1)
		if c.last.CompareAndSwap(last, ts) {
			return ts
		}
	}
}

// Observe moves the clock past a timestamp seen from a peer, unless the
// timestamp is MaxAhead or more into the local future. It reports whether
// the timestamp was taken into account (false only for one too far ahead).
func (c *Clock) Observe(ts uint64) bool {
	if ts >= c.wall()+uint64(MaxAhead) {
		return false
	}
	for {
		last := c.last.Load()
		if ts <= last || c.last.CompareAndSwap(last, ts) {
			return true
		}
	}
}

// Last returns the clock's latest timestamp (0 before the first).
func (c *Clock) Last() uint64 { return c.last.Load() }

// Horizon returns the time before which a tombstone is past a retirement
// margin: the wall clock minus margin (0 if that is before the epoch).
func (c *Clock) Horizon(margin time.Duration) uint64 {
	w, m := c.wall(), uint64(max(margin, 0))
	if w < m {
		return 0
	}
	return w - m
}
