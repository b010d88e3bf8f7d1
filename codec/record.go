package codec

import (
	"encoding"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"reflect"
	"unsafe"

	"github.com/fxamacker/cbor/v2"
)

// A record is the compact form of a registered struct type (or pointer to
// one) whose exported fields are all booleans, integers, floats, strings
// or byte slices and carry no cbor or json tags, and where neither the
// struct nor a field type marshals itself (MarshalCBOR, MarshalBinary or
// their inverses). It is written as
//
//	tagRecord, name, a 32-bit layout fingerprint, then every exported
//	field in declaration order: integers as (zigzag) varints, floats as
//	little-endian IEEE bits, booleans as one byte, strings and byte
//	slices length-prefixed
//
// with no field names, so eight int64 fields take 8 to 80 bytes instead
// of a CBOR map's names and values. The plan (field offsets and kinds) is
// made once, at Register; encoding and decoding a message walk the plan
// with no reflection. Other registered types travel as CBOR maps.
//
// The fingerprint hashes the field names and kinds, so a node whose type
// has a different layout under the same name refuses the value (an
// ErrMalformed error) instead of decoding fields into the wrong places.

type fieldKind uint8

const (
	fBool fieldKind = iota + 1
	fInt
	fInt8
	fInt16
	fInt32
	fInt64
	fUint
	fUint8
	fUint16
	fUint32
	fUint64
	fFloat32
	fFloat64
	fString
	fBytes
)

type recField struct {
	off  uintptr
	kind fieldKind
}

// record is the plan of one registered type.
type record struct {
	name   string
	fields []recField
	fp     uint32
	// enc appends the fields of v (of the registered type); ok is false
	// for a nil pointer, which then travels as CBOR.
	enc func(r *record, b []byte, v any) (_ []byte, ok bool)
	// dec decodes the fields into a fresh value of the registered type.
	dec func(r *record, b []byte) (any, int, error)
}

var kinds = map[reflect.Kind]fieldKind{
	reflect.Bool: fBool, reflect.Int: fInt, reflect.Int8: fInt8, reflect.Int16: fInt16,
	reflect.Int32: fInt32, reflect.Int64: fInt64, reflect.Uint: fUint, reflect.Uint8: fUint8,
	reflect.Uint16: fUint16, reflect.Uint32: fUint32, reflect.Uint64: fUint64,
	reflect.Float32: fFloat32, reflect.Float64: fFloat64, reflect.String: fString,
}

// Types that marshal themselves keep doing so: a struct, or a field
// type, that implements one of these travels as CBOR, which calls them.
// (The CBOR modes here do not call MarshalText, so neither is it a reason
// to leave the record form.)
var selfMarshalling = []reflect.Type{
	reflect.TypeFor[cbor.Marshaler](), reflect.TypeFor[cbor.Unmarshaler](),
	reflect.TypeFor[encoding.BinaryMarshaler](), reflect.TypeFor[encoding.BinaryUnmarshaler](),
}

func marshalsItself(t reflect.Type) bool {
	for _, i := range selfMarshalling {
		if t.Implements(i) || reflect.PointerTo(t).Implements(i) {
			return true
		}
	}
	return false
}

// planStruct returns the fields of struct type t, or false if t cannot
// travel as a record.
func planStruct(t reflect.Type) ([]recField, uint32, bool) {
	if marshalsItself(t) {
		return nil, 0, false
	}
	h := fnv.New32a()
	var fields []recField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			return nil, 0, false
		}
		if !f.IsExported() {
			continue // CBOR leaves them out too
		}
		if _, ok := f.Tag.Lookup("cbor"); ok {
			return nil, 0, false
		}
		if _, ok := f.Tag.Lookup("json"); ok {
			return nil, 0, false
		}
		if marshalsItself(f.Type) {
			return nil, 0, false
		}
		k, ok := kinds[f.Type.Kind()]
		if !ok && f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Uint8 {
			k, ok = fBytes, true
		}
		if !ok {
			return nil, 0, false
		}
		fields = append(fields, recField{off: f.Offset, kind: k})
		fmt.Fprintf(h, "%s:%d;", f.Name, k)
	}
	return fields, h.Sum32(), true
}

// newRecord makes the plan of T, or returns nil if T travels as CBOR.
func newRecord[T any](name string) *record {
	t := reflect.TypeFor[T]()
	switch {
	case t.Kind() == reflect.Struct:
		fields, fp, ok := planStruct(t)
		if !ok {
			return nil
		}
		return &record{name: name, fields: fields, fp: fp,
			enc: func(r *record, b []byte, v any) ([]byte, bool) {
				x := v.(T)
				return r.appendFields(b, unsafe.Pointer(&x)), true
			},
			dec: func(r *record, b []byte) (any, int, error) {
				var x T
				n, err := r.decodeFields(b, unsafe.Pointer(&x))
				if err != nil {
					return nil, 0, err
				}
				return x, n, nil
			},
		}
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		st := t.Elem()
		fields, fp, ok := planStruct(st)
		if !ok {
			return nil
		}
		return &record{name: name, fields: fields, fp: fp,
			enc: func(r *record, b []byte, v any) ([]byte, bool) {
				x := v.(T)
				p := *(*unsafe.Pointer)(unsafe.Pointer(&x))
				if p == nil {
					return b, false
				}
				return r.appendFields(b, p), true
			},
			dec: func(r *record, b []byte) (any, int, error) {
				p := reflect.New(st).UnsafePointer()
				n, err := r.decodeFields(b, p)
				if err != nil {
					return nil, 0, err
				}
				return *(*T)(unsafe.Pointer(&p)), n, nil
			},
		}
	}
	return nil
}

