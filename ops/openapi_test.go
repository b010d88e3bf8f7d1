package ops

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// validateOpenAPI checks the essentials of an OpenAPI 3.1 document,
// decoded from JSON, the
// parts a validator would reject or a generator would trip on: versions,
// path templates against path parameters, unique operation ids,
// parameter locations, responses, resolvable $refs, declared tags and
// security schemes, JSON Schema types.
func validateOpenAPI(doc map[string]any) []string {
	var errs []string
	bad := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	obj := func(v any) map[string]any { m, _ := v.(map[string]any); return m }

	if !strings.HasPrefix(str(doc, "openapi"), "3.1.") {
		bad("openapi is %q, want 3.1.x", doc["openapi"])
	}
	info := obj(doc["info"])
	if str(info, "title") == "" || str(info, "version") == "" {
		bad("info needs title and version")
	}
	if lic := obj(info["license"]); lic != nil && str(lic, "name") == "" {
		bad("license needs a name")
	}
	// Every $ref must resolve.
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if r, ok := x["$ref"].(string); ok {
				if !strings.HasPrefix(r, "#/") {
					bad("%s: $ref %q is not local", path, r)
				} else {
					var cur any = doc
					for _, part := range strings.Split(r[2:], "/") {
						cur = obj(cur)[part]
					}
					if cur == nil {
						bad("%s: $ref %q does not resolve", path, r)
					}
				}
			}
			for k, e := range x {
				walk(path+"/"+k, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s/%d", path, i), e)
			}
		}
	}
	walk("#", doc)

	schemes := obj(obj(doc["components"])["securitySchemes"])
	checkSecurity := func(where string, v any) {
		for _, req := range v.([]any) {
			for name := range obj(req) {
				if schemes[name] == nil {
					bad("%s: security scheme %q is not declared", where, name)
				}
			}
		}
	}
	if s, ok := doc["security"]; ok {
		checkSecurity("#/security", s)
	}
	for name, s := range schemes {
		if t := str(obj(s), "type"); !slices.Contains([]string{"apiKey", "http", "mutualTLS", "oauth2", "openIdConnect"}, t) {
			bad("security scheme %s has type %q", name, t)
		}
	}
	var tags []string
	for _, tg := range doc["tags"].([]any) {
		tags = append(tags, str(obj(tg), "name"))
	}

	jsonTypes := []string{"string", "integer", "number", "boolean", "array", "object", "null"}
	var checkSchema func(where string, s map[string]any)
	checkSchema = func(where string, s map[string]any) {
		if s == nil {
			bad("%s: no schema", where)
			return
		}
		if t, ok := s["type"]; ok && !slices.Contains(jsonTypes, t.(string)) {
			bad("%s: type %q", where, t)
		}
		if s["type"] == "array" {
			checkSchema(where+"/items", obj(s["items"]))
		}
		if p, ok := s["pattern"].(string); ok {
			if _, err := regexp.Compile(p); err != nil {
				bad("%s: pattern: %v", where, err)
			}
		}
		for _, p := range obj(s["properties"]) {
			checkSchema(where+"/properties", obj(p))
		}
	}

	ids := map[string]bool{}
	wildcard := regexp.MustCompile(`\{([^}]+)\}`)
	methods := []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
	for path, item := range obj(doc["paths"]) {
		if !strings.HasPrefix(path, "/") {
			bad("path %q does not start with /", path)
		}
		var want []string
		for _, m := range wildcard.FindAllStringSubmatch(path, -1) {
			want = append(want, m[1])
		}
		slices.Sort(want)
		for method, o := range obj(item) {
			where := method + " " + path
			if !slices.Contains(methods, method) {
				bad("%s: %q is not a method", path, method)
				continue
			}
			op := obj(o)
			id := str(op, "operationId")
			if id == "" || ids[id] {
				bad("%s: operationId %q missing or repeated", where, id)
			}
			ids[id] = true
			opTags, _ := op["tags"].([]any)
			for _, tg := range opTags {
				if !slices.Contains(tags, tg.(string)) {
					bad("%s: tag %q is not declared", where, tg)
				}
			}
			if s, ok := op["security"]; ok {
				checkSecurity(where, s)
			}
			var got []string
			seen := map[string]bool{}
			params, _ := op["parameters"].([]any)
			for _, p := range params {
				pm := obj(p)
				name, in := str(pm, "name"), str(pm, "in")
				if name == "" || !slices.Contains([]string{"path", "query", "header", "cookie"}, in) {
					bad("%s: parameter %v has no name or a bad in", where, pm)
				}
				if seen[in+name] {
					bad("%s: parameter %s in %s repeated", where, name, in)
				}
				seen[in+name] = true
				if in == "path" {
					got = append(got, name)
					if pm["required"] != true {
						bad("%s: path parameter %s is not required", where, name)
					}
				}
				checkSchema(where+" "+name, obj(pm["schema"]))
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				bad("%s: path parameters %v, template has %v", where, got, want)
			}
			if rb := obj(op["requestBody"]); rb != nil {
				content := obj(rb["content"])
				if len(content) == 0 {
					bad("%s: requestBody without content", where)
				}
				for _, mt := range content {
					checkSchema(where+" body", obj(obj(mt)["schema"]))
				}
			}
			responses := obj(op["responses"])
			if len(responses) == 0 || responses["200"] == nil {
				bad("%s: no 200 response", where)
			}
			for code, r := range responses {
				if code != "default" && !regexp.MustCompile(`^[1-5]([0-9]{2}|XX)$`).MatchString(code) {
					bad("%s: response code %q", where, code)
				}
				rm := obj(r)
				if rm["$ref"] == nil && str(rm, "description") == "" {
					bad("%s: response %s has no description", where, code)
				}
			}
		}
	}
	for name, sc := range obj(obj(doc["components"])["schemas"]) {
		checkSchema("components/schemas/"+name, obj(sc))
	}
	for name, r := range obj(obj(doc["components"])["responses"]) {
		if str(obj(r), "description") == "" {
			bad("components/responses/%s has no description", name)
		}
	}
	return errs
}

