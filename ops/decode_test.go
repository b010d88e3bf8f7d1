package ops

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/process"
)

// sinkOp has a parameter of every type, in the query and in the body.
func sinkOp() Operation {
	return okOp("test.sink", "POST", "/api/v1/sink/{pid}",
		Param{Name: "pid", Type: TypePID, In: InPath},
		Param{Name: "s", Type: TypeString, In: InQuery, Pattern: "^[a-z]+$", Min: new(2.0), Max: new(8.0)},
		Param{Name: "i", Type: TypeInt, In: InQuery, Min: new(1.0), Max: new(1000.0), Default: 10},
		Param{Name: "f", Type: TypeFloat, In: InQuery, Min: new(0.0), Max: new(1.0)},
		Param{Name: "b", Type: TypeBool, In: InQuery},
		Param{Name: "d", Type: TypeDuration, In: InQuery, MinDuration: time.Millisecond, MaxDuration: time.Minute, Default: 5 * time.Second},
		Param{Name: "p", Type: TypePID, In: InQuery},
		Param{Name: "n", Type: TypeNode, In: InQuery},
		Param{Name: "e", Type: TypeEnum, In: InQuery, Enum: []string{"mailbox", "age"}},
		Param{Name: "li", Type: TypeList, Items: TypeInt, In: InQuery, Max: new(3.0)},
		Param{Name: "le", Type: TypeList, Items: TypeEnum, Enum: []string{"up", "down"}, In: InQuery},
		Param{Name: "ls", Type: TypeList, In: InQuery, Default: []string{"x"}},
		Param{Name: "bs", Type: TypeString, In: InBody},
		Param{Name: "bi", Type: TypeInt, In: InBody},
		Param{Name: "bf", Type: TypeFloat, In: InBody},
		Param{Name: "bb", Type: TypeBool, In: InBody},
		Param{Name: "bd", Type: TypeDuration, In: InBody},
		Param{Name: "bp", Type: TypePID, In: InBody},
		Param{Name: "bn", Type: TypeNode, In: InBody},
		Param{Name: "be", Type: TypeEnum, In: InBody, Enum: []string{"send", "cast", "call"}},
		Param{Name: "bl", Type: TypeList, Items: TypeDuration, In: InBody, Min: new(1.0)},
		Param{Name: "bo", Type: TypeObject, In: InBody},
	)
}

func sinkEntry(t *testing.T) *entry {
	t.Helper()
	reg := NewRegistry()
	if err := reg.Register(sinkOp()); err != nil {
		t.Fatal(err)
	}
	return reg.byName["test.sink"]
}

func decodeReq(e *entry, pid, query, body string) (Params, *Error) {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/sink/x", nil)
	r.URL.RawQuery = query
	r.SetPathValue("pid", pid)
	return e.decode(r, []byte(body))
}

const testPID = "42.abc@api@10.0.0.5"

var pid42 = process.PID{Node: "api@10.0.0.5", Incarnation: 13368, ID: 42} // "abc" in base 36

