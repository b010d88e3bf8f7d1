package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/process"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/go-metrics.(*InmemSink).run"))
}

// sameEverywhere checks that every node resolves every name alike.
func sameEverywhere(t *testing.T, fn *fakeNet) map[string]process.PID {
	t.Helper()
	ref := fn.node(fn.order[0]).reg.Digest()
	for _, name := range fn.order[1:] {
		if d := fn.node(name).reg.Digest(); !mapsEqual(d, ref) {
			t.Fatalf("%s resolves %v, %s resolves %v", fn.order[0], ref, name, d)
		}
	}
	return ref
}

func mapsEqual(a, b map[string]process.PID) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRegisterLookupUnregister(t *testing.T) {
	fn := newFakeNet(t, "a@h", "b@h", "c@h")
	fn.start(Config{})
	a, b := fn.node("a@h"), fn.node("b@h")
	pid := a.spawn(t)
	if err := a.reg.Register("svc", pid, map[string]string{"role": "db"}); err != nil {
		t.Fatal(err)
	}
	fn.flush()
	for _, n := range fn.order {
		got, ok := fn.node(n).reg.Lookup("svc")
		if !ok || got.PID != pid || got.Meta["role"] != "db" || got.Node != "a@h" {
			t.Fatalf("%s: lookup = %+v %v", n, got, ok)
		}
	}
	if err := b.reg.Register("svc", b.spawn(t), nil); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("second registration: %v", err)
	}
	if err := b.reg.Register("other", pid, nil); !errors.Is(err, ErrNotLocal) {
		t.Fatalf("registering a remote pid: %v", err)
	}
	if err := b.reg.Unregister("svc"); !errors.Is(err, ErrNotLocal) {
		t.Fatalf("unregistering a remote registration: %v", err)
	}
	l, _ := b.reg.List(Filter{Meta: map[string]string{"role": ""}})
	if len(l) != 1 || l[0].Name != "svc" {
		t.Fatalf("list by meta key: %+v", l)
	}
	if l, _ := b.reg.List(Filter{Node: "b@h"}); len(l) != 0 {
		t.Fatalf("list by node: %+v", l)
	}
	if err := a.reg.Unregister("svc"); err != nil {
		t.Fatal(err)
	}
	fn.flush()
	for _, n := range fn.order {
		if _, ok := fn.node(n).reg.Whereis("svc"); ok {
			t.Fatalf("%s still resolves svc", n)
		}
	}
	// The name can be taken again, by another node.
	if err := b.reg.Register("svc", b.spawn(t), nil); err != nil {
		t.Fatal(err)
	}
	fn.flush()
	if got := sameEverywhere(t, fn)["svc"]; got.Node != "b@h" {
		t.Fatalf("svc = %v", got)
	}
}

func TestNameDiesWithProcess(t *testing.T) {
	fn := newFakeNet(t, "a@h", "b@h")
	fn.start(Config{})
	a, b := fn.node("a@h"), fn.node("b@h")
	events, cancel := b.reg.Subscribe(16)
	defer cancel()
	pid := a.spawn(t)
	if err := a.reg.Register("w", pid, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.reg.Register("w2", pid, nil); err != nil {
		t.Fatal(err)
	}
	fn.flush()
	if err := a.rt.Kill(pid); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { fn.flush(); return b.reg.Count() == 0 }, "names of a dead process still resolve on b")
	var seen []string
	for len(seen) < 4 {
		e := testutil.Recv(t, events, 5*time.Second, "registry event")
		seen = append(seen, fmt.Sprintf("%s %s %s", e.Type, e.Name, e.Reason))
	}
	slices.Sort(seen)
	want := []string{"registered w ", "registered w2 ", "unregistered w exit", "unregistered w2 exit"}
	if !slices.Equal(seen, want) {
		t.Fatalf("events %q, want %q", seen, want)
	}
}

