package ops

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/arsenal-go/arsenal/process"
)

// param is a Param compiled at registration: its regular expression and
// enum set are built once, not per request.
type param struct {
	Param
	item Type // element type of a list
	re   *regexp.Regexp
	enum map[string]bool
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func validType(t Type) bool {
	switch t {
	case TypeString, TypeInt, TypeFloat, TypeBool, TypeDuration, TypePID, TypeNode, TypeEnum, TypeList, TypeObject:
		return true
	}
	return false
}

// compileParam checks a parameter's description and compiles it.
func compileParam(p Param, method string) (*param, error) {
	c := &param{Param: p}
	if !nameRE.MatchString(p.Name) {
		return nil, fmt.Errorf("name %q must be snake_case (%s)", p.Name, nameRE)
	}
	if !validType(p.Type) {
		return nil, fmt.Errorf("unknown type %q", p.Type)
	}
	switch p.In {
	case InPath:
		if p.Type == TypeList || p.Type == TypeObject {
			return nil, fmt.Errorf("a path parameter cannot be a %s", p.Type)
		}
		if p.Default != nil {
			return nil, errors.New("a path parameter cannot have a default: it is always given")
		}
		c.Required = true
	case InQuery:
		if p.Type == TypeObject {
			return nil, errors.New("an object parameter must be in the body: a query string cannot carry one")
		}
	case InBody:
		if method == "GET" {
			return nil, errors.New("a GET operation cannot have body parameters")
		}
	default:
		return nil, fmt.Errorf("unknown location %q (want path, query or body)", p.In)
	}
	if p.Required && p.Default != nil && p.In != InPath {
		return nil, errors.New("a required parameter cannot have a default")
	}
	elem := p.Type
	if p.Type == TypeList {
		c.item = p.Items
		if c.item == "" {
			c.item = TypeString
		}
		if !validType(c.item) || c.item == TypeList || c.item == TypeObject {
			return nil, fmt.Errorf("list items cannot be of type %q", p.Items)
		}
		elem = c.item
	} else if p.Items != "" {
		return nil, errors.New("Items is only for lists")
	}
	if elem == TypeEnum {
		if len(p.Enum) == 0 {
			return nil, errors.New("an enum needs its values in Enum")
		}
		c.enum = make(map[string]bool, len(p.Enum))
		for _, v := range p.Enum {
			if v == "" || c.enum[v] {
				return nil, fmt.Errorf("enum value %q is empty or repeated", v)
			}
			c.enum[v] = true
		}
	} else if len(p.Enum) > 0 {
		return nil, errors.New("Enum is only for enums (and lists of enums)")
	}
	if p.Pattern != "" {
		if elem != TypeString {
			return nil, errors.New("Pattern is only for strings (and lists of strings)")
		}
		re, err := regexp.Compile(p.Pattern)
		if err != nil {
			return nil, fmt.Errorf("pattern: %w", err)
		}
		c.re = re
	}
	if p.Min != nil || p.Max != nil {
		switch p.Type {
		case TypeInt, TypeFloat, TypeString, TypeList:
		case TypeDuration:
			return nil, errors.New("bound a duration with MinDuration and MaxDuration, not Min and Max")
		default:
			return nil, fmt.Errorf("Min and Max do not apply to a %s", p.Type)
		}
		for _, b := range []*float64{p.Min, p.Max} {
			if b != nil && (math.IsNaN(*b) || math.IsInf(*b, 0)) {
				return nil, errors.New("Min and Max must be finite")
			}
			if b != nil && p.Type != TypeFloat && *b != math.Trunc(*b) {
				return nil, fmt.Errorf("Min and Max of a %s must be whole numbers", p.Type)
			}
		}
		if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
			return nil, fmt.Errorf("Min %v is above Max %v", *p.Min, *p.Max)
		}
	}
	if p.MinDuration != 0 || p.MaxDuration != 0 {
		if elem != TypeDuration {
			return nil, errors.New("MinDuration and MaxDuration are only for durations")
		}
		if p.MinDuration < 0 || p.MaxDuration < 0 {
			return nil, errors.New("MinDuration and MaxDuration cannot be negative")
		}
		if p.MaxDuration != 0 && p.MinDuration > p.MaxDuration {
			return nil, fmt.Errorf("MinDuration %s is above MaxDuration %s", p.MinDuration, p.MaxDuration)
		}
	}
	if p.Default != nil {
		if reason := c.checkGo(p.Default); reason != "" {
			return nil, fmt.Errorf("default %#v: %s", p.Default, reason)
		}
	}
	return c, nil
}

