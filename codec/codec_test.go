package codec_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/codec"
)

type point struct {
	X, Y int
	Tag  string
}

func init() { codec.MustRegister[point]("test.point") }

func TestRoundTrip(t *testing.T) {
	vals := []any{nil, "héllo", []byte{1, 2}, 42, int64(-7), uint64(1 << 63), 3.5, true, false,
		map[string]any{"a": "b", "n": uint64(1)}, []any{"x", uint64(2)}, point{1, 2, "p"}}
	for _, v := range vals {
		b, err := codec.Append(nil, v)
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		got, n, err := codec.Decode(b)
		if err != nil || n != len(b) || !reflect.DeepEqual(got, v) {
			t.Fatalf("round trip %#v -> %#v (%d/%d bytes, %v)", v, got, n, len(b), err)
		}
	}
}

func TestErrors(t *testing.T) {
	type unreg struct{ A int }
	if _, err := codec.Append(nil, unreg{}); !errors.Is(err, codec.ErrUnregistered) {
		t.Fatalf("unregistered: %v", err)
	}
	if err := codec.Register[unreg]("test.point"); err == nil {
		t.Fatal("name clash accepted")
	}
	if err := codec.Register[point]("test.point"); err != nil {
		t.Fatalf("re-register same: %v", err)
	}
	for _, bad := range [][]byte{{}, {99}, {1, 200}, {1, 5, 'a'}, {6, 1, 2}, {10, 1, 'x', 0}, {9, 3, 0xff, 0xff, 0xff}} {
		if _, _, err := codec.Decode(bad); err == nil {
			t.Fatalf("decode %v succeeded", bad)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, v := range []any{"s", 1, map[string]any{"k": []any{1.5}}, point{X: 1}, newPayload(7),
		allKinds{S: "x", Raw: []byte{1}, EmptyRaw: []byte{}}, named{L: -1}, nested{Note: "n"}} {
		b, _ := codec.Append(nil, v)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n, err := codec.Decode(b)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("used %d of %d bytes", n, len(b))
		}
		if _, err := codec.Append(nil, v); err != nil {
			t.Fatalf("decoded value %#v does not encode: %v", v, err)
		}
	})
}

func BenchmarkAppendDecodeString(b *testing.B) {
	buf := make([]byte, 0, 64)
	for i := 0; i < b.N; i++ {
		buf, _ = codec.Append(buf[:0], "hello world")
		_, _, _ = codec.Decode(buf)
	}
}

func TestTimeKeepsNanoseconds(t *testing.T) {
	type stamped struct{ At time.Time }
	in := stamped{At: time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)}
	b, err := codec.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out stamped
	if err := codec.Unmarshal(b, &out); err != nil || !out.At.Equal(in.At) {
		t.Fatalf("time round trip %v -> %v (%v)", in.At, out.At, err)
	}
}
