package codec_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/arsenal-go/arsenal/codec"
)

// payload is the 64-byte message of ../shared/bench/peers (-p struct).
type payload struct{ Seq, A, B, C, D, E, F, G int64 }

// payloadCBOR has the same fields; its tags make it travel as a CBOR map,
// as every registered struct did before records.
type payloadCBOR struct {
	Seq int64 `json:"Seq"`
	A   int64 `json:"A"`
	B   int64 `json:"B"`
	C   int64 `json:"C"`
	D   int64 `json:"D"`
	E   int64 `json:"E"`
	F   int64 `json:"F"`
	G   int64 `json:"G"`
}

type allKinds struct {
	B                bool
	I                int
	I8               int8
	I16              int16
	I32              int32
	I64              int64
	U                uint
	U8               uint8
	U16              uint16
	U32              uint32
	U64              uint64
	F32              float32
	F64              float64
	S                string
	Raw              []byte
	NilRaw, EmptyRaw []byte
	hidden           int // unexported: left out, as CBOR leaves it out
}

type level int8

type named struct {
	L    level
	Name string
}

type nested struct {
	P    payload // not a plain field: CBOR
	Note string
}

// upper marshals itself: a field of its type keeps the struct on CBOR,
// which calls MarshalBinary.
type upper string

func (u upper) MarshalBinary() ([]byte, error) { return []byte("U:" + string(u)), nil }
func (u *upper) UnmarshalBinary(b []byte) error {
	if len(b) < 2 || string(b[:2]) != "U:" {
		return errors.New("not an upper")
	}
	*u = upper(b[2:])
	return nil
}

type withUpper struct {
	Name upper
	N    int
}

// selfMarshal marshals itself as a whole.
type selfMarshal struct{ A, B int }

func (s selfMarshal) MarshalBinary() ([]byte, error) { return []byte{byte(s.A), byte(s.B)}, nil }
func (s *selfMarshal) UnmarshalBinary(b []byte) error {
	if len(b) != 2 {
		return errors.New("bad selfMarshal")
	}
	s.A, s.B = int(b[0]), int(b[1])
	return nil
}

type layoutA struct{ X, Y int64 }
type layoutB struct{ Y, X int64 }

func init() {
	codec.MustRegister[payload]("test.payload")
	codec.MustRegister[*payload]("test.*payload")
	codec.MustRegister[payloadCBOR]("test.payloadcbor")
	codec.MustRegister[allKinds]("test.allkinds")
	codec.MustRegister[named]("test.named")
	codec.MustRegister[nested]("test.nested")
	codec.MustRegister[withUpper]("test.withupper")
	codec.MustRegister[selfMarshal]("test.selfmarshal")
	codec.MustRegister[layoutA]("test.layout.a")
	codec.MustRegister[layoutB]("test.layout.b")
}

func newPayload(i int64) payload { return payload{i, i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, i + 7} }

func roundTrip(t *testing.T, v any) []byte {
	t.Helper()
	b, err := codec.Append(nil, v)
	if err != nil {
		t.Fatalf("append %#v: %v", v, err)
	}
	got, n, err := codec.Decode(b)
	if err != nil || n != len(b) {
		t.Fatalf("decode %#v: %v (%d of %d bytes)", v, err, n, len(b))
	}
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("round trip %#v -> %#v", v, got)
	}
	return b
}

func TestRecordRoundTrip(t *testing.T) {
	roundTrip(t, newPayload(400_000))
	roundTrip(t, payload{Seq: math.MinInt64, G: math.MaxInt64})
	p := newPayload(3)
	roundTrip(t, &p)
	roundTrip(t, (*payload)(nil)) // a nil pointer travels as CBOR
	roundTrip(t, allKinds{B: true, I: -1 << 40, I8: -128, I16: 32767, I32: -1 << 31, I64: math.MinInt64,
		U: 1 << 63, U8: 255, U16: 65535, U32: 1<<32 - 1, U64: math.MaxUint64, F32: -1.5, F64: math.Pi,
		S: "héllo", Raw: []byte{0, 1, 2}, EmptyRaw: []byte{}})
	roundTrip(t, allKinds{})
	roundTrip(t, named{L: -3, Name: "x"})
	roundTrip(t, nested{P: newPayload(1), Note: "n"})
	roundTrip(t, payloadCBOR{Seq: 1, G: 7})
	roundTrip(t, withUpper{Name: "x", N: 2})
	roundTrip(t, selfMarshal{A: 3, B: 4})

	// Unexported fields stay zero, as with CBOR.
	b, _ := codec.Append(nil, allKinds{hidden: 5, S: "s"})
	got, _, err := codec.Decode(b)
	if err != nil || got.(allKinds).hidden != 0 || got.(allKinds).S != "s" {
		t.Fatalf("unexported field: %#v, %v", got, err)
	}
}