// FieldError is one offending parameter in a validation error.
type FieldError struct {
	Field  string `json:"field"`
	In     In     `json:"in"`
	Reason string `json:"reason"`
}

// show quotes a value for an error message, shortened so that a huge
// input cannot make a huge answer.
func show(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + fmt.Sprintf("… (%d bytes)", len(s))
	}
	return strconv.Quote(s)
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// fromString reads one value of type t from a query string or path
// segment. It returns the value or the reason it is not one.
func (p *param) fromString(t Type, s string) (any, string) {
	switch t {
	case TypeString, TypeEnum:
		if !utf8.ValidString(s) {
			return nil, "must be valid UTF-8"
		}
		return s, ""
	case TypeNode:
		if err := process.ValidateNodeName(s); err != nil {
			if len(s) > 255 {
				return nil, "must be a node name of at most 255 bytes, got " + show(s)
			}
			return nil, "must be a node name: " + err.Error()
		}
		return s, ""
	case TypeInt:
		n, err := strconv.ParseInt(s, 10, strconv.IntSize)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return nil, "is out of the range of an integer, got " + show(s)
			}
			return nil, "must be an integer, got " + show(s)
		}
		return int(n), ""
	case TypeFloat:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, "must be a finite number, got " + show(s)
		}
		return f, ""
	case TypeBool:
		switch strings.ToLower(s) {
		case "true", "1":
			return true, ""
		case "false", "0":
			return false, ""
		}
		return nil, "must be true or false (or 1 or 0), got " + show(s)
	case TypeDuration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, "must be a duration such as 500ms, 5s or 1m30s, got " + show(s)
		}
		return d, ""
	case TypePID:
		if len(s) > 512 {
			return nil, "must be a PID (ID.INCARNATION@NODE), got " + show(s)
		}
		pid, err := process.ParsePID(s)
		if err != nil {
			return nil, "must be a PID: " + err.Error()
		}
		return pid, ""
	}
	return nil, "cannot be read from text" // objects; excluded at registration
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// fromJSON reads one value of type t from a decoded JSON value (decoded
// with UseNumber). JSON values keep their JSON type: "5" is not an int.
func (p *param) fromJSON(t Type, v any) (any, string) {
	switch t {
	case TypeString, TypeEnum, TypeNode, TypePID, TypeDuration:
		s, ok := v.(string)
		if !ok {
			want := map[Type]string{TypeString: "a string", TypeEnum: "a string", TypeNode: "a node name string",
				TypePID: "a PID string", TypeDuration: `a duration string such as "5s"`}[t]
			return nil, "must be " + want + ", got " + jsonKind(v)
		}
		return p.fromString(t, s)
	case TypeInt:
		n, ok := v.(json.Number)
		if !ok {
			return nil, "must be an integer, got " + jsonKind(v)
		}
		i, err := strconv.ParseInt(string(n), 10, strconv.IntSize)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return nil, "is out of the range of an integer, got " + string(n)
			}
			return nil, "must be an integer, got " + show(string(n))
		}
		return int(i), ""
	case TypeFloat:
		n, ok := v.(json.Number)
		if !ok {
			return nil, "must be a number, got " + jsonKind(v)
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, "is out of the range of a float, got " + show(string(n))
		}
		return f, ""
	case TypeBool:
		b, ok := v.(bool)
		if !ok {
			return nil, "must be true or false, got " + jsonKind(v)
		}
		return b, ""
	case TypeObject:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, "must be an object, got " + jsonKind(v)
		}
		return plainNumbers(m).(map[string]any), ""
	}
	return nil, "unsupported type"
}

// plainNumbers replaces json.Number inside an object by int64 or float64,
// so that operations (and the node codec) see ordinary Go numbers.
func plainNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = plainNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = plainNumbers(e)
		}
	}
	return v
}

