package crdt_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster/crdt"
)

// The simulation: replicas that write and delete keys, send each
// effective change as a delta to every peer (each delta dropped,
// duplicated or delayed at random, and dropped between the sides of a
// partition), and exchange full states with a random peer of their side
// now and then (push-pull), and with every peer when a partition heals
// (memberlist's push-pull on rejoin). Everything goes through the wire
// encoding. Each replica has its own clock, skewed.

const simStep = 100 * time.Millisecond

type simNode struct {
	name  string
	m     tMap
	clock *crdt.Clock
	// The resurrection check: per key, the greatest entry this replica
	// ever held, and the write count when it first held it.
	high   map[string]*tEntry
	highAt map[string]int
}

type simMsg struct {
	to, at int
	b      []byte
}

type sim struct {
	t      *testing.T
	rng    *rand.Rand
	now    time.Time
	step   int
	nodes  []*simNode
	side   []int // partition side of each node
	inbox  []simMsg
	writes int
	margin time.Duration // 0: no retirement

	// What happened, so that a test can say it tested something.
	retired, partitions, dropped, deltas int
	resurrections                        []string
}

func newSim(t *testing.T, seed uint64, n int, margin, maxSkew time.Duration) *sim {
	s := &sim{t: t, rng: rand.New(rand.NewPCG(seed, 99)), now: time.Unix(1_700_000_000, 0), margin: margin, side: make([]int, n)}
	for i := range n {
		skew := time.Duration(s.rng.Int64N(int64(maxSkew) + 1))
		nd := &simNode{name: fmt.Sprintf("n%d", i), m: tMap{}, high: map[string]*tEntry{}, highAt: map[string]int{}}
		nd.clock = crdt.NewClock(func() time.Time { return s.now.Add(skew) })
		s.nodes = append(s.nodes, nd)
	}
	return s
}

func (s *sim) horizon(nd *simNode) uint64 {
	if s.margin == 0 {
		return 0
	}
	return nd.clock.Horizon(s.margin)
}

// apply merges entries from a peer as a replica does.
func (s *sim) apply(i int, b []byte) []*tEntry {
	es, err := crdt.Decode[tEntry](b)
	if err != nil {
		s.t.Fatalf("decode: %v", err)
	}
	nd := s.nodes[i]
	var changed []*tEntry
	for _, e := range es {
		nd.clock.Observe(e.Stamp())
		if nd.m.Accept(e, s.horizon(nd)) {
			s.held(nd, e)
			changed = append(changed, e)
		}
	}
	return changed
}

// held runs the resurrection check on an entry nd now holds: a live entry
// that loses to one nd held before it was written is one that nd had seen
// superseded, come back.
func (s *sim) held(nd *simNode, e *tEntry) {
	hi := nd.high[e.K]
	var seq int
	fmt.Sscanf(e.V, "w%d", &seq)
	if hi != nil && e.Compare(hi) < 0 {
		if !e.Deleted && seq <= nd.highAt[e.K] {
			s.resurrections = append(s.resurrections, fmt.Sprintf("step %d, %s: %v came back after %v", s.step, nd.name, e, hi))
		}
		return
	}
	nd.high[e.K], nd.highAt[e.K] = e, s.writes
}

func (s *sim) send(from int, es []*tEntry) {
	for _, e := range es {
		b := crdt.Encode([]*tEntry{e})
		for to := range s.nodes {
			if to == from {
				continue
			}
			s.deltas++
			if s.side[to] != s.side[from] || s.rng.IntN(5) == 0 {
				s.dropped++
				continue
			}
			copies := 1 + s.rng.IntN(2)
			for range copies {
				s.inbox = append(s.inbox, simMsg{to: to, at: s.step + s.rng.IntN(5), b: b})
			}
		}
	}
}

// write makes node i write or delete a key, as the registry's and
// placement's own writes do: a new generation over what it holds.
func (s *sim) write(i int) {
	nd := s.nodes[i]
	k := string(rune('a' + s.rng.IntN(6)))
	cur := nd.m[k]
	s.writes++
	var e *tEntry
	if cur != nil && !cur.Deleted && s.rng.IntN(2) == 0 {
		t := *cur
		t.Deleted, t.DelTS, t.DelBy = true, nd.clock.Tick(), nd.name
		e = &t
	} else {
		gen := uint64(1)
		if cur != nil {
			gen = cur.Gen + 1
		}
		e = &tEntry{K: k, Gen: gen, TS: nd.clock.Tick(), Node: nd.name, V: fmt.Sprintf("w%d", s.writes)}
	}
	if nd.m.Merge(e) {
		s.held(nd, e)
		s.send(i, []*tEntry{e})
	}
}

func (s *sim) pushPull(i, j int) {
	bi, bj := crdt.Encode(s.nodes[i].m.Values()), crdt.Encode(s.nodes[j].m.Values())
	s.apply(j, bi)
	s.apply(i, bj)
}

func (s *sim) retire() {
	if s.margin == 0 {
		return
	}
	for _, nd := range s.nodes {
		s.retired += len(nd.m.Retire(nd.clock.Horizon(s.margin), nil))
	}
}