func TestDecodeCoercesEveryType(t *testing.T) {
	e := sinkEntry(t)
	cases := []struct {
		query, body string
		name        string
		want        any
	}{
		{"", "", "pid", pid42},
		{"s=abc", "", "s", "abc"},
		{"i=42", "", "i", 42},
		{"i=%2B7", "", "i", 7},
		{"f=0.25", "", "f", 0.25},
		{"f=1", "", "f", 1.0},
		{"b=true", "", "b", true},
		{"b=false", "", "b", false},
		{"b=1", "", "b", true},
		{"b=0", "", "b", false},
		{"b=TRUE", "", "b", true},
		{"d=250ms", "", "d", 250 * time.Millisecond},
		{"d=1m", "", "d", time.Minute},
		{"p=" + testPID, "", "p", pid42},
		{"n=api@10.0.0.5", "", "n", "api@10.0.0.5"},
		{"e=age", "", "e", "age"},
		{"li=1,2", "", "li", []int{1, 2}},
		{"li=1&li=2&li=3", "", "li", []int{1, 2, 3}},
		{"li=1,2&li=3", "", "li", []int{1, 2, 3}},
		{"le=up,down", "", "le", []string{"up", "down"}},
		{"ls=", "", "ls", []string{}},
		{"ls=a,b", "", "ls", []string{"a", "b"}},
		// Defaults, for absent values only.
		{"", "", "i", 10},
		{"", "", "d", 5 * time.Second},
		{"", "", "ls", []string{"x"}},
		// Body values keep their JSON type.
		{"", `{"bs":"x y"}`, "bs", "x y"},
		{"", `{"bi":7}`, "bi", 7},
		{"", `{"bi":-9007199254740993}`, "bi", -9007199254740993},
		{"", `{"bf":1}`, "bf", 1.0},
		{"", `{"bf":1.5e3}`, "bf", 1500.0},
		{"", `{"bb":false}`, "bb", false},
		{"", `{"bd":"1m30s"}`, "bd", 90 * time.Second},
		{"", `{"bp":"` + testPID + `"}`, "bp", pid42},
		{"", `{"bn":"n1"}`, "bn", "n1"},
		{"", `{"be":"cast"}`, "be", "cast"},
		{"", `{"bl":["1s","2ms"]}`, "bl", []time.Duration{time.Second, 2 * time.Millisecond}},
		{"", `{"bo":{"a":1,"b":[1.5,"x"],"c":{"d":true}}}`, "bo",
			map[string]any{"a": int64(1), "b": []any{1.5, "x"}, "c": map[string]any{"d": true}}},
		{"", " \n ", "i", 10}, // a blank body is no body
	}
	for _, c := range cases {
		t.Run(c.query+c.body, func(t *testing.T) {
			ps, err := decodeReq(e, testPID, c.query, c.body)
			if err != nil {
				t.Fatalf("error %d %s: %v %v", err.Status, err.Code, err.Message, err.Details)
			}
			got := ps[c.name]
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("%s = %#v (%T), want %#v (%T)", c.name, got, got, c.want, c.want)
			}
		})
	}
}

func TestDecodeGetters(t *testing.T) {
	e := sinkEntry(t)
	ps, err := decodeReq(e, testPID, "s=abc&f=0.5&b=1&n=n1&li=4&le=up&p="+testPID,
		`{"bo":{"k":"v"},"bi":3}`)
	if err != nil {
		t.Fatal(err)
	}
	if ps.String("s") != "abc" || ps.Int("i") != 10 || ps.Float("f") != 0.5 || !ps.Bool("b") ||
		ps.Duration("d") != 5*time.Second || ps.PID("pid") != pid42 || ps.PID("p") != pid42 ||
		ps.String("n") != "n1" || ps.Ints("li")[0] != 4 || ps.Strings("le")[0] != "up" ||
		ps.Strings("ls")[0] != "x" || ps.Object("bo")["k"] != "v" || ps.Int("bi") != 3 {
		t.Fatalf("getters: %#v", ps)
	}
	if ps.Has("e") || ps.String("e") != "" || ps.PIDs("nothing") != nil {
		t.Fatal("absent parameter should be absent and zero")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Int of a string parameter should panic")
		}
	}()
	ps.Int("s")
}