// checkItem checks the constraints that apply to a single value and to
// each item of a list: enum, pattern, node name, duration bounds.
func (p *param) checkItem(t Type, v any) string {
	switch t {
	case TypeEnum:
		if s := v.(string); !p.enum[s] {
			return "must be one of " + strings.Join(p.Enum, ", ") + ", got " + show(s)
		}
	case TypeString:
		if p.re != nil && !p.re.MatchString(v.(string)) {
			return "must match " + p.Pattern + ", got " + show(v.(string))
		}
	case TypeDuration:
		d := v.(time.Duration)
		switch {
		case d < 0:
			return "must not be negative, got " + d.String()
		case p.MinDuration != 0 && d < p.MinDuration:
			return "must be at least " + p.MinDuration.String() + ", got " + d.String()
		case p.MaxDuration != 0 && d > p.MaxDuration:
			return "must be at most " + p.MaxDuration.String() + ", got " + d.String()
		}
	}
	return ""
}

// checkBounds checks Min and Max against a number (unit ""), a string
// length (unit "character") or a list length (unit "item").
func (p *param) checkBounds(x float64, unit string) string {
	verb := "be"
	if unit == "item" {
		verb = "have"
	}
	amount := func(b float64) string {
		switch {
		case unit == "":
			return num(b)
		case b == 1:
			return "1 " + unit
		}
		return num(b) + " " + unit + "s"
	}
	if p.Min != nil && x < *p.Min {
		return "must " + verb + " at least " + amount(*p.Min) + ", got " + num(x)
	}
	if p.Max != nil && x > *p.Max {
		return "must " + verb + " at most " + amount(*p.Max) + ", got " + num(x)
	}
	return ""
}

// checkScalar checks a single (not list) value.
func (p *param) checkScalar(v any) string {
	if r := p.checkItem(p.Type, v); r != "" {
		return r
	}
	switch p.Type {
	case TypeInt:
		return p.checkBounds(float64(v.(int)), "")
	case TypeFloat:
		return p.checkBounds(v.(float64), "")
	case TypeString:
		return p.checkBounds(float64(utf8.RuneCountInString(v.(string))), "character")
	}
	return ""
}

// makeList builds the typed slice Params holds for a list.
func makeList(t Type, items []any) any {
	switch t {
	case TypeString, TypeNode, TypeEnum:
		return collect[string](items)
	case TypeInt:
		return collect[int](items)
	case TypeFloat:
		return collect[float64](items)
	case TypeBool:
		return collect[bool](items)
	case TypeDuration:
		return collect[time.Duration](items)
	case TypePID:
		return collect[process.PID](items)
	}
	return items
}

func collect[T any](items []any) []T {
	out := make([]T, len(items))
	for i, v := range items {
		out[i] = v.(T)
	}
	return out
}

// spread is the inverse of makeList, for defaults given as typed slices:
// the slice type must be exactly the one makeList builds for t.
func spread(t Type, v any) ([]any, bool) {
	var items []any
	ok := false
	switch t {
	case TypeString, TypeNode, TypeEnum:
		var x []string
		x, ok = v.([]string)
		items = anys(x)
	case TypeInt:
		var x []int
		x, ok = v.([]int)
		items = anys(x)
	case TypeFloat:
		var x []float64
		x, ok = v.([]float64)
		items = anys(x)
	case TypeBool:
		var x []bool
		x, ok = v.([]bool)
		items = anys(x)
	case TypeDuration:
		var x []time.Duration
		x, ok = v.([]time.Duration)
		items = anys(x)
	case TypePID:
		var x []process.PID
		x, ok = v.([]process.PID)
		items = anys(x)
	}
	return items, ok
}

func anys[T any](s []T) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// goType names the Go type a value of type t is held as.
func goType(t Type, item Type) string {
	switch t {
	case TypeString, TypeNode, TypeEnum:
		return "string"
	case TypeInt:
		return "int"
	case TypeFloat:
		return "float64"
	case TypeBool:
		return "bool"
	case TypeDuration:
		return "time.Duration"
	case TypePID:
		return "process.PID"
	case TypeObject:
		return "map[string]any"
	case TypeList:
		return "[]" + goType(item, "")
	}
	return "?"
}