func docRegistry() *Registry {
	f := newFeed()
	reg := NewRegistry()
	reg.MustRegister(sinkOp(), f.op(),
		okOp("process.info", "GET", "/api/v1/processes/{pid}/info", Param{Name: "pid", Type: TypePID, In: InPath, Description: "The process."}),
		Operation{Name: "process.kill", Category: "process", Summary: "Kill a process", Method: "DELETE",
			Path: "/api/v1/processes/{pid}", Dangerous: true, Timeout: 3 * time.Second, Run: echo, Response: map[string]any{},
			Params: []Param{
				{Name: "pid", Type: TypePID, In: InPath},
				{Name: "reason", Type: TypeString, In: InQuery, Default: "killed"},
				{Name: "force", Type: TypeBool, In: InQuery, Default: false},
			}},
	)
	return reg
}

func TestOpenAPIDocument(t *testing.T) {
	srv := serve(t, docRegistry(), ServerConfig{OpenReads: true, Tokens: testTokens})
	a := do(t, "GET", srv.URL+DocsPath, "", "")
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	if os.Getenv("ARSENAL_WRITE_OPENAPI") != "" {
		os.WriteFile(os.Getenv("ARSENAL_WRITE_OPENAPI"), []byte(a.raw), 0o644)
	}
	doc := a.body
	if errs := validateOpenAPI(doc); len(errs) > 0 {
		t.Fatalf("invalid OpenAPI document:\n%s", strings.Join(errs, "\n"))
	}

	// Content, spot-checked through the JSON the server sent.
	get := func(path ...string) any {
		var cur any = doc
		for _, p := range path {
			switch c := cur.(type) {
			case map[string]any:
				cur = c[p]
			case []any:
				var i int
				fmt.Sscan(p, &i)
				cur = c[i]
			}
		}
		return cur
	}
	paramNamed := func(path, method, name string) map[string]any {
		for _, p := range get("paths", path, method, "parameters").([]any) {
			if p.(map[string]any)["name"] == name {
				return p.(map[string]any)
			}
		}
		t.Fatalf("no parameter %s on %s %s", name, method, path)
		return nil
	}
	sink := "/api/v1/sink/{pid}"
	checks := []struct {
		got, want any
	}{
		{get("paths", sink, "post", "operationId"), "test.sink"},
		{get("paths", sink, "post", "tags", "0"), "system"},
		{paramNamed(sink, "post", "pid")["in"], "path"},
		{paramNamed(sink, "post", "pid")["schema"].(map[string]any)["format"], "arsenal-pid"},
		{paramNamed(sink, "post", "i")["schema"], map[string]any{"type": "integer", "format": "int64", "minimum": 1.0, "maximum": 1000.0, "default": 10.0}},
		{paramNamed(sink, "post", "f")["schema"].(map[string]any)["maximum"], 1.0},
		{paramNamed(sink, "post", "s")["schema"], map[string]any{"type": "string", "pattern": "^[a-z]+$", "minLength": 2.0, "maxLength": 8.0}},
		{paramNamed(sink, "post", "e")["schema"], map[string]any{"type": "string", "enum": []any{"mailbox", "age"}}},
		{paramNamed(sink, "post", "d")["schema"].(map[string]any)["default"], "5s"},
		{paramNamed(sink, "post", "d")["schema"].(map[string]any)["x-maximum-duration"], "1m0s"},
		{paramNamed(sink, "post", "li")["schema"], map[string]any{"type": "array", "items": map[string]any{"type": "integer", "format": "int64"}, "maxItems": 3.0}},
		{paramNamed(sink, "post", "li")["explode"], true},
		{paramNamed(sink, "post", "b")["required"], false},
		{get("paths", sink, "post", "requestBody", "content", "application/json", "schema", "additionalProperties"), false},
		{get("paths", sink, "post", "requestBody", "content", "application/json", "schema", "properties", "bo", "type"), "object"},
		{get("paths", sink, "post", "requestBody", "content", "application/json", "schema", "properties", "bl", "minItems"), 1.0},
		{get("paths", sink, "post", "responses", "422", "$ref"), "#/components/responses/ValidationFailed"},
		{get("paths", sink, "post", "responses", "413", "$ref"), "#/components/responses/PayloadTooLarge"},
		{get("paths", sink, "post", "security"), []any{map[string]any{"bearer": []any{}}}},
		{get("paths", "/api/v1/processes/{pid}/info", "get", "security"), []any{map[string]any{}, map[string]any{"bearer": []any{}}}},
		{get("paths", "/api/v1/processes/{pid}/info", "get", "responses", "413", "$ref"), "#/components/responses/PayloadTooLarge"},
		{get("paths", "/api/v1/processes/{pid}/info", "get", "responses", "405", "$ref"), "#/components/responses/MethodNotAllowed"},
		{get("paths", "/api/v1/processes/{pid}/info", "get", "responses", "409"), nil},
		{get("paths", "/api/v1/processes/{pid}", "delete", "x-arsenal", "dangerous"), true},
		{get("paths", "/api/v1/processes/{pid}", "delete", "x-arsenal", "timeout"), "3s"},
		{get("paths", "/api/v1/processes/{pid}", "delete", "security"), []any{map[string]any{"bearer": []any{}}}},
		{get("paths", "/api/v1/events", "get", "responses", "200", "content", "text/event-stream", "schema", "type"), "string"},
		{get("paths", CataloguePath, "get", "operationId"), "arsenal.operations"},
		{get("components", "securitySchemes", "bearer", "scheme"), "bearer"},
		{get("components", "schemas", "FieldError", "required"), []any{"field", "in", "reason"}},
		{get("tags", "0", "name"), "arsenal"},
		{get("tags", "1", "name"), "cluster"},
		{get("tags", "2", "name"), "process"},
		{get("tags", "3", "name"), "system"},
	}
	for i, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("check %d: got %#v, want %#v", i, c.got, c.want)
		}
	}
}

