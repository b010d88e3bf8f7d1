package clustertest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Step is one fault of a churn schedule.
type Step struct {
	At     time.Duration // since the start of the churn
	Action string        // kill, restart, partition, heal, delay
	Node   int           // kill, restart; delay: the sender
	Peer   int           // delay: the receiver
	Groups [][]int       // partition
	Delay  time.Duration // delay
	Jitter time.Duration // delay
}

func (s Step) String() string {
	at := fmt.Sprintf("+%6.3fs ", s.At.Seconds())
	switch s.Action {
	case "kill", "restart":
		return fmt.Sprintf("%s%s %d", at, s.Action, s.Node)
	case "partition":
		return fmt.Sprintf("%spartition %v", at, s.Groups)
	case "delay":
		return fmt.Sprintf("%sdelay %d->%d %s±%s", at, s.Node, s.Peer, s.Delay, s.Jitter)
	}
	return at + s.Action
}

// ChurnOptions shape a random fault schedule.
type ChurnOptions struct {
	Nodes int
	Span  time.Duration // steps are scheduled in [0, Span)
	// MinGap and MaxGap bound the time between steps (default 0.4 s and
	// 1.5 s).
	MinGap, MaxGap time.Duration
	// MaxDown is the most nodes down at once (default (Nodes-1)/2, so a
	// majority always runs).
	MaxDown int
	// Keep are nodes never killed (they hold the test's senders).
	Keep []int
}

// ChurnSchedule returns a random schedule of kill, restart, partition,
// heal and delay steps that depends only on the seed and the options, so
// a logged seed replays the same faults. It models the cluster as it goes:
// only running nodes are killed (never a Keep node, never more than
// MaxDown at once), only killed ones restarted, a partition only when
// none is in force, a heal only when something is to heal. Partitions
// put every node on one of two sides, down ones included. The caller
// heals and restarts what is left at the end.
func ChurnSchedule(seed uint64, o ChurnOptions) []Step {
	if o.MinGap == 0 {
		o.MinGap = 400 * time.Millisecond
	}
	if o.MaxGap <= o.MinGap {
		o.MaxGap = max(o.MinGap, 1500*time.Millisecond)
	}
	if o.MaxDown == 0 {
		o.MaxDown = max((o.Nodes-1)/2, 1)
	}
	rng := rand.New(rand.NewPCG(seed, 0xc4a05))
	down := map[int]bool{}
	partitioned, delayed := false, false
	var steps []Step
	at := time.Duration(0)
	for {
		at += o.MinGap + time.Duration(rng.Int64N(int64(o.MaxGap-o.MinGap)+1))
		if at >= o.Span {
			return steps
		}
		var killable, dead []int
		for i := 0; i < o.Nodes; i++ {
			switch {
			case down[i]:
				dead = append(dead, i)
			case !slices.Contains(o.Keep, i):
				killable = append(killable, i)
			}
		}
		var choices []string
		if len(dead) < o.MaxDown && len(killable) > 0 {
			choices = append(choices, "kill")
		}
		if len(dead) > 0 {
			choices = append(choices, "restart", "restart")
		}
		if !partitioned && o.Nodes >= 3 {
			choices = append(choices, "partition")
		}
		if partitioned || delayed {
			choices = append(choices, "heal", "heal")
		}
		if o.Nodes >= 2 {
			choices = append(choices, "delay")
		}
		s := Step{At: at, Action: choices[rng.IntN(len(choices))]}
		switch s.Action {
		case "kill":
			s.Node = killable[rng.IntN(len(killable))]
			down[s.Node] = true
		case "restart":
			s.Node = dead[rng.IntN(len(dead))]
			delete(down, s.Node)
		case "partition":
			perm := rng.Perm(o.Nodes)
			cut := 1 + rng.IntN(o.Nodes-1)
			a, b := slices.Clone(perm[:cut]), slices.Clone(perm[cut:])
			slices.Sort(a)
			slices.Sort(b)
			s.Groups = [][]int{a, b}
			partitioned = true
		case "heal":
			partitioned, delayed = false, false
		case "delay":
			var up []int // the sender must be running to take the rule
			for i := 0; i < o.Nodes; i++ {
				if !down[i] {
					up = append(up, i)
				}
			}
			s.Node = up[rng.IntN(len(up))]
			s.Peer = (s.Node + 1 + rng.IntN(o.Nodes-1)) % o.Nodes
			// Half below the detection threshold, half well above it.
			if rng.IntN(2) == 0 {
				s.Delay = time.Duration(5+rng.IntN(25)) * time.Millisecond
			} else {
				s.Delay = time.Duration(300+rng.IntN(1200)) * time.Millisecond
			}
			s.Jitter = s.Delay / 4
			delayed = true
		}
		steps = append(steps, s)
	}
}
