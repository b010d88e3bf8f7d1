package clustertest_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/arsenal-go/arsenal/clustertest"
)

// badCase is one invalid call, made from the OpenAPI document alone.
type badCase struct {
	what   string
	method string
	path   string
	query  string
	body   []byte
	status int    // 400 or 422
	field  string // the field a 422 must name
}

// badCases derives invalid calls from the document: for each parameter
// of each operation, values of the wrong type, out of its bounds, outside
// its enum or its pattern, plus unknown parameters and malformed bodies.
// valid gives a valid value for each path parameter, by name.
func badCases(doc map[string]any, valid map[string]string) []badCase {
	var out []badCase
	paths := doc["paths"].(map[string]any)
	for _, tmpl := range keys(paths) {
		for _, method := range keys(paths[tmpl].(map[string]any)) {
			op := paths[tmpl].(map[string]any)[method].(map[string]any)
			if op["operationId"] == "arsenal.docs" || op["operationId"] == "arsenal.operations" {
				continue
			}
			m := strings.ToUpper(method)
			path := tmpl
			var params []map[string]any
			if ps, ok := op["parameters"].([]any); ok {
				for _, p := range ps {
					params = append(params, p.(map[string]any))
				}
			}
			for _, p := range params {
				if p["in"] == "path" {
					path = strings.ReplaceAll(path, "{"+p["name"].(string)+"}", url.PathEscape(valid[p["name"].(string)]))
				}
			}
			add := func(c badCase) {
				c.method, c.what = m, op["operationId"].(string)+": "+c.what
				if c.path == "" {
					c.path = path
				}
				out = append(out, c)
			}
			for _, p := range params {
				name := p["name"].(string)
				s := p["schema"].(map[string]any)
				for _, v := range badValues(s) {
					if p["in"] == "path" {
						if v == "" || strings.Contains(v, "/") {
							continue // another route (or none): not this operation's input
						}
						add(badCase{what: "path " + name + "=" + v, path: strings.ReplaceAll(tmpl, "{"+name+"}", url.PathEscape(v)),
							status: 422, field: name})
						continue
					}
					add(badCase{what: "query " + name + "=" + v, query: name + "=" + url.QueryEscape(v), status: 422, field: name})
				}
			}
			add(badCase{what: "unknown query parameter", query: "bogus_param=1", status: 422, field: "bogus_param"})
			rb, ok := op["requestBody"].(map[string]any)
			if !ok {
				continue
			}
			bs := rb["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
			props := bs["properties"].(map[string]any)
			required, _ := bs["required"].([]any)
			base := map[string]any{}
			for _, r := range required {
				base[r.(string)] = validJSON(props[r.(string)].(map[string]any))
			}
			for _, name := range keys(props) {
				for _, v := range badJSON(props[name].(map[string]any)) {
					body := map[string]any{}
					for k, x := range base {
						body[k] = x
					}
					body[name] = json.RawMessage(v)
					b, _ := json.Marshal(body)
					add(badCase{what: "body " + name + "=" + v, body: b, status: 422, field: name})
				}
			}
			for _, r := range required {
				body := map[string]any{}
				for k, x := range base {
					if k != r {
						body[k] = x
					}
				}
				b, _ := json.Marshal(body)
				add(badCase{what: "body without " + r.(string), body: b, status: 422, field: r.(string)})
			}
			b, _ := json.Marshal(map[string]any{"bogus_field": 1})
			add(badCase{what: "unknown body field", body: b, status: 422, field: "bogus_field"})
			add(badCase{what: "malformed JSON", body: []byte(`{"`), status: 400})
			add(badCase{what: "a JSON array for a body", body: []byte(`[1]`), status: 400})
		}
	}
	return out
}

func num(s map[string]any, k string) (float64, bool) {
	f, ok := s[k].(float64)
	return f, ok
}

// badValues are query or path texts that the schema s refuses.
func badValues(s map[string]any) []string {
	var out []string
	switch s["type"] {
	case "integer":
		out = append(out, "abc", "1.5", "")
		if lo, ok := num(s, "minimum"); ok {
			out = append(out, fmt.Sprint(int64(lo)-1))
		}
		if hi, ok := num(s, "maximum"); ok {
			out = append(out, fmt.Sprint(int64(hi)+1))
		}
	case "boolean":
		out = append(out, "maybe", "")
	case "array":
		if items, ok := s["items"].(map[string]any); ok && items["type"] == "integer" {
			out = append(out, "x")
		}
		if hi, ok := num(s, "maxItems"); ok {
			out = append(out, strings.Repeat("a,", int(hi))+"a")
		}
	case "string":
		if e, ok := s["enum"].([]any); ok && len(e) > 0 {
			out = append(out, "not-one-of-them")
		}
		switch s["format"] {
		case "go-duration":
			out = append(out, "5 parsecs", "-1s", "")
			if x, ok := s["x-maximum-duration"].(string); ok && x != "" {
				out = append(out, "99999h")
			}
		case "arsenal-pid":
			out = append(out, "not-a-pid", "1.x@", "")
		}
		if hi, ok := num(s, "maxLength"); ok {
			out = append(out, strings.Repeat("a", int(hi)+1))
		}
		if p, ok := s["pattern"].(string); ok && strings.HasPrefix(p, "^") && s["format"] == nil {
			out = append(out, "bad value\x01 with/slash")
		}
	}
	return out
}

// badJSON are JSON values that the schema s refuses.
func badJSON(s map[string]any) []string {
	out := []string{"null"}
	switch s["type"] {
	case "integer":
		out = append(out, `"5"`, `1.5`, `true`)
		if lo, ok := num(s, "minimum"); ok {
			out = append(out, fmt.Sprint(int64(lo)-1))
		}
		if hi, ok := num(s, "maximum"); ok {
			out = append(out, fmt.Sprint(int64(hi)+1))
		}
	case "boolean":
		out = append(out, `"true"`, `1`)
	case "object":
		out = append(out, `"text"`, `[1]`, `5`)
	case "array":
		out = append(out, `"a"`, `{}`)
	case "string":
		out = append(out, `5`, `true`, `{}`)
		if e, ok := s["enum"].([]any); ok && len(e) > 0 {
			out = append(out, `"not-one-of-them"`)
		}
		if s["format"] == "go-duration" {
			out = append(out, `"5 parsecs"`, `"-1s"`, `5000000000`)
		}
		if hi, ok := num(s, "maxLength"); ok && hi < 100000 {
			b, _ := json.Marshal(strings.Repeat("a", int(hi)+1))
			out = append(out, string(b))
		}
		if lo, ok := num(s, "minLength"); ok && lo > 0 {
			out = append(out, `""`)
		}
	}
	return out
}

func validJSON(s map[string]any) any {
	switch s["type"] {
	case "object":
		return map[string]any{"k": 1}
	case "integer":
		if lo, ok := num(s, "minimum"); ok {
			return int64(lo)
		}
		return 1
	case "string":
		if e, ok := s["enum"].([]any); ok {
			return e[0]
		}
		return "x"
	}
	return nil
}

// Every invalid input the document implies is refused with a 400 or a
// 422 that names the offending field, as declared; none is a 500 or a
// hang, and none runs the operation.
func TestBadInputIsRefusedWithTheField(t *testing.T) {
	c := clustertest.Start(t, 1, clustertest.Options{})
	a := c.Node(0)
	base := a.URL()
	raw := docOf(t, base)
	cf := newConformance(t, raw)
	var echo string
	a.MustDo("spawn", map[string]any{"kind": "echo", "name": "bad-input-echo"}, &echo)
	valid := map[string]string{"pid": echo, "node": a.Name, "id": "0123456789abcdef@" + a.Name}
	cases := badCases(cf.doc, valid)
	perStatus := map[int]int{}
	for _, bc := range cases {
		p := bc.path
		if bc.query != "" {
			p += "?" + bc.query
		}
		var body any
		if bc.body != nil {
			body = bc.body
		}
		r := cf.call(base, bc.method, p, c.Token(), body)
		perStatus[r.status]++
		if r.status != bc.status {
			t.Errorf("%s: %s %s: status %d, want %d: %s", bc.what, bc.method, p, r.status, bc.status, trim(r.body))
			continue
		}
		if bc.field == "" {
			continue
		}
		var e struct {
			Error struct {
				Details []struct{ Field, In, Reason string }
			}
		}
		_ = json.Unmarshal(r.body, &e)
		named := false
		for _, d := range e.Error.Details {
			named = named || (d.Field == bc.field && d.Reason != "")
		}
		if !named {
			t.Errorf("%s: the 422 does not name %q with a reason: %s", bc.what, bc.field, trim(r.body))
		}
	}
	// The echo process is still alive: no invalid kill or send ran.
	cf.must(cf.call(base, "GET", "/api/v1/processes/"+url.PathEscape(echo)+"/info", "", nil), 200, "the target after the bad inputs")
	var statuses []string
	for s, n := range perStatus {
		statuses = append(statuses, fmt.Sprintf("%d: %d", s, n))
	}
	sort.Strings(statuses)
	t.Logf("%d invalid calls derived from the document; answers %s", len(cases), strings.Join(statuses, ", "))
	// Every operation got invalid calls.
	for tmpl, it := range cf.doc["paths"].(map[string]any) {
		for _, o := range it.(map[string]any) {
			id := o.(map[string]any)["operationId"].(string)
			if id == "arsenal.docs" || id == "arsenal.operations" {
				continue
			}
			found := false
			for _, bc := range cases {
				found = found || strings.HasPrefix(bc.what, id+": ")
			}
			if !found {
				t.Errorf("no invalid call derived for %s (%s)", id, tmpl)
			}
		}
	}
}