// TestDecodeRejects checks every rejection reason, over HTTP.
func TestDecodeRejects(t *testing.T) {
	reg := NewRegistry()
	reg.MustRegister(sinkOp())
	srv := serve(t, reg, ServerConfig{OpenReads: true, Tokens: testTokens})
	cases := []struct {
		pid, query, body string
		field            string
		in               In
		reason           string
	}{
		{"nope", "", "", "pid", InPath, "must be a PID: malformed pid"},
		{"0.1@n", "", "", "pid", InPath, "id is not a positive decimal integer"},
		{"", "s=ABC", "", "s", InQuery, "must match ^[a-z]+$, got \"ABC\""},
		{"", "s=a", "", "s", InQuery, "must be at least 2 characters, got 1"},
		{"", "s=abcdefghi", "", "s", InQuery, "must be at most 8 characters, got 9"},
		{"", "s=%ff%fe", "", "s", InQuery, "must be valid UTF-8"},
		{"", "i=abc", "", "i", InQuery, `must be an integer, got "abc"`},
		{"", "i=1.5", "", "i", InQuery, `must be an integer, got "1.5"`},
		{"", "i=", "", "i", InQuery, `must be an integer, got ""`},
		{"", "i=0", "", "i", InQuery, "must be at least 1, got 0"},
		{"", "i=5000", "", "i", InQuery, "must be at most 1000, got 5000"},
		{"", "i=99999999999999999999", "", "i", InQuery, "out of the range of an integer"},
		{"", "i=1&i=2", "", "i", InQuery, "is given 2 times; give it once"},
		{"", "f=NaN", "", "f", InQuery, "must be a finite number"},
		{"", "f=-Inf", "", "f", InQuery, "must be a finite number"},
		{"", "f=1e999", "", "f", InQuery, "must be a finite number"},
		{"", "f=1.5", "", "f", InQuery, "must be at most 1, got 1.5"},
		{"", "b=yes", "", "b", InQuery, "must be true or false (or 1 or 0), got \"yes\""},
		{"", "b=", "", "b", InQuery, "must be true or false"},
		{"", "d=5", "", "d", InQuery, "must be a duration such as 500ms, 5s or 1m30s, got \"5\""},
		{"", "d=-1s", "", "d", InQuery, "must not be negative, got -1s"},
		{"", "d=500us", "", "d", InQuery, "must be at least 1ms, got 500µs"},
		{"", "d=2m", "", "d", InQuery, "must be at most 1m0s, got 2m0s"},
		{"", "p=42", "", "p", InQuery, "no '@' before the node name"},
		{"", "p=" + strings.Repeat("9", 600), "", "p", InQuery, "(600 bytes)"},
		{"", "n=bad/name", "", "n", InQuery, "must be a node name"},
		{"", "n=", "", "n", InQuery, "node name is empty"},
		{"", "e=size", "", "e", InQuery, `must be one of mailbox, age, got "size"`},
		{"", "li=1,x", "", "li", InQuery, `item 2: must be an integer, got "x"`},
		{"", "li=1,,2", "", "li", InQuery, "item 2 is empty"},
		{"", "li=1,2,3,4", "", "li", InQuery, "must have at most 3 items, got 4"},
		{"", "le=up,left", "", "le", InQuery, `item 2: must be one of up, down, got "left"`},
		{"", "zz=1", "", "zz", InQuery, "unknown parameter (query parameters are: b, d, e, f, i, le, li, ls, n, p, s)"},
		{"", "bs=x", "", "bs", InQuery, "is a body parameter: send it in the JSON body"},
		{"", "pid=x", "", "pid", InQuery, "is a path parameter"},
		{"", "", `{"bs":5}`, "bs", InBody, "must be a string, got a number"},
		{"", "", `{"bs":null}`, "bs", InBody, "must not be null; leave it out to use the default"},
		{"", "", `{"bi":"5"}`, "bi", InBody, "must be an integer, got a string"},
		{"", "", `{"bi":1.5}`, "bi", InBody, `must be an integer, got "1.5"`},
		{"", "", `{"bi":1e3}`, "bi", InBody, `must be an integer, got "1e3"`},
		{"", "", `{"bi":99999999999999999999}`, "bi", InBody, "out of the range of an integer"},
		{"", "", `{"bf":"x"}`, "bf", InBody, "must be a number, got a string"},
		{"", "", `{"bf":1e400}`, "bf", InBody, "out of the range of a float"},
		{"", "", `{"bb":"true"}`, "bb", InBody, "must be true or false, got a string"},
		{"", "", `{"bd":5}`, "bd", InBody, `must be a duration string such as "5s", got a number`},
		{"", "", `{"bd":"-5s"}`, "bd", InBody, "must not be negative"},
		{"", "", `{"bp":"x"}`, "bp", InBody, "must be a PID"},
		{"", "", `{"bn":3}`, "bn", InBody, "must be a node name string, got a number"},
		{"", "", `{"be":"x"}`, "be", InBody, "must be one of send, cast, call"},
		{"", "", `{"bl":"1s"}`, "bl", InBody, "must be an array, got a string"},
		{"", "", `{"bl":[]}`, "bl", InBody, "must have at least 1 item, got 0"},
		{"", "", `{"bl":["1s",2]}`, "bl", InBody, `item 2: must be a duration string such as "5s", got a number`},
		{"", "", `{"bo":[1]}`, "bo", InBody, "must be an object, got an array"},
		{"", "", `{"zz":1}`, "zz", InBody, "unknown parameter (body parameters are: bb, bd, be, bf, bi, bl, bn, bo, bp, bs)"},
		{"", "", `{"s":"abc"}`, "s", InBody, "is a query parameter: send it in the query string"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s?%s %s", c.pid, c.query, c.body), func(t *testing.T) {
			pid := c.pid
			if pid == "" {
				pid = testPID
			}
			a := do(t, "POST", srv.URL+"/api/v1/sink/"+pid+"?"+c.query, operatorToken, c.body)
			if a.status != http.StatusUnprocessableEntity || a.errCode() != "validation_failed" {
				t.Fatalf("status %d code %q, want 422 validation_failed: %s", a.status, a.errCode(), a.raw)
			}
			ds := a.details()
			if len(ds) != 1 {
				t.Fatalf("want one detail, got %v", ds)
			}
			d := ds[0]
			if d["field"] != c.field || d["in"] != string(c.in) || !strings.Contains(d["reason"].(string), c.reason) {
				t.Fatalf("detail %v, want field %s in %s reason containing %q", d, c.field, c.in, c.reason)
			}
			if !strings.Contains(a.errMessage(), c.field) {
				t.Fatalf("message %q does not name %s", a.errMessage(), c.field)
			}
		})
	}
}

