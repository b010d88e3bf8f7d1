package cluster

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// Profile names a set of membership timings. See the table in doc.go.
type Profile string

const (
	// ProfileFast is for tests on loopback: about 1 s crash detection.
	ProfileFast Profile = "fast"
	// ProfileLocal is memberlist's DefaultLocalConfig: one host, or a very
	// quiet network.
	ProfileLocal Profile = "local"
	// ProfileLAN is memberlist's DefaultLANConfig: one data centre.
	ProfileLAN Profile = "lan"
	// ProfileWAN is memberlist's DefaultWANConfig: across regions.
	ProfileWAN Profile = "wan"
)

// Profiles lists every profile, fastest first.
func Profiles() []Profile { return []Profile{ProfileFast, ProfileLocal, ProfileLAN, ProfileWAN} }

// ParseProfile accepts a profile name in any case; "" means ProfileLAN.
func ParseProfile(s string) (Profile, error) {
	if s == "" {
		return ProfileLAN, nil
	}
	p := Profile(strings.ToLower(strings.TrimSpace(s)))
	for _, known := range Profiles() {
		if p == known {
			return p, nil
		}
	}
	return "", fmt.Errorf("cluster: unknown profile %q (want fast, local, lan or wan)", s)
}

// ProfileSettings are the memberlist tunables a profile sets, plus ours.
// Field meanings are memberlist's (config.go); RejoinInterval and
// DeadNodeReclaimTime are the ones memberlist leaves to the application.
type ProfileSettings struct {
	Profile                 Profile
	ProbeInterval           time.Duration // one random member probed per interval
	ProbeTimeout            time.Duration // wait for the direct ack before indirect probes
	IndirectChecks          int           // peers asked to ping-req a silent member
	SuspicionMult           int           // suspicion min = mult × max(1, log10 N) × ProbeInterval
	SuspicionMaxTimeoutMult int           // suspicion max = this × min (Lifeguard)
	RetransmitMult          int           // each broadcast is sent mult × ceil(log10(N+1)) times
	GossipInterval          time.Duration
	GossipNodes             int
	PushPullInterval        time.Duration // full-state anti-entropy with one random peer
	GossipToTheDeadTime     time.Duration // dead members still get gossip, and are forgotten after it
	TCPTimeout              time.Duration // push-pull and join stream timeout
	DeadNodeReclaimTime     time.Duration // a dead name may come back from a new address after this
	RejoinInterval          time.Duration // our healing loop period
}

// Settings returns the profile's values. An unknown profile gets LAN's.
func (p Profile) Settings() ProfileSettings {
	switch p {
	case ProfileFast:
		return ProfileSettings{
			Profile:                 ProfileFast,
			ProbeInterval:           200 * time.Millisecond,
			ProbeTimeout:            100 * time.Millisecond,
			IndirectChecks:          1,
			SuspicionMult:           2,
			SuspicionMaxTimeoutMult: 6,
			RetransmitMult:          2,
			GossipInterval:          50 * time.Millisecond,
			GossipNodes:             3,
			PushPullInterval:        5 * time.Second,
			GossipToTheDeadTime:     5 * time.Second,
			TCPTimeout:              time.Second,
			DeadNodeReclaimTime:     500 * time.Millisecond,
			RejoinInterval:          500 * time.Millisecond,
		}
	case ProfileLocal:
		return ProfileSettings{
			Profile:                 ProfileLocal,
			ProbeInterval:           time.Second,
			ProbeTimeout:            200 * time.Millisecond,
			IndirectChecks:          1,
			SuspicionMult:           3,
			SuspicionMaxTimeoutMult: 6,
			RetransmitMult:          2,
			GossipInterval:          100 * time.Millisecond,
			GossipNodes:             3,
			PushPullInterval:        15 * time.Second,
			GossipToTheDeadTime:     15 * time.Second,
			TCPTimeout:              time.Second,
			DeadNodeReclaimTime:     5 * time.Second,
			RejoinInterval:          2 * time.Second,
		}
	case ProfileWAN:
		return ProfileSettings{
			Profile:                 ProfileWAN,
			ProbeInterval:           5 * time.Second,
			ProbeTimeout:            3 * time.Second,
			IndirectChecks:          3,
			SuspicionMult:           6,
			SuspicionMaxTimeoutMult: 6,
			RetransmitMult:          4,
			GossipInterval:          500 * time.Millisecond,
			GossipNodes:             4,
			PushPullInterval:        60 * time.Second,
			GossipToTheDeadTime:     60 * time.Second,
			TCPTimeout:              30 * time.Second,
			DeadNodeReclaimTime:     30 * time.Second,
			RejoinInterval:          15 * time.Second,
		}
	default:
		return ProfileSettings{
			Profile:                 ProfileLAN,
			ProbeInterval:           time.Second,
			ProbeTimeout:            500 * time.Millisecond,
			IndirectChecks:          3,
			SuspicionMult:           4,
			SuspicionMaxTimeoutMult: 6,
			RetransmitMult:          4,
			GossipInterval:          200 * time.Millisecond,
			GossipNodes:             3,
			PushPullInterval:        30 * time.Second,
			GossipToTheDeadTime:     30 * time.Second,
			TCPTimeout:              10 * time.Second,
			DeadNodeReclaimTime:     10 * time.Second,
			RejoinInterval:          5 * time.Second,
		}
	}
}

