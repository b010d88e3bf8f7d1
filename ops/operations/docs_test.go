package operations

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/arsenal-go/arsenal/inspect"
	"github.com/arsenal-go/arsenal/ops"
)

// docs/OPERATIONS.md lists every operation with its route, and no other.
func TestOperationsDocListsEveryOperation(t *testing.T) {
	b, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	reg := ops.NewRegistry()
	if err := Register(reg, &Env{}); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, op := range reg.Operations() {
		names[op.Name] = true
		row := "| " + op.Name + " | `" + op.Method + " " + op.Path
		if !strings.Contains(doc, row) {
			t.Errorf("docs/OPERATIONS.md has no row %q", row)
		}
	}
	for _, line := range strings.Split(doc, "\n") {
		if f := strings.Split(line, " | "); strings.HasPrefix(line, "| ") && len(f) == 3 && strings.Contains(f[1], "/api/") {
			if name := strings.TrimPrefix(f[0], "| "); !names[name] {
				t.Errorf("docs/OPERATIONS.md lists %q, which is not an operation", name)
			}
		}
	}
}

// The bounds docs/OPERATIONS.md states are the ones in the code.
func TestOperationsDocStatesTheBounds(t *testing.T) {
	b, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(b)), " ") // lines joined
	thousands := func(n int) string {                   // 100000 → "100 000", as the doc writes it
		s := fmt.Sprint(n)
		for i := len(s) - 3; i > 0; i -= 3 {
			s = s[:i] + " " + s[i:]
		}
		return s
	}
	for _, want := range []string{
		fmt.Sprintf("at most %d traces holding at most %s events", inspect.MaxTraces, thousands(inspect.MaxTraceEvents)),
		fmt.Sprintf("removed %d minutes after it stopped", int(inspect.TraceRetention.Minutes())),
		fmt.Sprintf("among the node's last %d", EventBacklog),
		fmt.Sprintf("body over %d MiB", ops.DefaultMaxBodyBytes>>20),
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/OPERATIONS.md does not say %q", want)
		}
	}
}

// The OpenAPI document of every operation, written to the file named by
// ARSENAL_WRITE_OPENAPI (for a linter or a client generator) and checked
// to build.
func TestOpenAPIDocumentBuilds(t *testing.T) {
	reg := ops.NewRegistry()
	if err := Register(reg, &Env{}); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", ops.DocsPath, nil)
	req.Host = "127.0.0.1:4100"
	reg.Handler(ops.ServerConfig{Node: "doc@127.0.0.1", OpenReads: true}).ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if p := os.Getenv("ARSENAL_WRITE_OPENAPI"); p != "" {
		if err := os.WriteFile(p, rec.Body.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Valid against the OpenAPI Initiative's schema of 3.1 documents, with
	// an independent validator; every schema in it compiles as draft
	// 2020-12 (checked by the conformance test in clustertest).
	c := jsonschema.NewCompiler()
	f, err := os.Open("testdata/oas-3.1-schema-2022-10-07.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	oas, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("https://spec.openapis.org/oas/3.1/schema/2022-10-07", oas); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("https://spec.openapis.org/oas/3.1/schema/2022-10-07")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(doc); err != nil {
		t.Fatalf("the document is not a valid OpenAPI 3.1 document:\n%v", err)
	}
	// The catalogue names each answer's schema, as the document does.
	creq := httptest.NewRequest("GET", ops.CataloguePath, nil)
	creq.Host = "127.0.0.1:4100"
	crec := httptest.NewRecorder()
	reg.Handler(ops.ServerConfig{Node: "doc@127.0.0.1", OpenReads: true}).ServeHTTP(crec, creq)
	var cat struct{ Data []ops.CatalogueEntry }
	var full struct {
		Components struct{ Schemas map[string]any }
	}
	if err := json.Unmarshal(crec.Body.Bytes(), &cat); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &full); err != nil {
		t.Fatal(err)
	}
	for _, e := range cat.Data {
		if e.Stream {
			continue
		}
		if e.Response == "" || full.Components.Schemas[e.Response] == nil {
			t.Errorf("%s: catalogue response %q is not a schema of the document", e.Name, e.Response)
		}
	}
	bad, _ := jsonschema.UnmarshalJSON(strings.NewReader(`{"openapi":"3.1.0","info":{"title":"x"},"paths":{"/a":{"get":{"responses":{"200":{}}}}}}`))
	if sch.Validate(bad) == nil {
		t.Fatal("the OpenAPI schema accepts a document without info.version")
	}
}
