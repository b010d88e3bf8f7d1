package cluster

import (
	"testing"
	"time"
)

// TestJoinLimit: joins to one address are bounded while they are within
// memberlist's TCPTimeout, and a join past it no longer counts (it cannot
// still be waiting on the network).
func TestJoinLimit(t *testing.T) {
	for _, p := range Profiles() {
		c := &Cluster{settings: p.Settings()}
		limit := c.joinLimit()
		// The rejoin loop alone starts ceil(TCPTimeout / RejoinInterval) + 1
		// joins per TCPTimeout; one more is left for the checks.
		r := c.settings.RejoinInterval
		if want := int((c.settings.TCPTimeout+r-1)/r) + 2; limit != want {
			t.Errorf("%s: joinLimit %d, want %d", p, limit, want)
		}
		var started []time.Time
		for range limit {
			at, ok := c.startJoin("10.0.0.1:7946")
			if !ok {
				t.Fatalf("%s: join refused below the limit (%d in flight)", p, len(started))
			}
			started = append(started, at)
		}
		if _, ok := c.startJoin("10.0.0.1:7946"); ok {
			t.Errorf("%s: join %d to one address started; limit %d", p, limit+1, limit)
		}
		if _, ok := c.startJoin("10.0.0.2:7946"); !ok {
			t.Errorf("%s: the limit is per address, another was refused", p)
		}
		// One join is past its timeout: it no longer counts.
		c.mu.Lock()
		c.joining["10.0.0.1:7946"][0] = time.Now().Add(-c.settings.TCPTimeout - time.Millisecond)
		c.mu.Unlock()
		if _, ok := c.startJoin("10.0.0.1:7946"); !ok {
			t.Errorf("%s: a join past its timeout still counted", p)
		}
		for _, at := range started[1:] {
			c.endJoin("10.0.0.1:7946", at)
		}
		c.mu.Lock()
		left := len(c.joining["10.0.0.1:7946"])
		c.mu.Unlock()
		if left != 2 { // the overdue one and the last started
			t.Errorf("%s: %d joins recorded after the ends, want 2", p, left)
		}
	}
}
