// Package codec encodes the messages that processes send to other nodes.
//
// Plain values (nil, bool, string, []byte, int, int64, uint64, float64)
// have compact built-in encodings. Generic data (map[string]any, []any, as
// decoded from JSON) travels as CBOR. Any other type must be registered
// with Register under a name that every node agrees on; it travels as CBOR
// (github.com/fxamacker/cbor/v2) and is decoded into a fresh value of the
// registered type; a struct of plain fields travels in a compact form
// without field names instead (see Register). Decoding treats its input as untrusted: lengths,
// nesting depth and collection sizes are bounded, and any violation is an
// error, never a panic.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/fxamacker/cbor/v2"
)

const (
	tagNil byte = iota
	tagString
	tagBytes
	tagInt
	tagInt64
	tagUint64
	tagFloat64
	tagFalse
	tagTrue
	tagGeneric
	tagNamed
	tagRecord // a registered struct in compact form (record.go)
)

// MaxValueSize bounds one encoded value.
const MaxValueSize = 8 << 20

var (
	// ErrUnregistered is returned for a value whose type is not registered.
	ErrUnregistered = errors.New("codec: type not registered for remote delivery")
	// ErrMalformed is wrapped by every decoding error.
	ErrMalformed = errors.New("codec: malformed value")
)

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	eo := cbor.CoreDetEncOptions()
	eo.Time = cbor.TimeRFC3339Nano // keep nanoseconds; the default drops them
	encMode, err = eo.EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = StrictDecOptions(32, 1<<16).DecMode()
	if err != nil {
		panic(err)
	}
}

// StrictDecOptions are the CBOR decoding options for bytes from a peer:
// at most maxNested levels and maxElems array elements or map pairs, no
// indefinite lengths, duplicate map keys, unknown fields or tags. The
// codec and the replicated state (cluster/crdt) decode with them.
func StrictDecOptions(maxNested, maxElems int) cbor.DecOptions {
	return cbor.DecOptions{
		MaxNestedLevels:   maxNested,
		MaxArrayElements:  maxElems,
		MaxMapPairs:       maxElems,
		IndefLength:       cbor.IndefLengthForbidden,
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		DefaultMapType:    reflect.TypeOf(map[string]any(nil)),
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		TagsMd:            cbor.TagsForbidden,
	}
}

// registry maps names and types to entries. Register copies it and
// publishes the copy, so the hot paths (Append, Decode) read it with one
// atomic load and no lock.
type registry struct {
	byName map[string]*entry
	byType map[reflect.Type]*entry
}

type entry struct {
	name string
	t    reflect.Type
	rec  *record // nil: the type travels as a CBOR map
}

var (
	regMu sync.Mutex
	reg   atomic.Pointer[registry]
)

func init() {
	reg.Store(&registry{byName: map[string]*entry{}, byType: map[reflect.Type]*entry{}})
}

// Register makes values of type T encodable under name. Registering the
// same type under the same name again is a no-op; any other clash is an
// error. A struct (or pointer to a struct) whose exported fields are all
// booleans, numbers, strings or byte slices without cbor or json tags,
// and which does not marshal itself (MarshalCBOR, MarshalBinary), travels
// in a compact form without field names (see record.go); any other type
// travels as CBOR.
func Register[T any](name string) error {
	t := reflect.TypeFor[T]()
	if name == "" || len(name) > 200 {
		return fmt.Errorf("codec: register %s: name must be 1 to 200 bytes", t)
	}
	if t.Kind() == reflect.Interface {
		return fmt.Errorf("codec: register %q: cannot register an interface type", name)
	}
	regMu.Lock()
	defer regMu.Unlock()
	r := reg.Load()
	if old, ok := r.byName[name]; ok {
		if old.t == t {
			return nil
		}
		return fmt.Errorf("codec: name %q is already registered for %s", name, old.t)
	}
	if old, ok := r.byType[t]; ok {
		return fmt.Errorf("codec: type %s is already registered as %q", t, old.name)
	}
	e := &entry{name: name, t: t, rec: newRecord[T](name)}
	n := &registry{byName: make(map[string]*entry, len(r.byName)+1), byType: make(map[reflect.Type]*entry, len(r.byType)+1)}
	for k, v := range r.byName {
		n.byName[k] = v
	}
	for k, v := range r.byType {
		n.byType[k] = v
	}
	n.byName[name] = e
	n.byType[t] = e
	reg.Store(n)
	return nil
}

// MustRegister is Register that panics on error, for package init.
func MustRegister[T any](name string) {
	if err := Register[T](name); err != nil {
		panic(err)
	}
}

// Encodable reports whether v can be sent to another node.
func Encodable(v any) error {
	_, err := Append(nil, v)
	return err
}