func TestOpenAPIValidatorCatchesMistakes(t *testing.T) {
	doc := openAPI(docRegistry().entries(), false)
	raw, _ := json.Marshal(doc)
	mutate := func(f func(d map[string]any)) []string {
		var d map[string]any
		json.Unmarshal(raw, &d)
		f(d)
		// Re-encode so the validator sees the JSON types, as in the test above.
		b, _ := json.Marshal(d)
		var back map[string]any
		json.Unmarshal(b, &back)
		return validateOpenAPI(back)
	}
	if errs := mutate(func(map[string]any) {}); len(errs) > 0 {
		t.Fatalf("the unchanged document is invalid: %v", errs)
	}
	for name, f := range map[string]func(d map[string]any){
		"version": func(d map[string]any) { d["openapi"] = "3.0.0" },
		"bad ref": func(d map[string]any) {
			d["paths"].(map[string]any)["/api/v1/sink/{pid}"].(map[string]any)["post"].(map[string]any)["responses"].(map[string]any)["422"] =
				map[string]any{"$ref": "#/components/responses/Nope"}
		},
		"path param missing": func(d map[string]any) {
			d["paths"].(map[string]any)["/api/v1/processes/{pid}/info"].(map[string]any)["get"].(map[string]any)["parameters"] = []any{}
		},
		"bad type": func(d map[string]any) {
			d["components"].(map[string]any)["schemas"].(map[string]any)["FieldError"].(map[string]any)["properties"].(map[string]any)["in"] =
				map[string]any{"type": "str"}
		},
	} {
		if errs := mutate(f); len(errs) == 0 {
			t.Errorf("%s: the validator did not notice", name)
		}
	}
}