func TestNodeDownHidesAndLeftReaps(t *testing.T) {
	fn := newFakeNet(t, "a@h", "b@h", "c@h")
	fn.start(Config{})
	a, b, c := fn.node("a@h"), fn.node("b@h"), fn.node("c@h")
	if err := c.reg.Register("on-c", c.spawn(t), nil); err != nil {
		t.Fatal(err)
	}
	fn.flush()
	// c is down for a and b: its name is hidden, not deleted.
	fn.partition([]string{"a@h", "b@h"}, []string{"c@h"})
	for _, n := range []*fakeNode{a, b} {
		if _, ok := n.reg.Whereis("on-c"); ok {
			t.Fatalf("%s resolves a name of a dead node", n.name)
		}
	}
	if _, ok := c.reg.Whereis("on-c"); !ok {
		t.Fatal("c lost its own name in a partition")
	}
	fn.heal()
	if _, ok := a.reg.Whereis("on-c"); !ok {
		t.Fatal("the name did not come back after the heal")
	}
	// c leaves (and is gone): its names are deleted for good (tombstones).
	fn.partition([]string{"a@h", "b@h"}, []string{"c@h"})
	fn.setStatus("a@h", "c@h", cluster.StatusLeft)
	a.reg.membershipChanged()
	// The status change also reaches a's registry as an event, on its own
	// goroutine: that one can reap first and broadcast the tombstone just
	// after this flush, so flush until b has it (or the deadline).
	var es []Entry
	testutil.Eventually(t, 10*time.Second, func() bool {
		fn.flush()
		es = b.reg.Entries()
		return len(es) == 1 && es[0].Deleted
	}, "b never got the tombstone of c's name")
	if es[0].Reason != "node_left" {
		t.Fatalf("after c left, b holds %+v", es)
	}
}