func isGoType(t Type, v any) bool {
	switch t {
	case TypeString, TypeNode, TypeEnum:
		_, ok := v.(string)
		return ok
	case TypeInt:
		_, ok := v.(int)
		return ok
	case TypeFloat:
		f, ok := v.(float64)
		return ok && !math.IsNaN(f) && !math.IsInf(f, 0)
	case TypeBool:
		_, ok := v.(bool)
		return ok
	case TypeDuration:
		_, ok := v.(time.Duration)
		return ok
	case TypePID:
		p, ok := v.(process.PID)
		return ok && !p.IsZero()
	case TypeObject:
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

// checkGo checks a Go value (a default) against the parameter.
func (p *param) checkGo(v any) string {
	if p.Type == TypeList {
		items, ok := spread(p.item, v)
		if !ok {
			return "must have Go type " + goType(TypeList, p.item)
		}
		for i, it := range items {
			if r := p.checkItem(p.item, it); r != "" {
				return fmt.Sprintf("item %d: %s", i+1, r)
			}
			if p.item == TypeNode {
				if err := process.ValidateNodeName(it.(string)); err != nil {
					return fmt.Sprintf("item %d: %v", i+1, err)
				}
			}
		}
		return p.checkBounds(float64(len(items)), "item")
	}
	if !isGoType(p.Type, v) {
		switch p.Type {
		case TypeFloat:
			return "must have Go type float64 and be finite"
		case TypePID:
			return "must have Go type process.PID and not be the zero PID"
		}
		return "must have Go type " + goType(p.Type, "")
	}
	if p.Type == TypeNode {
		if err := process.ValidateNodeName(v.(string)); err != nil {
			return err.Error()
		}
	}
	if p.Type == TypeObject {
		return ""
	}
	return p.checkScalar(v)
}

// parseQuery reads a query or path parameter from its values. Lists take
// repeated keys and comma-separated items; anything else must be given
// once. It appends the reasons a value is bad to errs.
func (p *param) parseQuery(values []string, errs []FieldError) (any, []FieldError) {
	bad := func(r string) []FieldError { return append(errs, FieldError{Field: p.Name, In: p.In, Reason: r}) }
	if p.Type != TypeList {
		if len(values) > 1 {
			return nil, bad(fmt.Sprintf("is given %d times; give it once", len(values)))
		}
		v, r := p.fromString(p.Type, values[0])
		if r == "" {
			r = p.checkScalar(v)
		}
		if r != "" {
			return nil, bad(r)
		}
		return v, errs
	}
	var items []any
	ok := true
	n := 0
	for _, raw := range values {
		if raw == "" {
			continue // "?nodes=" is an empty list
		}
		for s := range strings.SplitSeq(raw, ",") {
			n++
			if s == "" {
				errs, ok = bad(fmt.Sprintf("item %d is empty", n)), false
				continue
			}
			v, r := p.fromString(p.item, s)
			if r == "" {
				r = p.checkItem(p.item, v)
			}
			if r != "" {
				errs, ok = bad(fmt.Sprintf("item %d: %s", n, r)), false
				continue
			}
			items = append(items, v)
		}
	}
	if !ok {
		return nil, errs
	}
	if r := p.checkBounds(float64(len(items)), "item"); r != "" {
		return nil, bad(r)
	}
	return makeList(p.item, items), errs
}

// parseJSON reads a body parameter from its decoded JSON value.
func (p *param) parseJSON(raw any, errs []FieldError) (any, []FieldError) {
	bad := func(r string) []FieldError { return append(errs, FieldError{Field: p.Name, In: InBody, Reason: r}) }
	if raw == nil {
		if p.Required {
			return nil, bad("is required, got null")
		}
		return nil, bad("must not be null; leave it out to use the default")
	}
	if p.Type != TypeList {
		v, r := p.fromJSON(p.Type, raw)
		if r == "" && p.Type != TypeObject {
			r = p.checkScalar(v)
		}
		if r != "" {
			return nil, bad(r)
		}
		return v, errs
	}
	arr, isArr := raw.([]any)
	if !isArr {
		return nil, bad("must be an array, got " + jsonKind(raw))
	}
	items := make([]any, 0, len(arr))
	ok := true
	for i, e := range arr {
		v, r := p.fromJSON(p.item, e)
		if r == "" {
			r = p.checkItem(p.item, v)
		}
		if r != "" {
			errs, ok = bad(fmt.Sprintf("item %d: %s", i+1, r)), false
			continue
		}
		items = append(items, v)
	}
	if !ok {
		return nil, errs
	}
	if r := p.checkBounds(float64(len(items)), "item"); r != "" {
		return nil, bad(r)
	}
	return makeList(p.item, items), errs
}

// names lists the parameter names of ps in one location, for messages.
func names(ps []*param, in In) string {
	var out []string
	for _, p := range ps {
		if p.In == in {
			out = append(out, p.Name)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// isPayload reports whether the audit log redacts the parameter.
func (p *param) isPayload() bool { return p.Payload || p.Type == TypeObject }