// TestRecordSize: eight int64 fields with values near 400,000 (as in the
// side-by-side benchmark) take 24 bytes of fields; with the tag, the name
// (12 bytes here) and the fingerprint, 42 bytes. Protobuf needs 32 bytes
// for these fields; the CBOR map with names takes 78.
// TestSelfMarshallingStaysCBOR: a type that marshals itself, or has a
// field that does, is not a record: its own methods still run.
func TestSelfMarshallingStaysCBOR(t *testing.T) {
	for _, v := range []any{withUpper{Name: "x"}, selfMarshal{A: 1}} {
		b, err := codec.Append(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != 10 { // tagNamed: the CBOR form
			t.Fatalf("%T encoded with tag %d, want the CBOR form", v, b[0])
		}
	}
	b, _ := codec.Append(nil, withUpper{Name: "abc"})
	if !bytes.Contains(b, []byte("U:abc")) {
		t.Fatalf("MarshalBinary was not used: % x", b)
	}
	b, _ = codec.Append(nil, newPayload(1))
	if b[0] != 11 {
		t.Fatalf("payload encoded with tag %d, want the record form", b[0])
	}
}

func TestRecordSize(t *testing.T) {
	rec := roundTrip(t, newPayload(400_000))
	cb := roundTrip(t, payloadCBOR(newPayload(400_000)))
	const name = len("test.payload")
	if fields := len(rec) - 1 - 1 - name - 4; fields != 24 {
		t.Fatalf("record fields take %d bytes (%d in all), want 24", fields, len(rec))
	}
	if len(rec) >= len(cb) {
		t.Fatalf("record %d bytes, CBOR map %d", len(rec), len(cb))
	}
	t.Logf("record %d bytes, CBOR map %d bytes", len(rec), len(cb))
}

func TestRecordRejects(t *testing.T) {
	b, err := codec.Append(nil, layoutA{X: 1, Y: 2})
	if err != nil {
		t.Fatal(err)
	}
	// The same bytes under the name of a type with another layout.
	bad := append([]byte{b[0], byte(len("test.layout.b"))}, "test.layout.b"...)
	bad = append(bad, b[2+len("test.layout.a"):]...)
	if _, _, err := codec.Decode(bad); !errors.Is(err, codec.ErrMalformed) {
		t.Fatalf("other layout: %v", err)
	}
	// A record for a type that travels as CBOR here.
	bad = append([]byte{b[0], byte(len("test.nested"))}, "test.nested"...)
	bad = append(bad, b[2+len("test.layout.a"):]...)
	if _, _, err := codec.Decode(bad); !errors.Is(err, codec.ErrMalformed) {
		t.Fatalf("record for a CBOR type: %v", err)
	}
	// An unknown name.
	bad = append([]byte{b[0], 3}, "zzz"...)
	if _, _, err := codec.Decode(bad); !errors.Is(err, codec.ErrUnregistered) {
		t.Fatalf("unknown name: %v", err)
	}
	// Every truncation fails, none panics.
	full, _ := codec.Append(nil, allKinds{S: "abc", Raw: []byte{1}, F64: 1, F32: 1})
	for i := 0; i < len(full); i++ {
		if _, _, err := codec.Decode(full[:i]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: decoded", i, len(full))
		}
	}
	// Out-of-range integers and a bad bool.
	n, _ := codec.Append(nil, named{L: 1})
	hdr := len(n) - 2                                           // tag, name, fingerprint; then L (1 byte) and Name (1 byte)
	over := append(append([]byte{}, n[:hdr]...), 0x80, 0x02, 0) // varint 128: beyond int8
	if _, _, err := codec.Decode(over); !errors.Is(err, codec.ErrMalformed) {
		t.Fatalf("int8 out of range: %v", err)
	}
	k, _ := codec.Append(nil, allKinds{})
	hdr = 1 + 1 + len("test.allkinds") + 4
	k[hdr] = 2
	if _, _, err := codec.Decode(k); !errors.Is(err, codec.ErrMalformed) {
		t.Fatalf("bool 2: %v", err)
	}
}

func BenchmarkStructRecord(b *testing.B) { benchStruct(b, func(i int64) any { return newPayload(i) }) }

func BenchmarkStructCBOR(b *testing.B) {
	benchStruct(b, func(i int64) any { return payloadCBOR(newPayload(i)) })
}

// benchStruct encodes and decodes one 64-byte struct per iteration.
func benchStruct(b *testing.B, mk func(int64) any) {
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var err error
		buf, err = codec.Append(buf[:0], mk(int64(i)))
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := codec.Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/msg")
}