// run plays steps of random writes, deliveries, push-pulls, and
// partitions that last at most maxCut.
func (s *sim) run(steps int, maxCut time.Duration) {
	cutUntil := -1
	for range steps {
		s.step++
		s.now = s.now.Add(simStep)
		switch {
		case cutUntil < 0 && s.rng.IntN(40) == 0 && maxCut > 0:
			s.partitions++
			for i := range s.side {
				s.side[i] = s.rng.IntN(2)
			}
			cutUntil = s.step + 1 + s.rng.IntN(int(maxCut/simStep))
		case cutUntil >= 0 && s.step >= cutUntil:
			cutUntil = -1
			clear(s.side)
			s.healAll()
		}
		for range 1 + s.rng.IntN(3) {
			s.write(s.rng.IntN(len(s.nodes)))
		}
		var later []simMsg
		for _, m := range s.inbox {
			if m.at > s.step {
				later = append(later, m)
				continue
			}
			// A delta that changed the replica goes out again (an epidemic).
			s.send(m.to, s.apply(m.to, m.b))
		}
		s.inbox = later
		if s.rng.IntN(4) == 0 {
			i, j := s.rng.IntN(len(s.nodes)), s.rng.IntN(len(s.nodes))
			if i != j && s.side[i] == s.side[j] {
				s.pushPull(i, j)
			}
		}
		s.retire()
	}
	clear(s.side)
}

func (s *sim) healAll() {
	for i := range s.nodes {
		for j := i + 1; j < len(s.nodes); j++ {
			s.pushPull(i, j)
		}
	}
}

func (s *sim) converged() error {
	for _, nd := range s.nodes[1:] {
		if !nd.m.Equal(s.nodes[0].m) {
			return fmt.Errorf("%s and %s differ:\n%s\n%s", s.nodes[0].name, nd.name, dump(s.nodes[0].m), dump(nd.m))
		}
	}
	return nil
}

// Random writes and deletes on 4 replicas, with deltas dropped, duplicated
// and reordered, and partitions: after the last heal and one round of
// push-pull, every replica holds the same map.
func TestReplicasConverge(t *testing.T) {
	var parts, dropped int
	for seed := uint64(1); seed <= 40; seed++ {
		s := newSim(t, seed, 4, 0, 50*time.Millisecond)
		s.run(300, 5*time.Second)
		s.inbox = nil // what is still in flight is lost
		s.healAll()
		if err := s.converged(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if len(s.resurrections) > 0 {
			t.Fatalf("seed %d, without retirement: %s", seed, s.resurrections[0])
		}
		parts += s.partitions
		dropped += s.dropped
	}
	if parts == 0 || dropped == 0 {
		t.Fatalf("the simulation made %d partitions and dropped %d deltas: it tested nothing", parts, dropped)
	}
}

// With retirement: partitions shorter than the margin (less a push-pull
// round and the clock skew) never bring a deleted entry back, and the
// replicas still converge.
func TestRetirementNeverResurrectsWithinMargin(t *testing.T) {
	var retired, parts int
	for seed := uint64(1); seed <= 40; seed++ {
		s := newSim(t, seed, 4, 10*time.Second, 200*time.Millisecond)
		s.run(600, 5*time.Second)
		if len(s.resurrections) > 0 {
			t.Fatalf("seed %d: %d resurrections, the first: %s", seed, len(s.resurrections), s.resurrections[0])
		}
		// Let every tombstone pass the margin on every clock, then
		// converge: only live entries are left, the same everywhere.
		s.inbox = nil
		s.healAll()
		s.now = s.now.Add(s.margin + time.Second)
		s.retire()
		s.healAll()
		if err := s.converged(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		for _, e := range s.nodes[0].m {
			if e.Deleted {
				t.Fatalf("seed %d: tombstone %v outlived the margin", seed, e)
			}
		}
		if len(s.resurrections) > 0 {
			t.Fatalf("seed %d: %s", seed, s.resurrections[0])
		}
		retired += s.retired
		parts += s.partitions
	}
	if retired == 0 || parts == 0 {
		t.Fatalf("%d tombstones retired, %d partitions: the test tested nothing", retired, parts)
	}
}

// The other side of the line: a replica cut off for longer than the
// margin brings back an entry the others deleted and retired. This is
// the documented limit, and it proves the check above can fail.
func TestRetirementPastMarginCanResurrect(t *testing.T) {
	s := newSim(t, 1, 2, 10*time.Second, 0)
	a, b := s.nodes[0], s.nodes[1]
	s.writes++
	e := &tEntry{K: "k", Gen: 1, TS: a.clock.Tick(), Node: a.name, V: "w1"}
	a.m.Merge(e)
	s.held(a, e)
	s.pushPull(0, 1)
	if b.m["k"] == nil || b.m["k"].Compare(e) != 0 {
		t.Fatal("b did not get the entry")
	}
	// Cut; a deletes k; the margin passes; a retires the tombstone.
	tomb := *e
	tomb.Deleted, tomb.DelTS, tomb.DelBy = true, a.clock.Tick(), a.name
	a.m.Merge(&tomb)
	s.held(a, &tomb)
	s.now = s.now.Add(s.margin + time.Second)
	s.retire()
	if a.m["k"] != nil || s.retired != 1 {
		t.Fatalf("the tombstone was not retired: %s", dump(a.m))
	}
	// Heal: b still has the live entry.
	s.pushPull(0, 1)
	if len(s.resurrections) != 1 || !strings.Contains(s.resurrections[0], "came back") {
		t.Fatalf("want one resurrection past the margin, got %v", s.resurrections)
	}
}
