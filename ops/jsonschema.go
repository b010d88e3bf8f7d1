package ops

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/arsenal-go/arsenal/process"
)

// Answer types are described by reflection: the JSON Schema of an
// operation's answer comes from the Go type of its Response, the same type
// Run puts in Result.Data, so the document cannot describe one shape while
// the server sends another (the server checks the type on every answer).
//
// The rules the schema enforces, refused at Register when a type breaks
// them, so that every answer has one form per concept:
//
//   - 64-bit integers (int64, uint64) travel as JSON strings, with the
//     ",string" option of their json tag, because JavaScript and many
//     JSON libraries cannot hold them exactly above 2^53; a count that
//     can never get near 2^53 says so with the tag arsenal:"count".
//   - Durations are never time.Duration (nanoseconds as a bare number):
//     an answer gives milliseconds as a number in a field named …_ms.
//   - Every field without omitempty/omitzero is required, and a struct
//     has no other fields (additionalProperties: false); a pointer field
//     must be omitempty, so no answer holds null.
//   - Slices are arrays; an operation must answer [] rather than null
//     (the schema has no null, so the conformance test catches a nil
//     slice).
//
// Field tags read besides json: doc:"…" is the description, enum:"a,b,c"
// lists the values of a string.
type schemaGen struct {
	defs  obj                     // component name → schema
	names map[reflect.Type]string // named struct types already (being) described
	taken map[string]reflect.Type
}

func newSchemaGen() *schemaGen {
	return &schemaGen{defs: obj{}, names: map[reflect.Type]string{}, taken: map[string]reflect.Type{}}
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[time.Duration]()
	pidType      = reflect.TypeFor[process.PID]()
	rawType      = reflect.TypeFor[json.RawMessage]()
	textType     = reflect.TypeFor[encoding.TextMarshaler]()
	jsonType     = reflect.TypeFor[json.Marshaler]()
)

// schema returns the JSON Schema of values of t, adding named structs to
// g.defs and referring to them.
func (g *schemaGen) schema(t reflect.Type) (obj, error) {
	switch t {
	case timeType:
		return obj{"type": "string", "format": "date-time"}, nil
	case pidType:
		return obj{"type": "string", "format": "arsenal-pid", "pattern": pidPattern}, nil
	case durationType:
		return nil, fmt.Errorf("%s: a time.Duration would travel as nanoseconds; give milliseconds as a float64 field named …_ms", t)
	case rawType:
		return obj{}, nil
	}
	if t.Kind() != reflect.Pointer && (t.Implements(jsonType) || reflect.PointerTo(t).Implements(jsonType)) {
		return nil, fmt.Errorf("%s has its own MarshalJSON: its shape cannot be described; use plain fields", t)
	}
	if t.Kind() != reflect.Pointer && t.Implements(textType) {
		return obj{"type": "string"}, nil
	}
	switch t.Kind() {
	case reflect.String:
		return obj{"type": "string"}, nil
	case reflect.Bool:
		return obj{"type": "boolean"}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint, reflect.Uintptr:
		s := obj{"type": "integer"}
		if t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uintptr {
			s["minimum"] = 0
		}
		return s, nil
	case reflect.Int64, reflect.Uint64:
		return nil, fmt.Errorf("%s is 64-bit: give it the json option \",string\" (an identifier) or the tag arsenal:\"count\" (a count far below 2^53)", t)
	case reflect.Float32, reflect.Float64:
		return obj{"type": "number"}, nil
	case reflect.Interface:
		return obj{}, nil // any JSON value
	case reflect.Pointer:
		return g.schema(t.Elem())
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return obj{"type": "string", "contentEncoding": "base64"}, nil
		}
		items, err := g.schema(t.Elem())
		if err != nil {
			return nil, err
		}
		return obj{"type": "array", "items": items}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%s: map keys must be strings", t)
		}
		v, err := g.schema(t.Elem())
		if err != nil {
			return nil, err
		}
		return obj{"type": "object", "additionalProperties": v}, nil
	case reflect.Struct:
		return g.structRef(t)
	}
	return nil, fmt.Errorf("%s (%s) cannot travel as JSON", t, t.Kind())
}

func (g *schemaGen) structRef(t reflect.Type) (obj, error) {
	if t.Name() == "" {
		return g.structSchema(t)
	}
	if name, ok := g.names[t]; ok {
		return ref("schemas", name), nil
	}
	name := t.Name()
	if other, clash := g.taken[name]; clash && other != t {
		pkg := t.PkgPath()[strings.LastIndexByte(t.PkgPath(), '/')+1:]
		name = strings.ToUpper(pkg[:1]) + pkg[1:] + name
	}
	g.names[t], g.taken[name] = name, t
	s, err := g.structSchema(t)
	if err != nil {
		delete(g.names, t)
		return nil, err
	}
	g.defs[name] = s
	return ref("schemas", name), nil
}

func (g *schemaGen) structSchema(t reflect.Type) (obj, error) {
	props := obj{}
	required := []string{}
	if err := g.fields(t, props, &required); err != nil {
		return nil, err
	}
	s := obj{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s, nil
}

func (g *schemaGen) fields(t reflect.Type, props obj, required *[]string) error {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			if err := g.fields(f.Type, props, required); err != nil {
				return err
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		optional := hasOpt(opts, "omitempty") || hasOpt(opts, "omitzero")
		var s obj
		var err error
		ft := f.Type
		switch {
		case hasOpt(opts, "string") && (ft.Kind() == reflect.Int64 || ft.Kind() == reflect.Uint64):
			s = obj{"type": "string", "pattern": `^-?[0-9]+$`}
			if ft.Kind() == reflect.Uint64 {
				s["pattern"] = `^[0-9]+$`
			}
		case f.Tag.Get("arsenal") == "count" && (ft.Kind() == reflect.Int64 || ft.Kind() == reflect.Uint64):
			s = obj{"type": "integer"}
			if ft.Kind() == reflect.Uint64 {
				s["minimum"] = 0
			}
		default:
			if ft.Kind() == reflect.Pointer && !optional {
				return fmt.Errorf("%s.%s is a pointer without omitempty: it could be null", t, f.Name)
			}
			s, err = g.schema(ft)
			if err != nil {
				return fmt.Errorf("%s.%s: %w", t, f.Name, err)
			}
		}
		if e := f.Tag.Get("enum"); e != "" {
			s = withKey(s, "enum", strings.Split(e, ","))
		}
		if d := f.Tag.Get("doc"); d != "" {
			s = withKey(s, "description", d)
		}
		props[name] = s
		if !optional {
			*required = append(*required, name)
		}
	}
	return nil
}

// withKey adds a keyword to a schema; a $ref is wrapped, as siblings of
// $ref are best not relied on by generators.
func withKey(s obj, k string, v any) obj {
	if _, isRef := s["$ref"]; isRef {
		return obj{"allOf": []obj{s}, k: v}
	}
	out := obj{}
	for kk, vv := range s {
		out[kk] = vv
	}
	out[k] = v
	return out
}

func hasOpt(opts, want string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// answerType is the type an operation's Data must have: Response's type,
// with a pointer taken off.
func answerType(v any) reflect.Type {
	t := reflect.TypeOf(v)
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}