func TestCatalogue(t *testing.T) {
	srv := serve(t, docRegistry(), ServerConfig{OpenReads: true, Node: "n1"})
	a := do(t, "GET", srv.URL+CataloguePath, "", "")
	if a.status != 200 || a.meta()["operation"] != "arsenal.operations" || a.meta()["node"] != "n1" {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	var env struct{ Data []CatalogueEntry }
	if err := json.Unmarshal([]byte(a.raw), &env); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range env.Data {
		names = append(names, e.Name)
	}
	if strings.Join(names, " ") != "process.info process.kill t.events test.sink" {
		t.Fatalf("names %v", names)
	}
	kill := env.Data[1]
	if kill.Method != "DELETE" || kill.Path != "/api/v1/processes/{pid}" || !kill.Dangerous || kill.Idempotent ||
		kill.Role != RoleOperator || kill.Timeout != "3s" || kill.CLI != "process-kill" || kill.Category != "process" ||
		kill.Summary != "Kill a process" || kill.Stream {
		t.Fatalf("kill entry %+v", kill)
	}
	if p := kill.Params[2]; p.Name != "force" || p.Type != TypeBool || p.In != InQuery || p.Required || p.Default != false {
		t.Fatalf("force %+v", p)
	}
	if !env.Data[2].Stream || env.Data[2].Role != RoleViewer || !env.Data[2].Idempotent {
		t.Fatalf("events entry %+v", env.Data[2])
	}
	sink := env.Data[3]
	byName := map[string]ParamSchema{}
	for _, p := range sink.Params {
		byName[p.Name] = p
	}
	if p := byName["d"]; p.Default != "5s" || p.MinDuration != "1ms" || p.MaxDuration != "1m0s" {
		t.Fatalf("d %+v", p)
	}
	if p := byName["pid"]; !p.Required || p.In != InPath {
		t.Fatalf("pid %+v", p)
	}
	if p := byName["i"]; *p.Min != 1 || *p.Max != 1000 || p.Default != 10.0 {
		t.Fatalf("i %+v", p)
	}
	if p := byName["le"]; p.Items != TypeEnum || len(p.Enum) != 2 {
		t.Fatalf("le %+v", p)
	}
	if p := byName["s"]; p.Pattern != "^[a-z]+$" {
		t.Fatalf("s %+v", p)
	}
}
