package crdt_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/arsenal-go/arsenal/cluster/crdt"
)

func TestWireRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		m := mapOf(randomEntries(rng, rng.IntN(40)))
		b := crdt.Encode(m.Values())
		if b[0] != crdt.Version {
			t.Fatalf("first byte %d, want the version %d", b[0], crdt.Version)
		}
		es, err := crdt.Decode[tEntry](b)
		if err != nil {
			t.Fatal(err)
		}
		if got := mapOf(es); !got.Equal(m) {
			t.Fatalf("round trip:\n%s\n%s", dump(got), dump(m))
		}
	}
}

func TestWireRefuses(t *testing.T) {
	one := crdt.Encode([]*tEntry{{K: "a", Gen: 1, TS: 2, Node: "n"}})
	raw := func(v any) []byte {
		b, err := cbor.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte{crdt.Version}, b...)
	}
	many := make([]*tEntry, 20)
	for i := range many {
		many[i] = &tEntry{K: "k", Gen: uint64(i)}
	}
	deep := any("x")
	for range 40 {
		deep = []any{deep}
	}
	cases := []struct {
		name string
		b    []byte
		lim  crdt.Limits
		want error
	}{
		{"empty", nil, crdt.DefaultLimits, crdt.ErrMalformed},
		{"another version", append([]byte{crdt.Version + 1}, one[1:]...), crdt.DefaultLimits, crdt.ErrVersion},
		{"the old unversioned form", raw(map[int]any{1: []any{}}), crdt.DefaultLimits, crdt.ErrMalformed},
		{"truncated", one[:len(one)-2], crdt.DefaultLimits, crdt.ErrMalformed},
		{"trailing bytes", append(bytes.Clone(one), 0), crdt.DefaultLimits, crdt.ErrMalformed},
		{"not an array", raw("hello"), crdt.DefaultLimits, crdt.ErrMalformed},
		{"a null entry", raw([]any{nil}), crdt.DefaultLimits, crdt.ErrMalformed},
		{"an empty key", raw([]map[int]any{{2: 1}}), crdt.DefaultLimits, crdt.ErrMalformed},
		{"an unknown field", raw([]map[int]any{{1: "a", 99: 1}}), crdt.DefaultLimits, crdt.ErrMalformed},
		{"a field of the wrong type", raw([]map[int]any{{1: 7}}), crdt.DefaultLimits, crdt.ErrMalformed},
		{"over MaxBytes", one, crdt.Limits{MaxBytes: len(one) - 1}, crdt.ErrTooLarge},
		{"over MaxEntries", crdt.Encode(many), crdt.Limits{MaxEntries: 10}, crdt.ErrTooLarge},
		{"over MaxEntries (library bound)", crdt.Encode(append(append(many, many...), many...)), crdt.Limits{MaxEntries: 30}, crdt.ErrTooLarge},
		{"too deep", raw(deep), crdt.DefaultLimits, crdt.ErrTooLarge},
		// Array headers claiming 2^32 and 1000 entries, with no bytes behind.
		{"a huge lying length", []byte{crdt.Version, 0x9b, 0, 0, 0, 1, 0, 0, 0, 0}, crdt.DefaultLimits, crdt.ErrTooLarge},
		{"a lying length", []byte{crdt.Version, 0x99, 0x03, 0xe8}, crdt.DefaultLimits, crdt.ErrMalformed},
	}
	for _, c := range cases {
		es, err := crdt.DecodeWith[tEntry](c.b, c.lim)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v (%d entries), want %v", c.name, err, len(es), c.want)
		}
	}
	if _, err := crdt.DecodeWith[tEntry](crdt.Encode(many), crdt.Limits{MaxEntries: 20}); err != nil {
		t.Errorf("20 entries within a limit of 20: %v", err)
	}
}

// The decoder never panics; what it accepts encodes back to the same
// entries.
func FuzzDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 8 {
		f.Add(crdt.Encode(mapOf(randomEntries(rng, 1+rng.IntN(6))).Values()))
	}
	f.Add([]byte{})
	f.Add([]byte{crdt.Version})
	f.Add([]byte{crdt.Version, 0x80})
	f.Add([]byte{crdt.Version, 0x81, 0xf6})
	f.Add([]byte{crdt.Version, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{2, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := crdt.DecodeWith[tEntry](b, crdt.Limits{MaxBytes: 1 << 16, MaxEntries: 1 << 10, MaxNesting: 8})
		if err != nil {
			if es != nil {
				t.Fatal("entries returned with an error")
			}
			return
		}
		for _, e := range es {
			if e == nil || e.K == "" {
				t.Fatalf("accepted a null or keyless entry: %v", e)
			}
		}
		again, err := crdt.Decode[tEntry](crdt.Encode(es))
		if err != nil || len(again) != len(es) {
			t.Fatalf("re-encoding: %v, %d entries, want %d", err, len(again), len(es))
		}
		for i := range es {
			if es[i].Compare(again[i]) != 0 {
				t.Fatalf("entry %d: %v, re-encoded %v", i, es[i], again[i])
			}
		}
	})
}

func TestClockIncreasesAndObserves(t *testing.T) {
	wall := time.Unix(1000, 0)
	c := crdt.NewClock(func() time.Time { return wall })
	a := c.Tick()
	if a != uint64(wall.UnixNano()) {
		t.Fatalf("first tick %d, want the wall clock %d", a, wall.UnixNano())
	}
	// The wall clock stands still, then goes back: timestamps still increase.
	b := c.Tick()
	wall = wall.Add(-time.Second)
	d := c.Tick()
	if !(a < b && b < d) {
		t.Fatalf("ticks %d %d %d do not increase", a, b, d)
	}
	// A peer's timestamp ahead of us moves the clock past it.
	peer := uint64(wall.Add(10 * time.Second).UnixNano())
	if !c.Observe(peer) || c.Tick() <= peer {
		t.Fatal("the clock did not move past an observed timestamp")
	}
	// One MaxAhead into the future does not.
	far := uint64(wall.Add(crdt.MaxAhead + time.Second).UnixNano())
	if c.Observe(far) || c.Last() >= far {
		t.Fatal("the clock followed a timestamp more than MaxAhead ahead")
	}
	if h := c.Horizon(time.Second); h != uint64(wall.Add(-time.Second).UnixNano()) {
		t.Fatalf("Horizon(1s) = %d", h)
	}
	if c.Horizon(time.Duration(1<<62)) != 0 {
		t.Fatal("a horizon before the epoch must be 0")
	}
}

// Concurrent ticks never repeat (the zero Clock reads time.Now).
func TestClockConcurrent(t *testing.T) {
	var c crdt.Clock
	const g, n = 4, 2000
	out := make([][]uint64, g)
	var wg sync.WaitGroup
	for i := range g {
		wg.Go(func() {
			for range n {
				out[i] = append(out[i], c.Tick())
			}
		})
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, ts := range out {
		for i, v := range ts {
			if seen[v] || (i > 0 && v <= ts[i-1]) {
				t.Fatalf("timestamp %d repeated or out of order", v)
			}
			seen[v] = true
		}
	}
}