// Append appends the encoding of v to b.
func Append(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, tagNil), nil
	case string:
		b = append(b, tagString)
		b = binary.AppendUvarint(b, uint64(len(x)))
		return append(b, x...), nil
	case []byte:
		b = append(b, tagBytes)
		b = binary.AppendUvarint(b, uint64(len(x)))
		return append(b, x...), nil
	case int:
		return binary.AppendVarint(append(b, tagInt), int64(x)), nil
	case int64:
		return binary.AppendVarint(append(b, tagInt64), x), nil
	case uint64:
		return binary.AppendUvarint(append(b, tagUint64), x), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, tagFloat64), math.Float64bits(x)), nil
	case bool:
		if x {
			return append(b, tagTrue), nil
		}
		return append(b, tagFalse), nil
	case map[string]any, []any:
		if err := plain(normalize(x), 0); err != nil {
			return b, fmt.Errorf("codec: generic data must hold only maps, lists, strings, numbers, booleans and nil: %w", err)
		}
		data, err := encMode.Marshal(x)
		if err != nil {
			return b, fmt.Errorf("codec: %w", err)
		}
		b = append(b, tagGeneric)
		b = binary.AppendUvarint(b, uint64(len(data)))
		return append(b, data...), nil
	}
	t := reflect.TypeOf(v)
	ent, ok := reg.Load().byType[t]
	if !ok {
		return b, fmt.Errorf("%w: %s (call codec.Register[%s](name) on every node)", ErrUnregistered, t, t)
	}
	if ent.rec != nil {
		if out, ok := ent.rec.enc(ent.rec, b, v); ok {
			return out, nil
		}
	}
	name := ent.name
	data, err := encMode.Marshal(v)
	if err != nil {
		return b, fmt.Errorf("codec: encode %s: %w", t, err)
	}
	b = append(b, tagNamed)
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...), nil
}

func malformed(why string) error { return fmt.Errorf("%w: %s", ErrMalformed, why) }

// Decode decodes one value from the start of b and returns it with the
// number of bytes it used.
func Decode(b []byte) (any, int, error) {
	if len(b) == 0 {
		return nil, 0, malformed("empty input")
	}
	tag, rest := b[0], b[1:]
	used := 1
	lenPrefixed := func() ([]byte, error) {
		n, k := binary.Uvarint(rest)
		if k <= 0 {
			return nil, malformed("bad length")
		}
		if n > MaxValueSize || n > uint64(len(rest)-k) {
			return nil, malformed("length beyond input")
		}
		used += k + int(n)
		data := rest[k : k+int(n)]
		rest = rest[k+int(n):]
		return data, nil
	}
	switch tag {
	case tagNil:
		return nil, used, nil
	case tagString:
		d, err := lenPrefixed()
		if err != nil {
			return nil, 0, err
		}
		return string(d), used, nil
	case tagBytes:
		d, err := lenPrefixed()
		if err != nil {
			return nil, 0, err
		}
		return append([]byte(nil), d...), used, nil
	case tagInt, tagInt64:
		v, k := binary.Varint(rest)
		if k <= 0 {
			return nil, 0, malformed("bad varint")
		}
		if tag == tagInt {
			if v > math.MaxInt || v < math.MinInt {
				return nil, 0, malformed("int out of range")
			}
			return int(v), used + k, nil
		}
		return v, used + k, nil
	case tagUint64:
		v, k := binary.Uvarint(rest)
		if k <= 0 {
			return nil, 0, malformed("bad uvarint")
		}
		return v, used + k, nil
	case tagFloat64:
		if len(rest) < 8 {
			return nil, 0, malformed("short float")
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(rest)), used + 8, nil
	case tagFalse:
		return false, used, nil
	case tagTrue:
		return true, used, nil
	case tagGeneric:
		d, err := lenPrefixed()
		if err != nil {
			return nil, 0, err
		}
		var v any
		if err := decMode.Unmarshal(d, &v); err != nil {
			return nil, 0, malformed(err.Error())
		}
		if err := plain(v, 0); err != nil {
			return nil, 0, err
		}
		return v, used, nil
	case tagNamed:
		nameB, err := lenPrefixed()
		if err != nil {
			return nil, 0, err
		}
		d, err := lenPrefixed()
		if err != nil {
			return nil, 0, err
		}
		ent, ok := reg.Load().byName[string(nameB)]
		if !ok {
			return nil, 0, fmt.Errorf("%w: no type registered as %q on this node", ErrUnregistered, nameB)
		}
		ptr := reflect.New(ent.t)
		if err := decMode.Unmarshal(d, ptr.Interface()); err != nil {
			return nil, 0, malformed(fmt.Sprintf("%s: %v", nameB, err))
		}
		return ptr.Elem().Interface(), used, nil
	case tagRecord:
		nameB, err := lenPrefixed()
		if err != nil {
			return nil, 0, err
		}
		ent, ok := reg.Load().byName[string(nameB)]
		if !ok {
			return nil, 0, fmt.Errorf("%w: no type registered as %q on this node", ErrUnregistered, nameB)
		}
		if ent.rec == nil {
			return nil, 0, malformed(fmt.Sprintf("%s: a record, but this node's type travels as CBOR", nameB))
		}
		v, n, err := ent.rec.dec(ent.rec, rest)
		if err != nil {
			return nil, 0, err
		}
		return v, used + n, nil
	}
	return nil, 0, malformed(fmt.Sprintf("unknown tag %d", tag))
}

// normalize is what a value looks like after a CBOR round trip, for the
// check in Append: ints become int64 or uint64, float32 becomes float64.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case float32:
		return float64(x)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = normalize(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = normalize(e)
		}
		return l
	}
	return v
}

// plain checks that generic data holds only JSON-like values.
func plain(v any, depth int) error {
	if depth > 32 {
		return malformed("nested too deep")
	}
	switch x := v.(type) {
	case nil, bool, string, []byte, uint64, int64, float64:
		return nil
	case map[string]any:
		for _, e := range x {
			if err := plain(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	case []any:
		for _, e := range x {
			if err := plain(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return malformed(fmt.Sprintf("generic data holds a %T", v))
}

// Marshal and Unmarshal expose the safe CBOR modes for protocol structs
// of other packages (the node wire protocol, facts, operations).
func Marshal(v any) ([]byte, error)   { return encMode.Marshal(v) }
func Unmarshal(b []byte, v any) error { return decMode.Unmarshal(b, v) }
