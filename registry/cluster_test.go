package registry_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/registry"
)

// In-process nodes on loopback: real memberlist gossip, real node links.

type member struct {
	n   *node.Node
	reg *registry.Registry
}

var secret = []byte("0123456789abcdef-registry-test")

func startNodes(tb testing.TB, size int, profile cluster.Profile) []*member {
	tb.Helper()
	name := fmt.Sprintf("rg%d", time.Now().UnixNano())
	var out []*member
	var seed string
	for i := range size {
		cfg := node.Config{Name: fmt.Sprintf("n%d@127.0.0.1", i+1), Cluster: name, Secret: secret, Profile: profile,
			FactsInterval: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)}
		if seed != "" {
			cfg.Discovery = cluster.StaticSeeds(seed)
		}
		n, err := node.Start(context.Background(), cfg)
		if err != nil {
			tb.Fatal(err)
		}
		if seed == "" {
			seed = n.Addr()
		}
		reg, err := registry.Start(n.Runtime(), n.Cluster(), registry.Config{})
		if err != nil {
			tb.Fatal(err)
		}
		m := &member{n: n, reg: reg}
		out = append(out, m)
		tb.Cleanup(func() { m.close() })
	}
	for _, m := range out {
		testutil.Eventually(tb, 20*time.Second, func() bool { return m.n.Cluster().Topology().Alive == size }, "membership never converged")
	}
	return out
}

func (m *member) close() {
	m.reg.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = m.n.Close(ctx)
}

type sink struct {
	process.Server
	got chan any
}

func (s *sink) HandleInfo(_ *process.Proc, msg any) error { s.got <- msg; return nil }
func (s *sink) HandleCall(_ *process.Proc, _ process.From, req any) (any, error) {
	return fmt.Sprint("echo:", req), nil
}

// Over real nodes: a name registered on one node resolves on the others,
// a send and a call by name reach the process on its node, and the names
// of a crashed node disappear from the survivors.
func TestOverRealNodes(t *testing.T) {
	ms := startNodes(t, 3, cluster.ProfileFast)
	a, c := ms[0], ms[2]
	s := &sink{got: make(chan any, 1)}
	pid, err := a.n.Runtime().Spawn(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.reg.Register("mailbox", pid, map[string]string{"zone": "a"}); err != nil {
		t.Fatal(err)
	}
	on := c.n.Runtime()
	victim, err := on.Spawn(&sink{got: make(chan any, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.reg.Register("on-c", victim, nil); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		testutil.Eventually(t, 10*time.Second, func() bool {
			p, ok := m.reg.Whereis("mailbox")
			q, ok2 := m.reg.Whereis("on-c")
			return ok && ok2 && p == pid && q == victim
		}, "%s does not resolve the names", m.n.Name())
	}
	if err := c.reg.Send("mailbox", "hello"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.Recv(t, s.got, 10*time.Second, "message by name"); got != "hello" {
		t.Fatalf("got %v", got)
	}
	if v, err := c.reg.Call(context.Background(), "mailbox", "ping"); err != nil || v != "echo:ping" {
		t.Fatalf("call by name: %v %v", v, err)
	}
	c.close()
	for _, m := range ms[:2] {
		testutil.Eventually(t, 20*time.Second, func() bool {
			_, ok := m.reg.Whereis("on-c")
			return !ok
		}, "%s still resolves a name of the crashed node", m.n.Name())
	}
	if _, ok := ms[1].reg.Whereis("mailbox"); !ok {
		t.Fatal("a name of a live node was lost")
	}
}

// BenchmarkConvergence measures how long a registration takes to be
// visible on every one of 5 nodes (gossip only: the delta broadcast and
// its re-broadcasts; push-pull is every 5 s on fast and 30 s on lan). It
// reports p50 and p99 in milliseconds.
func BenchmarkConvergence(b *testing.B) {
	for _, p := range []cluster.Profile{cluster.ProfileFast, cluster.ProfileLAN} {
		b.Run(string(p), func(b *testing.B) {
			ms := startNodes(b, 5, p)
			var subs []<-chan registry.Event
			for _, m := range ms {
				ch, cancel := m.reg.Subscribe(1 << 14)
				b.Cleanup(cancel)
				subs = append(subs, ch)
			}
			pid, err := ms[0].n.Runtime().Spawn(&sink{got: make(chan any, 1)})
			if err != nil {
				b.Fatal(err)
			}
			var lat []time.Duration
			b.ResetTimer()
			for i := range b.N {
				name := fmt.Sprintf("conv-%d", i)
				start := time.Now()
				if err := ms[0].reg.Register(name, pid, nil); err != nil {
					b.Fatal(err)
				}
				var last time.Time
				for _, ch := range subs {
					for {
						var e registry.Event
						select {
						case e = <-ch:
						case <-time.After(30 * time.Second):
							b.Fatalf("%s not seen everywhere in 30 s", name)
						}
						if e.Type == registry.Registered && e.Name == name {
							if e.Time.After(last) {
								last = e.Time
							}
							break
						}
					}
				}
				lat = append(lat, last.Sub(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.Logf("n=%d p90=%v p95=%v p99=%v max=%v", len(lat), lat[len(lat)*90/100], lat[len(lat)*95/100], lat[len(lat)*99/100], lat[len(lat)-1])
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkWhereis measures lookups (a read lock and a map access) with
// 10 000 names, from all cores.
func BenchmarkWhereis(b *testing.B) {
	ms := startNodes(b, 1, cluster.ProfileFast)
	m := ms[0]
	pid, err := m.n.Runtime().Spawn(&sink{got: make(chan any, 1)})
	if err != nil {
		b.Fatal(err)
	}
	const names = 10000
	for i := range names {
		if err := m.reg.Register(fmt.Sprintf("name-%d", i), pid, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
		keys := make([]string, 1024)
		for i := range keys {
			keys[i] = fmt.Sprintf("name-%d", rng.IntN(names))
		}
		i := 0
		for pb.Next() {
			if _, ok := m.reg.Whereis(keys[i&1023]); !ok {
				b.Fatal("not found")
			}
			i++
		}
	})
}