func TestDecodeReportsEveryError(t *testing.T) {
	reg := NewRegistry()
	reg.MustRegister(sinkOp(), okOp("test.req", "POST", "/api/v1/req",
		Param{Name: "q", Type: TypeInt, In: InQuery, Required: true},
		Param{Name: "r", Type: TypeString, In: InBody, Required: true},
		Param{Name: "o", Type: TypeString, In: InBody, Required: true},
	))
	srv := serve(t, reg, ServerConfig{Tokens: testTokens})

	a := do(t, "POST", srv.URL+"/api/v1/sink/bad?i=0&b=maybe&zz=1&li=x,y", operatorToken, `{"bi":"x","yy":1}`)
	if a.status != 422 {
		t.Fatalf("status %d: %s", a.status, a.raw)
	}
	var got []string
	for _, d := range a.details() {
		got = append(got, fmt.Sprintf("%s:%s", d["in"], d["field"]))
	}
	want := []string{"path:pid", "query:b", "query:i", "query:li", "query:li", "query:zz", "body:bi", "body:yy"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fields %v, want %v", got, want)
	}
	if m := a.errMessage(); m != "invalid parameters for test.sink: pid, b, i, li, zz, bi, yy" {
		t.Fatalf("message %q", m)
	}

	a = do(t, "POST", srv.URL+"/api/v1/req", operatorToken, `{"r":null}`)
	got = nil
	for _, d := range a.details() {
		got = append(got, fmt.Sprintf("%s:%s:%s", d["in"], d["field"], d["reason"]))
	}
	want = []string{"query:q:is required", "body:o:is required", "body:r:is required, got null"}
	if a.status != 422 || !reflect.DeepEqual(got, want) {
		t.Fatalf("status %d fields %v, want %v", a.status, got, want)
	}
}

func TestDecodeMalformed(t *testing.T) {
	reg := NewRegistry()
	reg.MustRegister(sinkOp())
	srv := serve(t, reg, ServerConfig{Tokens: testTokens, MaxBodyBytes: 1024})
	u := srv.URL + "/api/v1/sink/" + testPID
	for _, c := range []struct{ query, body, msg string }{
		{"", "{", "malformed JSON body"},
		{"", `{"bi":1} {}`, "data after the JSON object"},
		{"", `{"bi":1}x`, "data after the JSON object"},
		{"", `[1]`, "the JSON body must be an object of parameters, got an array"},
		{"", `"x"`, "got a string"},
		{"a=%zz", "", "malformed query string"},
		{"a=1;b=2", "", "malformed query string"},
	} {
		a := do(t, "POST", u+"?"+c.query, operatorToken, c.body)
		if a.status != 400 || a.errCode() != "bad_request" || !strings.Contains(a.errMessage(), c.msg) {
			t.Errorf("%q %q: %d %s, want 400 with %q", c.query, c.body, a.status, a.raw, c.msg)
		}
	}

	// Over the limit, with a Content-Length and without one (chunked).
	big := `{"bs":"` + strings.Repeat("x", 2000) + `"}`
	a := do(t, "POST", u, operatorToken, big)
	if a.status != 413 || a.errCode() != "body_too_large" {
		t.Fatalf("big body: %d %s", a.status, a.raw)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(big))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", u, pr)
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked big body: %d", resp.StatusCode)
	}
	// Just under the limit is fine.
	ok := `{"bs":"` + strings.Repeat("x", 1000) + `"}`
	if a := do(t, "POST", u, operatorToken, ok); a.status != 200 {
		t.Fatalf("body under the limit: %d %s", a.status, a.raw)
	}
}

