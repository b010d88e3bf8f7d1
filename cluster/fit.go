package cluster

import (
	"fmt"
	"slices"
	"time"
)

// Does the profile fit the network? memberlist declares a member dead
// when its probes go unanswered for ProbeTimeout (then indirect probes,
// then the suspicion timer); on a network whose round trips come close to
// the probe timeout, healthy members are suspected and declared dead, and
// every decision built on the view (partition status, split-brain) is
// built on noise. This node measures what it can: the round trip of each
// of its successful direct probes (PingDelegate), and how often its own
// suspicions of live members are refuted. Either crossing its threshold
// sets PartitionStatus.ProfileWarning (shown by the health operation) and
// logs a warning once; the warning clears when both are back well below.

const (
	fitSamples      = 64               // round trips kept
	fitMinSamples   = 16               // before any verdict
	fitRefutedLimit = 3                // refuted suspicions in fitWindow
	fitWindow       = 60 * time.Second // for refuted suspicions
)

type profileFit struct {
	rtts    []time.Duration // ring of the last fitSamples round trips
	next    int
	refutes []time.Time // refuted suspicions in the last fitWindow
	warning string
}

func (f *profileFit) refuted(now time.Time) {
	f.refutes = append(f.refutes, now)
}

// p90 is the 90th percentile of the kept round trips (0 with too few).
func (f *profileFit) p90() time.Duration {
	if len(f.rtts) < fitMinSamples {
		return 0
	}
	s := slices.Clone(f.rtts)
	slices.Sort(s)
	return s[len(s)*9/10]
}

// judge updates the warning; it reports whether it changed.
func (f *profileFit) judge(s ProfileSettings, now time.Time) bool {
	f.refutes = slices.DeleteFunc(f.refutes, func(t time.Time) bool { return now.Sub(t) > fitWindow })
	p90 := f.p90()
	var w string
	switch {
	case p90 > s.ProbeTimeout/2:
		w = fmt.Sprintf("profile %s: probe round trips reach %s (90th percentile of the last %d), against a probe timeout of %s: healthy nodes will be declared dead; use a slower profile",
			s.Profile, p90.Round(time.Millisecond), len(f.rtts), s.ProbeTimeout)
	case len(f.refutes) >= fitRefutedLimit:
		w = fmt.Sprintf("profile %s: %d suspicions of live members refuted in the last %s (probe timeout %s): the network is slower than the profile assumes; use a slower profile",
			s.Profile, len(f.refutes), fitWindow, s.ProbeTimeout)
	case f.warning != "" && (p90 > s.ProbeTimeout/4 || len(f.refutes) > 0):
		w = f.warning // not yet well below: keep it (hysteresis)
	}
	if w == f.warning {
		return false
	}
	f.warning = w
	return true
}

// observeRTT records the round trip of a successful direct probe.
func (c *Cluster) observeRTT(rtt time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	f := &c.fit
	if len(f.rtts) < fitSamples {
		f.rtts = append(f.rtts, rtt)
	} else {
		f.rtts[f.next] = rtt
		f.next = (f.next + 1) % fitSamples
	}
	c.judgeFitLocked(time.Now())
}

func (c *Cluster) judgeFitLocked(now time.Time) {
	if !c.fit.judge(c.settings, now) {
		return
	}
	if c.fit.warning != "" {
		c.log.Warn("cluster: the membership profile does not fit this network", "warning", c.fit.warning)
	} else {
		c.log.Info("cluster: the membership profile fits the network again", "profile", string(c.settings.Profile))
	}
	c.afterChangeLocked()
}