func (r *record) appendFields(b []byte, p unsafe.Pointer) []byte {
	b = append(b, tagRecord)
	b = binary.AppendUvarint(b, uint64(len(r.name)))
	b = append(b, r.name...)
	b = binary.LittleEndian.AppendUint32(b, r.fp)
	for _, f := range r.fields {
		q := unsafe.Add(p, f.off)
		switch f.kind {
		case fBool:
			if *(*bool)(q) {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		case fInt:
			b = binary.AppendVarint(b, int64(*(*int)(q)))
		case fInt8:
			b = binary.AppendVarint(b, int64(*(*int8)(q)))
		case fInt16:
			b = binary.AppendVarint(b, int64(*(*int16)(q)))
		case fInt32:
			b = binary.AppendVarint(b, int64(*(*int32)(q)))
		case fInt64:
			b = binary.AppendVarint(b, *(*int64)(q))
		case fUint:
			b = binary.AppendUvarint(b, uint64(*(*uint)(q)))
		case fUint8:
			b = binary.AppendUvarint(b, uint64(*(*uint8)(q)))
		case fUint16:
			b = binary.AppendUvarint(b, uint64(*(*uint16)(q)))
		case fUint32:
			b = binary.AppendUvarint(b, uint64(*(*uint32)(q)))
		case fUint64:
			b = binary.AppendUvarint(b, *(*uint64)(q))
		case fFloat32:
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(*(*float32)(q)))
		case fFloat64:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(*(*float64)(q)))
		case fString:
			s := *(*string)(q)
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		case fBytes:
			// length+1, so that 0 keeps a nil slice apart from an empty one
			s := *(*[]byte)(q)
			if s == nil {
				b = append(b, 0)
				break
			}
			b = binary.AppendUvarint(b, uint64(len(s))+1)
			b = append(b, s...)
		}
	}
	return b
}

// decodeFields reads the fingerprint and the fields (after tag and name)
// into the value at p and returns the bytes used.
func (r *record) decodeFields(b []byte, p unsafe.Pointer) (int, error) {
	if len(b) < 4 {
		return 0, malformed(r.name + ": short record")
	}
	if fp := binary.LittleEndian.Uint32(b); fp != r.fp {
		return 0, malformed(fmt.Sprintf("%s: record layout %08x, this node's type has %08x (different fields)", r.name, fp, r.fp))
	}
	i := 4
	for _, f := range r.fields {
		q := unsafe.Add(p, f.off)
		switch f.kind {
		case fBool:
			if i >= len(b) || b[i] > 1 {
				return 0, malformed(r.name + ": bad bool")
			}
			*(*bool)(q) = b[i] == 1
			i++
		case fInt, fInt8, fInt16, fInt32, fInt64:
			v, k := binary.Varint(b[i:])
			if k <= 0 {
				return 0, malformed(r.name + ": bad varint")
			}
			i += k
			switch f.kind {
			case fInt:
				if v > math.MaxInt || v < math.MinInt {
					return 0, malformed(r.name + ": int out of range")
				}
				*(*int)(q) = int(v)
			case fInt8:
				if v > math.MaxInt8 || v < math.MinInt8 {
					return 0, malformed(r.name + ": int8 out of range")
				}
				*(*int8)(q) = int8(v)
			case fInt16:
				if v > math.MaxInt16 || v < math.MinInt16 {
					return 0, malformed(r.name + ": int16 out of range")
				}
				*(*int16)(q) = int16(v)
			case fInt32:
				if v > math.MaxInt32 || v < math.MinInt32 {
					return 0, malformed(r.name + ": int32 out of range")
				}
				*(*int32)(q) = int32(v)
			default:
				*(*int64)(q) = v
			}
		case fUint, fUint8, fUint16, fUint32, fUint64:
			v, k := binary.Uvarint(b[i:])
			if k <= 0 {
				return 0, malformed(r.name + ": bad uvarint")
			}
			i += k
			switch f.kind {
			case fUint:
				if uint64(uint(v)) != v {
					return 0, malformed(r.name + ": uint out of range")
				}
				*(*uint)(q) = uint(v)
			case fUint8:
				if v > math.MaxUint8 {
					return 0, malformed(r.name + ": uint8 out of range")
				}
				*(*uint8)(q) = uint8(v)
			case fUint16:
				if v > math.MaxUint16 {
					return 0, malformed(r.name + ": uint16 out of range")
				}
				*(*uint16)(q) = uint16(v)
			case fUint32:
				if v > math.MaxUint32 {
					return 0, malformed(r.name + ": uint32 out of range")
				}
				*(*uint32)(q) = uint32(v)
			default:
				*(*uint64)(q) = v
			}
		case fFloat32:
			if len(b)-i < 4 {
				return 0, malformed(r.name + ": short float32")
			}
			*(*float32)(q) = math.Float32frombits(binary.LittleEndian.Uint32(b[i:]))
			i += 4
		case fFloat64:
			if len(b)-i < 8 {
				return 0, malformed(r.name + ": short float64")
			}
			*(*float64)(q) = math.Float64frombits(binary.LittleEndian.Uint64(b[i:]))
			i += 8
		case fString, fBytes:
			n, k := binary.Uvarint(b[i:])
			if k <= 0 {
				return 0, malformed(r.name + ": bad length")
			}
			i += k
			if f.kind == fBytes {
				if n == 0 {
					*(*[]byte)(q) = nil
					break
				}
				n--
			}
			if n > MaxValueSize || n > uint64(len(b)-i) {
				return 0, malformed(r.name + ": length beyond input")
			}
			s := b[i : i+int(n)]
			i += int(n)
			if f.kind == fString {
				*(*string)(q) = string(s)
			} else {
				*(*[]byte)(q) = append([]byte{}, s...)
			}
		}
	}
	return i, nil
}
