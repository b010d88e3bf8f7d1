package node

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/arsenal-go/arsenal/transport"
)

// peer holds this node's outbound link to one other node. Every frame this
// node sends to that node goes through the one link, in order, so order
// between any sender and receiver process is kept. The peer's own frames
// to us arrive on the link it dialed.
type peer struct {
	n    *Node
	name string

	mu      sync.Mutex
	link    *transport.Link
	dialing bool
	pending [][]byte
	gone    bool
}

// maxPending bounds the frames queued while a link is being dialed.
const maxPending = 1 << 16

func (n *Node) peerFor(name string) *peer {
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	p, ok := n.peers[name]
	if !ok {
		p = &peer{n: n, name: name}
		n.peers[name] = p
	}
	return p
}

// dropPeer forgets the outbound link to name if it leads to incarnation
// inc or an older one (any, when inc is 0). Frames still waiting for a
// dial are kept when inc is set: they may be for the new incarnation, and
// the receiver drops those meant for the old one.
func (n *Node) dropPeer(name string, inc uint64) {
	n.peersMu.Lock()
	p, ok := n.peers[name]
	if !ok {
		n.peersMu.Unlock()
		return
	}
	p.mu.Lock()
	if inc != 0 && p.link != nil && p.link.Peer().Incarnation > inc {
		p.mu.Unlock()
		n.peersMu.Unlock()
		return // already linked to the new incarnation
	}
	delete(n.peers, name)
	n.peersMu.Unlock()
	p.gone = true
	l := p.link
	p.link = nil
	var moved [][]byte
	if inc != 0 {
		moved = p.pending
	} else {
		n.stats.Dropped.Add(uint64(len(p.pending)))
	}
	p.pending = nil
	p.mu.Unlock()
	if l != nil {
		_ = l.Close()
	}
	for _, f := range moved {
		n.sendTo(name, f)
	}
}

// sendTo queues a frame for node; it never blocks on the network. A peer
// is dropped when its node goes down, so an existing peer needs no
// membership check per frame.
func (n *Node) sendTo(node string, frame []byte) {
	n.peersMu.Lock()
	p, ok := n.peers[node]
	n.peersMu.Unlock()
	if !ok {
		if !n.isUp(node) && n.inboundAddr(node) == "" {
			n.stats.Dropped.Add(1)
			return
		}
		p = n.peerFor(node)
	}
	p.send(frame)
}

// inboundAddr is the address a node announced on an inbound link that is
// still open. It lets this node answer a peer that has linked to it but
// is not yet in its membership view (right after a join).
func (n *Node) inboundAddr(name string) string {
	n.inboundMu.Lock()
	defer n.inboundMu.Unlock()
	return n.inbound[name]
}

func (p *peer) send(frame []byte) {
	p.mu.Lock()
	if p.gone {
		p.mu.Unlock()
		p.n.stats.Dropped.Add(1)
		return
	}
	if p.link != nil {
		err := p.link.Send(frame)
		p.mu.Unlock()
		if err != nil {
			p.n.stats.Dropped.Add(1)
		} else {
			p.n.stats.FramesSent.Add(1)
		}
		return
	}
	if len(p.pending) >= maxPending {
		p.mu.Unlock()
		p.n.stats.Dropped.Add(1)
		return
	}
	p.pending = append(p.pending, bytes.Clone(frame)) // the caller reuses frame
	start := !p.dialing
	p.dialing = true
	p.mu.Unlock()
	if start {
		p.n.wg.Add(1)
		go p.dial()
	}
}

// dial connects to the peer, retrying with backoff while it is a member,
// then flushes the queued frames in order.
func (p *peer) dial() {
	n := p.n
	defer n.wg.Done()
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		m, ok := n.member(p.name)
		addr := m.NodeAddr
		if !ok || addr == "" {
			addr = n.inboundAddr(p.name)
		}
		if addr == "" || attempt >= 6 {
			p.fail()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*n.cfg.RequestTimeout)
		go func() {
			select {
			case <-n.stopCh:
				cancel()
			case <-ctx.Done():
			}
		}()
		l, err := n.net.Dial(ctx, addr)
		cancel()
		if err == nil {
			p.mu.Lock()
			if p.gone {
				p.mu.Unlock()
				_ = l.Close()
				return
			}
			p.link = l
			p.dialing = false
			for _, f := range p.pending {
				if l.Send(f) == nil {
					n.stats.FramesSent.Add(1)
				} else {
					n.stats.Dropped.Add(1)
				}
			}
			p.pending = nil
			p.mu.Unlock()
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				select {
				case <-l.Done():
				case <-n.stopCh:
					_ = l.Close()
				}
				p.mu.Lock()
				if p.link == l {
					p.link = nil
				}
				p.mu.Unlock()
			}()
			return
		}
		n.log.Warn("dial failed", "peer", p.name, "addr", addr, "attempt", attempt+1, "err", err)
		select {
		case <-n.stopCh:
			p.fail()
			return
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func (p *peer) fail() {
	p.mu.Lock()
	dropped := len(p.pending)
	p.pending = nil
	p.dialing = false
	p.mu.Unlock()
	p.n.stats.Dropped.Add(uint64(dropped))
}

// LinkInfo describes this node's outbound link to a peer.
type LinkInfo struct {
	Node      string        `json:"node"`
	Connected bool          `json:"connected"`
	Addr      string        `json:"addr,omitempty"`
	RTT       time.Duration `json:"rtt_ns,omitempty"`
}

// Links lists this node's outbound links.
func (n *Node) Links() []LinkInfo {
	n.peersMu.Lock()
	ps := make([]*peer, 0, len(n.peers))
	for _, p := range n.peers {
		ps = append(ps, p)
	}
	n.peersMu.Unlock()
	out := make([]LinkInfo, 0, len(ps))
	for _, p := range ps {
		p.mu.Lock()
		li := LinkInfo{Node: p.name, Connected: p.link != nil}
		if p.link != nil {
			li.Addr = p.link.Peer().Addr
			li.RTT = p.link.RTT()
		}
		p.mu.Unlock()
		out = append(out, li)
	}
	return out
}
