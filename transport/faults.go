package transport

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Direction says which way a Block rule cuts, seen from the node that owns
// the Faults.
type Direction uint8

const (
	// Outbound cuts what this node sends to the peer.
	Outbound Direction = 1 << iota
	// Inbound cuts what this node receives from the peer.
	Inbound
	// Both cuts both ways.
	Both = Outbound | Inbound
)

func (d Direction) String() string {
	switch d {
	case 0:
		return "none"
	case Outbound:
		return "outbound"
	case Inbound:
		return "inbound"
	case Both:
		return "both"
	default:
		return fmt.Sprintf("Direction(%d)", uint8(d))
	}
}

// Rule is the fault state for one peer, as reported by Faults.Rules.
type Rule struct {
	Peer  string    // node name or host:port the rule matches
	Block Direction // traffic cut in these directions
	// LinkBlock cuts node links only, in these directions; gossip is
	// untouched (a link-only fault: both nodes stay members).
	LinkBlock Direction
	Delay     time.Duration // added to every frame and packet sent to the peer
	Jitter    time.Duration // plus a uniform random extra in [0, Jitter]
	Refuse    bool          // new connections to or from the peer are refused
}

func (r Rule) String() string {
	var parts []string
	if r.Block != 0 {
		parts = append(parts, "block="+r.Block.String())
	}
	if r.LinkBlock != 0 {
		parts = append(parts, "block_links="+r.LinkBlock.String())
	}
	if r.Delay > 0 || r.Jitter > 0 {
		parts = append(parts, fmt.Sprintf("delay=%s±%s", r.Delay, r.Jitter))
	}
	if r.Refuse {
		parts = append(parts, "refuse")
	}
	return r.Peer + ": " + strings.Join(parts, " ")
}

// Faults is a concurrency-safe set of fault-injection rules for one node's
// transport: node links and gossip both consult it for every frame, packet
// and connection, and every change applies immediately to existing links.
//
// A peer is named either by node name or by node address (host:port); a rule
// for either matches. The Network maps addresses to names from link
// handshakes and memberlist's node-aware addresses.
//
// Blocking acts as a cut network does: gossip packets are lost; frames on a
// node link are held, in order, as TCP holds and retransmits its bytes, and
// flow again when the cut is lifted, unless the link's keepalive (nothing
// received) or write timeout closed it first. A cut link never loses a frame
// while it stays up. Delay acts on what this node sends (like netem on
// egress) and keeps link FIFO order. Refuse fails new connections fast.
type Faults struct {
	mu    sync.Mutex // serialises writers; readers use snap
	rules map[string]Rule
	// snap is an immutable copy of rules, nil when there are none, so the
	// per-frame check is one atomic load on the fast path.
	snap atomic.Pointer[map[string]Rule]
	// changed is closed (and replaced) on every change, so that links
	// holding frames for a cut wake when it is lifted.
	changed atomic.Pointer[chan struct{}]
}

// NewFaults returns an empty rule set.
func NewFaults() *Faults {
	return &Faults{rules: make(map[string]Rule)}
}

// Block cuts traffic with peer in direction dir (added to any existing cut).
func (f *Faults) Block(peer string, dir Direction) {
	f.update(peer, func(r *Rule) { r.Block |= dir & Both })
}

// BlockLinks cuts node links with peer in direction dir (added to any
// existing cut), leaving gossip alone: membership keeps seeing the peer
// while no frame gets through, and new links are refused. Links stay up
// until their keepalive gives up, as with Block.
func (f *Faults) BlockLinks(peer string, dir Direction) {
	f.update(peer, func(r *Rule) { r.LinkBlock |= dir & Both })
}

// Delay delays everything sent to peer by d plus a random extra up to jitter.
// Delay(peer, 0, 0) removes the delay.
func (f *Faults) Delay(peer string, d, jitter time.Duration) {
	f.update(peer, func(r *Rule) { r.Delay, r.Jitter = max(d, 0), max(jitter, 0) })
}

// Refuse makes new connections to and from peer fail. Existing links stay.
func (f *Faults) Refuse(peer string) {
	f.update(peer, func(r *Rule) { r.Refuse = true })
}

// Clear removes every rule for peer.
func (f *Faults) Clear(peer string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.rules, peer)
	f.publish()
}

// ClearAll removes every rule.
func (f *Faults) ClearAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.rules)
	f.publish()
}

// Rules returns the current rules sorted by peer, for diagnostics.
func (f *Faults) Rules() []Rule {
	p := f.snap.Load()
	if p == nil {
		return nil
	}
	out := make([]Rule, 0, len(*p))
	for _, r := range *p {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}

func (f *Faults) update(peer string, fn func(*Rule)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rules[peer]
	r.Peer = peer
	fn(&r)
	if r.Block == 0 && r.LinkBlock == 0 && r.Delay == 0 && r.Jitter == 0 && !r.Refuse {
		delete(f.rules, peer)
	} else {
		f.rules[peer] = r
	}
	f.publish()
}

// changes returns a channel that is closed at the next change of the rules.
func (f *Faults) changes() <-chan struct{} {
	if p := f.changed.Load(); p != nil {
		return *p
	}
	ch := make(chan struct{})
	if f.changed.CompareAndSwap(nil, &ch) {
		return ch
	}
	return *f.changed.Load()
}

// publish must be called with mu held.
func (f *Faults) publish() {
	defer func() {
		ch := make(chan struct{})
		if old := f.changed.Swap(&ch); old != nil {
			close(*old)
		}
	}()
	if len(f.rules) == 0 {
		f.snap.Store(nil)
		return
	}
	m := make(map[string]Rule, len(f.rules))
	for k, v := range f.rules {
		m[k] = v
	}
	f.snap.Store(&m)
}

// effect is what the rules say about one peer.
type effect struct {
	block         Direction
	linkBlock     Direction
	delay, jitter time.Duration
	refuse        bool
}

// match merges the rules for a peer's name and address. Either may be empty.
// A nil *Faults matches nothing.
func (f *Faults) match(name, addr string) effect {
	if f == nil {
		return effect{}
	}
	p := f.snap.Load()
	if p == nil {
		return effect{}
	}
	var e effect
	for _, key := range [2]string{name, addr} {
		if key == "" {
			continue
		}
		if r, ok := (*p)[key]; ok {
			e.block |= r.Block
			e.linkBlock |= r.LinkBlock
			e.delay = max(e.delay, r.Delay)
			e.jitter = max(e.jitter, r.Jitter)
			e.refuse = e.refuse || r.Refuse
		}
	}
	return e
}

func (e effect) blocks(d Direction) bool { return e.block&d != 0 }

// blocksLink is blocks for node links, which link-only rules cut too.
func (e effect) blocksLink(d Direction) bool { return (e.block|e.linkBlock)&d != 0 }

// refuses reports whether a new connection must fail: explicitly refused, or
// cut in either direction (TCP cannot open over a one-way cut).
func (e effect) refuses() bool { return e.refuse || e.block != 0 }

// refusesLink is refuses for node links, which link-only rules cut too.
func (e effect) refusesLink() bool { return e.refuses() || e.linkBlock != 0 }

// wait returns the delay for one frame or packet.
func (e effect) wait() time.Duration {
	d := e.delay
	if e.jitter > 0 {
		d += rand.N(e.jitter + 1)
	}
	return d
}