// SuspicionTimeout is memberlist's suspicion timer for a cluster of n
// members (util.go suspicionTimeout; the code uses log10 N, not log(N+1) as
// its comment says). With k = SuspicionMult−2 expected confirmations (0 when
// fewer than k other members can confirm), the timer starts at max and
// shrinks toward min as confirmations arrive; with k = 0 it is min.
func (s ProfileSettings) SuspicionTimeout(n int) (minTimeout, maxTimeout time.Duration) {
	scale := math.Max(1, math.Log10(math.Max(1, float64(n))))
	minTimeout = time.Duration(s.SuspicionMult) * time.Duration(scale*1000) * s.ProbeInterval / 1000
	return minTimeout, time.Duration(s.SuspicionMaxTimeoutMult) * minTimeout
}

// expectedConfirmations is memberlist's k for a cluster of n members.
func (s ProfileSettings) expectedConfirmations(n int) int {
	k := s.SuspicionMult - 2
	if n-2 < k {
		return 0
	}
	return k
}

// CrashDetection estimates how long after a crash every survivor of an
// n-member cluster has marked the member dead.
//
//	typical = ProbeInterval/2 (until someone probes it)
//	        + ProbeInterval   (direct timeout, then indirect probes until the interval ends)
//	        + suspicion min   (confirmations arrive quickly, or k = 0)
//	        + 2 × GossipInterval (the dead message spreads)
//	upper   = (n−1) × ProbeInterval (every prober visits it last in its round)
//	        + ProbeInterval + suspicion max (no confirmations) + 2 × GossipInterval
//
// Neither counts Lifeguard's awareness, which slows the probes of a node
// that sees itself as unhealthy (up to 8×), nor scheduling delay.
func (s ProfileSettings) CrashDetection(n int) (typical, upper time.Duration) {
	minT, maxT := s.SuspicionTimeout(n)
	if s.expectedConfirmations(n) == 0 {
		maxT = minT
	}
	gossip := 2 * s.GossipInterval
	typical = s.ProbeInterval/2 + s.ProbeInterval + minT + gossip
	rounds := max(n-1, 1)
	upper = time.Duration(rounds)*s.ProbeInterval + s.ProbeInterval + maxT + gossip
	return typical, upper
}

// MinDetection is a lower bound on how long after a cut (or a crash) any
// member can declare the member on the other side dead: its first probe
// that meets the cut fails no earlier than one ProbeInterval after it was
// sent (memberlist waits out the interval for indirect acks), and the
// suspicion timer never runs shorter than SuspicionMult × ProbeInterval
// (its minimum, for any cluster size). Lifeguard only makes it longer. It
// does not hold if a suspicion was already running before the cut.
func (s ProfileSettings) MinDetection() time.Duration {
	return s.ProbeInterval + time.Duration(s.SuspicionMult)*s.ProbeInterval
}

// HealBound is how long after a partition heals the two sides are one
// cluster again, given that both sides still run their rejoin loops:
//
//	RejoinInterval     (the next rejoin round finds the missing members;
//	                    rounds start on schedule, a join stuck on the cut included)
//	+ ProbeInterval    (the quick retry that carries the refuted incarnations,
//	                    needed only when a side healed before its incarnation raise spread)
//	+ 4 × GossipInterval (the news spreads inside each side)
//
// A member reachable again from only one side heals just as fast: one
// successful join is a push-pull in both directions.
func (s ProfileSettings) HealBound() time.Duration {
	return s.RejoinInterval + s.ProbeInterval + 4*s.GossipInterval
}

// HealBoundInFlight is HealBound. It once added TCPTimeout, for a rejoin
// round that was still waiting for a join to a cut address when the
// partition healed; rounds no longer wait for such joins (heal.go, Joins
// in flight), so the bound holds with a join in flight.
//
// Deprecated: use HealBound.
func (s ProfileSettings) HealBoundInFlight() time.Duration {
	return s.HealBound()
}

// apply copies the settings into a memberlist config.
func (s ProfileSettings) apply(c *memberlist.Config) {
	c.ProbeInterval = s.ProbeInterval
	c.ProbeTimeout = s.ProbeTimeout
	c.IndirectChecks = s.IndirectChecks
	c.SuspicionMult = s.SuspicionMult
	c.SuspicionMaxTimeoutMult = s.SuspicionMaxTimeoutMult
	c.RetransmitMult = s.RetransmitMult
	c.GossipInterval = s.GossipInterval
	c.GossipNodes = s.GossipNodes
	c.PushPullInterval = s.PushPullInterval
	c.GossipToTheDeadTime = s.GossipToTheDeadTime
	c.TCPTimeout = s.TCPTimeout
	c.DeadNodeReclaimTime = s.DeadNodeReclaimTime
}