// The same name registered on both sides of a partition: after the heal
// the earliest registration wins on every node and the loser's process
// gets an exit with name_conflict.
func TestConflictAfterHeal(t *testing.T) {
	fn := newFakeNet(t, "a@h", "b@h", "c@h", "d@h")
	fn.start(Config{})
	a, d := fn.node("a@h"), fn.node("d@h")
	fn.partition([]string{"a@h", "b@h"}, []string{"c@h", "d@h"})
	first, second := a.spawn(t), d.spawn(t)
	if err := a.reg.Register("x", first, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.reg.Register("x", second, nil); err != nil {
		t.Fatal(err)
	}
	fn.flush()
	if got, _ := fn.node("c@h").reg.Whereis("x"); got != second {
		t.Fatalf("c's side resolves %v", got)
	}
	events, cancel := d.reg.Subscribe(16)
	defer cancel()
	exited := make(chan process.Reason, 1)
	d.rt.Watch(second, func(m process.DownMsg) { exited <- m.Reason })
	fn.heal()
	if got := sameEverywhere(t, fn)["x"]; got != first {
		t.Fatalf("winner %v, want the earliest registration %v", got, first)
	}
	reason := testutil.Recv(t, exited, 5*time.Second, "exit of the loser")
	if !errors.Is(reason, ErrNameConflict) {
		t.Fatalf("loser exited with %v, want name_conflict", reason)
	}
	var ce *ConflictError
	if !errors.As(reason, &ce) || ce.Winner != first || ce.Name != "x" {
		t.Fatalf("reason %#v", reason)
	}
	gotConflict := false
	for !gotConflict {
		e := testutil.Recv(t, events, 5*time.Second, "conflict event")
		gotConflict = e.Type == Conflict && e.PID == second && e.Winner == first
	}
	// The loser's exit must not delete the winner's registration.
	fn.flush()
	if got := sameEverywhere(t, fn)["x"]; got != first {
		t.Fatalf("after the loser's exit: %v", got)
	}
}

func TestConflictMessageOption(t *testing.T) {
	fn := newFakeNet(t, "a@h", "b@h")
	fn.start(Config{OnConflict: NotifyOnConflict})
	a, b := fn.node("a@h"), fn.node("b@h")
	fn.partition([]string{"a@h"}, []string{"b@h"})
	got := make(chan any, 1)
	loser, err := b.rt.SpawnFunc(func(p *process.Proc) error {
		m, err := p.Receive(context.Background())
		if err != nil {
			return err
		}
		got <- m
		_, err = p.Receive(context.Background())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	winner := a.spawn(t)
	_ = a.reg.Register("y", winner, nil)
	_ = b.reg.Register("y", loser, nil)
	fn.heal()
	m := testutil.Recv(t, got, 5*time.Second, "conflict message")
	if cm, ok := m.(ConflictMsg); !ok || cm.Winner != winner || cm.Name != "y" {
		t.Fatalf("loser got %#v", m)
	}
	if !b.rt.Alive(loser) {
		t.Fatal("with NotifyOnConflict the loser must live")
	}
}

// A name whose owner is down can be taken over; when the owner comes back,
// the takeover wins (it is of a later generation) and the old holder is
// told.
func TestTakeoverWhileOwnerDown(t *testing.T) {
	fn := newFakeNet(t, "a@h", "b@h", "c@h")
	fn.start(Config{})
	a, c := fn.node("a@h"), fn.node("c@h")
	old := c.spawn(t)
	if err := c.reg.Register("leader", old, nil); err != nil {
		t.Fatal(err)
	}
	fn.flush()
	fn.partition([]string{"a@h", "b@h"}, []string{"c@h"})
	fresh := a.spawn(t)
	if err := a.reg.Register("leader", fresh, nil); err != nil {
		t.Fatalf("takeover of a name whose node is down: %v", err)
	}
	exited := make(chan process.Reason, 1)
	c.rt.Watch(old, func(m process.DownMsg) { exited <- m.Reason })
	fn.heal()
	if got := sameEverywhere(t, fn)["leader"]; got != fresh {
		t.Fatalf("leader = %v, want the takeover %v", got, fresh)
	}
	if reason := testutil.Recv(t, exited, 5*time.Second, "exit of the old holder"); !errors.Is(reason, ErrNameConflict) {
		t.Fatalf("old holder exited with %v", reason)
	}
}

// A partition longer than ReapAfter: the other side deletes the names; on
// the heal the owner, whose process lives, registers them again.
func TestReassertAfterReap(t *testing.T) {
	fn := newFakeNet(t, "a@h", "b@h")
	fn.start(Config{ReapAfter: time.Millisecond})
	a, b := fn.node("a@h"), fn.node("b@h")
	pid := b.spawn(t)
	if err := b.reg.Register("keep", pid, nil); err != nil {
		t.Fatal(err)
	}
	fn.flush()
	fn.partition([]string{"a@h"}, []string{"b@h"})
	time.Sleep(2 * time.Millisecond) // past ReapAfter (1 ms): the condition under test is time
	a.reg.membershipChanged()
	if es := a.reg.Entries(); len(es) != 1 || !es[0].Deleted || es[0].Reason != "reaped" {
		t.Fatalf("a did not reap: %+v", es)
	}
	fn.heal()
	if got := sameEverywhere(t, fn)["keep"]; got != pid {
		t.Fatalf("keep = %v after the heal, want %v", got, pid)
	}
	if !b.rt.Alive(pid) {
		t.Fatal("the owner's process was killed")
	}
}

// Random operations on random nodes, with partitions that come and go and
// broadcasts that are lost; after a final heal every node holds the same
// registry and every name resolves to a live process.
func TestRandomHistoryConverges(t *testing.T) {
	names := []string{"a@h", "b@h", "c@h", "d@h"}
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			fn := newFakeNet(t, names...)
			fn.start(Config{})
			keys := []string{"k1", "k2", "k3"}
			for step := 0; step < 60; step++ {
				n := fn.node(names[rng.IntN(len(names))])
				switch op := rng.IntN(10); {
				case op < 4:
					_ = n.reg.Register(keys[rng.IntN(len(keys))], n.spawn(t), nil)
				case op < 5:
					_ = n.reg.Unregister(keys[rng.IntN(len(keys))])
				case op < 6:
					if pid, ok := n.reg.Whereis(keys[rng.IntN(len(keys))]); ok && pid.Node == n.name {
						_ = n.rt.Kill(pid)
					}
				case op < 7:
					p := rng.Perm(len(names))
					cut := 1 + rng.IntN(len(names)-1)
					var g1, g2 []string
					for i, j := range p {
						if i < cut {
							g1 = append(g1, names[j])
						} else {
							g2 = append(g2, names[j])
						}
					}
					fn.heal()
					fn.partition(g1, g2)
				case op < 8:
					fn.heal()
				case op < 9:
					// Lose what is queued.
					fn.mu.Lock()
					fn.queue = nil
					fn.mu.Unlock()
				default:
					fn.flush()
				}
			}
			fn.heal()
			// Exits of conflict losers and of killed processes are
			// asynchronous; wait until the states agree and settle.
			testutil.Eventually(t, 10*time.Second, func() bool {
				fn.flush()
				fn.pushPullAll()
				fn.flush()
				ref := fn.node(names[0]).reg.Digest()
				for _, name := range names[1:] {
					if !mapsEqual(fn.node(name).reg.Digest(), ref) {
						return false
					}
				}
				for _, pid := range ref {
					if !fn.node(pid.Node).rt.Alive(pid) {
						return false
					}
				}
				return true
			}, "seed %d: registries differ or point to dead processes", seed)
			ref := fn.node(names[0]).reg.Entries()
			for _, name := range names[1:] {
				es := fn.node(name).reg.Entries()
				if len(es) != len(ref) {
					t.Fatalf("seed %d: %s holds %d entries, %s %d", seed, names[0], len(ref), name, len(es))
				}
				for i := range es {
					if compareEntries(&es[i], &ref[i]) != 0 {
						t.Fatalf("seed %d: entry %d differs: %+v vs %+v", seed, i, es[i], ref[i])
					}
				}
			}
		})
	}
}

