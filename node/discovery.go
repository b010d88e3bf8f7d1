package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/transport"
)

// checkedProvider runs discovery and then proves, with a node-link
// handshake, that each discovered peer holds our cluster name and secret.
// Peers that refuse are left out of the join and logged as errors (at
// most once a minute each): a wrong secret or a foreign cluster shows up
// at once, on both sides, instead of as a gossip layer that silently
// drops undecryptable packets.
type checkedProvider struct {
	n     *Node
	inner cluster.Provider

	mu        sync.Mutex
	logged    map[string]time.Time
	ok        map[string]bool
	nameTaken error // a peer said our name belongs to another live node
}

// nameTakenErr reports a name conflict seen during discovery (nil-safe).
func (p *checkedProvider) nameTakenErr() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nameTaken
}

func (p *checkedProvider) Name() string { return p.inner.Name() }

func (p *checkedProvider) Discover(ctx context.Context) ([]string, error) {
	addrs, err := p.inner.Discover(ctx)
	if err != nil || len(addrs) == 0 {
		return addrs, err
	}
	out := make([]string, 0, len(addrs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, a := range addrs {
		if a == p.n.net.Addr() {
			continue
		}
		p.mu.Lock()
		known := p.ok[a]
		p.mu.Unlock()
		if known {
			mu.Lock()
			out = append(out, a)
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			err := ProbeLink(cctx, p.n, addr)
			if errors.Is(err, transport.ErrNameTaken) {
				p.mu.Lock()
				if p.nameTaken == nil {
					p.nameTaken = err
					p.n.log.Error("refused by a peer: this node's name is in use", "peer_addr", addr, "err", err)
				}
				p.mu.Unlock()
				return
			}
			if errors.Is(err, transport.ErrAuth) || errors.Is(err, transport.ErrClusterMismatch) || errors.Is(err, transport.ErrSameName) {
				p.mu.Lock()
				last := p.logged[addr]
				if time.Since(last) > time.Minute {
					p.logged[addr] = time.Now()
					p.n.log.Error("peer refused: not joining it", "peer_addr", addr, "err", err)
				}
				p.mu.Unlock()
				return
			}
			if err == nil {
				p.mu.Lock()
				p.ok[addr] = true
				p.mu.Unlock()
			}
			// Unreachable peers stay in the list: the join reports them,
			// and the rejoin loop tries again.
			mu.Lock()
			out = append(out, addr)
			mu.Unlock()
		}(a)
	}
	wg.Wait()
	return out, nil
}
