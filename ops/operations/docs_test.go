package operations

import (
	"net/http/httptest"
	"os"
	"strings"
	"testing"

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
}