// A node the cluster removed (dead past the removal margin, on a side
// that keeps running) has its names deleted at once, by the same rule as
// the split-brain decisions, without waiting for ReapAfter.
func TestRemovedNodeReaped(t *testing.T) {
	fn := newFakeNet(t, "a@h", "b@h", "c@h")
	fn.start(Config{ReapAfter: time.Hour})
	a, c := fn.node("a@h"), fn.node("c@h")
	if err := c.reg.Register("on-c", c.spawn(t), nil); err != nil {
		t.Fatal(err)
	}
	fn.flush()
	fn.partition([]string{"a@h", "b@h"}, []string{"c@h"})
	a.reg.membershipChanged()
	if es := a.reg.Entries(); len(es) != 1 || es[0].Deleted {
		t.Fatalf("c only dead: a holds %+v, want the entry kept (hidden)", es)
	}
	a.mu.Lock()
	m := a.view["c@h"]
	m.Removed = true
	a.view["c@h"] = m
	a.mu.Unlock()
	a.reg.membershipChanged()
	if es := a.reg.Entries(); len(es) != 1 || !es[0].Deleted || es[0].Reason != "node_removed" {
		t.Fatalf("c removed: a holds %+v, want a node_removed tombstone", es)
	}
}

// A tombstone is retired TombstoneTTL after its deletion, on every node,
// and a copy of it that a peer sends afterwards is dropped, not brought
// back; the name can be registered afresh.
func TestTombstoneRetired(t *testing.T) {
	fn := newFakeNet(t, "a@h", "b@h")
	fn.start(Config{TombstoneTTL: 300 * time.Millisecond, SweepInterval: 10 * time.Millisecond})
	a, b := fn.node("a@h"), fn.node("b@h")
	if err := a.reg.Register("svc", a.spawn(t), nil); err != nil {
		t.Fatal(err)
	}
	fn.flush()
	if err := a.reg.Unregister("svc"); err != nil {
		t.Fatal(err)
	}
	fn.flush()
	stale := a.getReplica().LocalState() // holds the tombstone
	if es := b.reg.Entries(); len(es) != 1 || !es[0].Deleted {
		t.Fatalf("b before retirement: %+v", es)
	}
	testutil.Eventually(t, 30*time.Second, func() bool { return len(a.reg.Entries())+len(b.reg.Entries()) == 0 },
		"the tombstone of svc not retired on both nodes")
	b.getReplica().MergeRemoteState(stale)
	b.getReplica().NotifyMsg(stale)
	if es := b.reg.Entries(); len(es) != 0 {
		t.Fatalf("a retired tombstone came back: %+v", es)
	}
	pid := b.spawn(t)
	if err := b.reg.Register("svc", pid, nil); err != nil {
		t.Fatal(err)
	}
	fn.flush()
	if got, ok := a.reg.Whereis("svc"); !ok || got != pid {
		t.Fatalf("a fresh registration after retirement: %v %v", got, ok)
	}
}

// A state or delta from a peer that does not decode (another encoding
// version, garbage, a null entry) is refused as a whole: nothing of it is
// merged, each is logged, and nothing panics.
func TestMalformedStateRefused(t *testing.T) {
	fn := newFakeNet(t, "a@h", "b@h")
	var logs lockedBuffer
	fn.start(Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	a, b := fn.node("a@h"), fn.node("b@h")
	if err := a.reg.Register("svc", a.spawn(t), nil); err != nil {
		t.Fatal(err)
	}
	fn.flush()
	good := a.getReplica().LocalState()
	before := b.reg.Entries()
	other := append([]byte{good[0] + 1}, good[1:]...)
	for _, msg := range [][]byte{nil, {0xff}, other, good[:len(good)-1], {good[0], 0x81, 0xf6}} {
		b.getReplica().MergeRemoteState(msg)
		b.getReplica().NotifyMsg(msg)
	}
	if after := b.reg.Entries(); len(after) != len(before) || after[0].TS != before[0].TS {
		t.Fatalf("entries changed by refused messages: %+v, were %+v", after, before)
	}
	if n := strings.Count(logs.String(), "state from a peer refused"); n != 10 {
		t.Fatalf("%d refusals logged, want 10:\n%s", n, logs.String())
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