// TestListsOfEveryItemType checks lists of each item type, from the
// query, from the body and as defaults.
func TestListsOfEveryItemType(t *testing.T) {
	list := func(name string, items Type, in In, def any) Param {
		return Param{Name: name, Type: TypeList, Items: items, In: in, Default: def}
	}
	reg := NewRegistry()
	reg.MustRegister(okOp("t.lists", "POST", "/api/v1/lists",
		list("f", TypeFloat, InQuery, []float64{1.5}),
		list("b", TypeBool, InQuery, []bool{true}),
		list("d", TypeDuration, InQuery, []time.Duration{time.Second}),
		list("p", TypePID, InQuery, []process.PID{pid42}),
		list("n", TypeNode, InQuery, []string{"a@h"}),
		list("i", TypeInt, InQuery, []int{7}),
		list("bf", TypeFloat, InBody, nil),
		list("bp", TypePID, InBody, nil),
	))
	e := reg.byName["t.lists"]
	ps, err := decodeReq(e, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	want := Params{"f": []float64{1.5}, "b": []bool{true}, "d": []time.Duration{time.Second},
		"p": []process.PID{pid42}, "n": []string{"a@h"}, "i": []int{7}}
	if !reflect.DeepEqual(ps, want) {
		t.Fatalf("defaults %#v", ps)
	}
	ps, err = decodeReq(e, "", "f=0.5,2&b=0,true&d=1ms,1h&p="+testPID+"&n=x,y&i=1",
		`{"bf":[1,2.5],"bp":["`+testPID+`"]}`)
	if err != nil {
		t.Fatal(err.Details)
	}
	want = Params{"f": []float64{0.5, 2}, "b": []bool{false, true}, "d": []time.Duration{time.Millisecond, time.Hour},
		"p": []process.PID{pid42}, "n": []string{"x", "y"}, "i": []int{1}, "bf": []float64{1, 2.5}, "bp": []process.PID{pid42}}
	if !reflect.DeepEqual(ps, want) {
		t.Fatalf("values %#v", ps)
	}
	if ps.PIDs("p")[0] != pid42 || ps.Ints("i")[0] != 1 {
		t.Fatal("getters")
	}
	_, err = decodeReq(e, "", "n=ok,bad%20name&b=yes", `{"bf":[true],"bp":[1]}`)
	if err == nil || len(err.Details.([]FieldError)) != 4 {
		t.Fatalf("bad items: %v", err)
	}
	// Defaults of the wrong list type, or with a bad item, are refused.
	for _, p := range []Param{
		list("x", TypeFloat, InQuery, []int{1}),
		list("x", TypeBool, InQuery, []string{"true"}),
		list("x", TypeDuration, InQuery, []int{1}),
		list("x", TypePID, InQuery, []string{testPID}),
		list("x", TypeNode, InQuery, []string{"bad node"}),
		list("x", TypeDuration, InQuery, []time.Duration{-time.Second}),
		{Name: "x", Type: TypeList, Items: TypeInt, In: InQuery, Max: new(1.0), Default: []int{1, 2}},
		{Name: "x", Type: TypeObject, In: InBody, Default: []int{1}},
		{Name: "x", Type: TypeFloat, In: InQuery, Default: 1},
		{Name: "x", Type: TypeBool, In: InQuery, Default: "true"},
		{Name: "x", Type: TypePID, In: InQuery, Default: testPID},
		{Name: "x", Type: TypeFloat, In: InQuery, Max: new(1.0), Default: 1.5},
	} {
		if err := NewRegistry().Register(okOp("t.bad", "POST", "/api/v1/bad", p)); err == nil {
			t.Errorf("default %#v of %s list of %s was accepted", p.Default, p.Type, p.Items)
		}
	}
	// Good defaults of the other types.
	for _, p := range []Param{
		{Name: "x", Type: TypeObject, In: InBody, Default: map[string]any{"a": 1}},
		{Name: "x", Type: TypeBool, In: InQuery, Default: true},
		{Name: "x", Type: TypePID, In: InQuery, Default: pid42},
		{Name: "x", Type: TypeNode, In: InQuery, Default: "a@h"},
		{Name: "x", Type: TypeFloat, In: InQuery, Default: 0.5},
	} {
		if err := NewRegistry().Register(okOp("t.good", "POST", "/api/v1/good", p)); err != nil {
			t.Errorf("default %#v: %v", p.Default, err)
		}
	}
}
