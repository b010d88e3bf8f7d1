package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestProfileFitRoundTrips(t *testing.T) {
	c, _ := newTestView(t, "a", 0) // fast: probe timeout 100 ms
	for range fitMinSamples {
		c.observeRTT(2 * time.Millisecond)
	}
	if w := c.Partition().ProfileWarning; w != "" {
		t.Fatalf("2 ms round trips: %q", w)
	}
	for range fitSamples {
		c.observeRTT(80 * time.Millisecond)
	}
	w := c.Partition().ProfileWarning
	if !strings.Contains(w, "probe round trips reach 80ms") || !strings.Contains(w, "probe timeout of 100ms") {
		t.Fatalf("80 ms round trips against a 100 ms timeout: %q", w)
	}
	// Back to fast round trips: the warning clears once they are well below.
	for range fitSamples {
		c.observeRTT(time.Millisecond)
	}
	if w := c.Partition().ProfileWarning; w != "" {
		t.Errorf("after the network recovered: %q", w)
	}
}

func TestProfileFitRefutedSuspicions(t *testing.T) {
	c, _ := newTestView(t, "a", 0)
	c.nodeAlive(mlNode("b", 2, 1), false)
	for i := range fitRefutedLimit {
		if w := c.Partition().ProfileWarning; w != "" {
			t.Fatalf("after %d refuted suspicions: %q", i, w)
		}
		c.markSuspect("b")
		c.probeOK("b")
	}
	if w := c.Partition().ProfileWarning; !strings.Contains(w, "suspicions of live members refuted") {
		t.Fatalf("after %d refuted suspicions: %q", fitRefutedLimit, w)
	}
	// A minute later they are forgotten.
	c.mu.Lock()
	c.judgeFitLocked(time.Now().Add(fitWindow + time.Second))
	c.mu.Unlock()
	if w := c.Partition().ProfileWarning; w != "" {
		t.Errorf("after the window: %q", w)
	}
}
