package ops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
)

func authRegistry() *Registry {
	reg := NewRegistry()
	reg.MustRegister(
		okOp("t.read", "GET", "/api/v1/read"),
		okOp("t.write", "POST", "/api/v1/write", Param{Name: "target", Type: TypeString, In: InBody}),
		Operation{Name: "t.kill", Category: "process", Summary: "kill", Method: "DELETE",
			Path: "/api/v1/kill/{pid}", Params: []Param{{Name: "pid", Type: TypePID, In: InPath}},
			Dangerous: true, Run: echo, Response: map[string]any{}},
	)
	return reg
}

func TestAuth(t *testing.T) {
	open := serve(t, authRegistry(), ServerConfig{OpenReads: true, Tokens: testTokens})
	closed := serve(t, authRegistry(), ServerConfig{Tokens: testTokens})
	cases := []struct {
		name          string
		base          string
		method, path  string
		token         string
		status        int
		principal     string
		authenticated bool
	}{
		{"open read without token", open.URL, "GET", "/api/v1/read", "", 200, "anonymous", false},
		{"open read with viewer token", open.URL, "GET", "/api/v1/read", viewerToken, 200, "vera", false},
		{"open read with a bad token", open.URL, "GET", "/api/v1/read", "not-a-token-at-all", 401, "", false},
		{"open write without token", open.URL, "POST", "/api/v1/write", "", 401, "", false},
		{"closed read without token", closed.URL, "GET", "/api/v1/read", "", 401, "", false},
		{"closed read with viewer", closed.URL, "GET", "/api/v1/read", viewerToken, 200, "vera", false},
		{"closed read with operator", closed.URL, "GET", "/api/v1/read", operatorToken, 200, "otto", false},
		{"write with viewer", closed.URL, "POST", "/api/v1/write", viewerToken, 403, "", false},
		{"write with operator", closed.URL, "POST", "/api/v1/write", operatorToken, 200, "otto", false},
		{"dangerous with viewer", open.URL, "DELETE", "/api/v1/kill/" + testPID, viewerToken, 403, "", false},
		{"dangerous without token", open.URL, "DELETE", "/api/v1/kill/" + testPID, "", 401, "", false},
		{"dangerous with operator", open.URL, "DELETE", "/api/v1/kill/" + testPID, operatorToken, 200, "otto", false},
		{"catalogue open", open.URL, "GET", CataloguePath, "", 200, "", false},
		{"catalogue closed", closed.URL, "GET", CataloguePath, "", 401, "", false},
		{"catalogue closed viewer", closed.URL, "GET", CataloguePath, viewerToken, 200, "", false},
		{"docs closed", closed.URL, "GET", DocsPath, "", 401, "", false},
		{"docs closed bad token", closed.URL, "GET", DocsPath, "x", 401, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, c.method, c.base+c.path, c.token, "")
			if a.status != c.status {
				t.Fatalf("status %d, want %d: %s", a.status, c.status, a.raw)
			}
			switch c.status {
			case 401:
				if a.errCode() != "unauthorized" || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("401 without code or WWW-Authenticate: %v %s", a.header, a.raw)
				}
			case 403:
				if a.errCode() != "forbidden" || !strings.Contains(a.errMessage(), "needs operator") {
					t.Fatalf("403: %s", a.raw)
				}
			}
			if c.principal != "" && a.meta()["principal"] != c.principal {
				t.Fatalf("principal %v, want %s", a.meta()["principal"], c.principal)
			}
		})
	}
	// Other schemes are refused, not ignored.
	req, _ := http.NewRequest("GET", closed.URL+"/api/v1/read", nil)
	req.Header.Set("Authorization", "Basic dmVyYTpwdw==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("Basic auth: %d", resp.StatusCode)
	}
}

func TestAudit(t *testing.T) {
	var audit, logs logBuffer
	srv := serve(t, authRegistry(), ServerConfig{OpenReads: true, Tokens: testTokens,
		Audit: jsonLogger(&audit), Logger: jsonLogger(&logs)})

	if a := do(t, "GET", srv.URL+"/api/v1/read", viewerToken, ""); a.status != 200 {
		t.Fatal(a.raw)
	}
	if n := len(audit.lines()); n != 0 {
		t.Fatalf("a read was audited: %s", audit.String())
	}
	if a := do(t, "POST", srv.URL+"/api/v1/write", operatorToken, `{"target":"db"}`); a.status != 200 {
		t.Fatal(a.raw)
	}
	if a := do(t, "DELETE", srv.URL+"/api/v1/kill/"+testPID, viewerToken, ""); a.status != 403 {
		t.Fatal(a.raw)
	}
	if a := do(t, "POST", srv.URL+"/api/v1/write", "", ""); a.status != 401 {
		t.Fatal(a.raw)
	}
	lines := audit.lines()
	if len(lines) != 3 {
		t.Fatalf("want 3 audit lines, got %d:\n%s", len(lines), audit.String())
	}
	w := lines[0]
	params, _ := w["params"].(map[string]any)
	if w["msg"] != "operation call" || w["principal"] != "otto" || w["role"] != "operator" ||
		w["operation"] != "t.write" || params["target"] != "db" || w["status"] != 200.0 ||
		w["duration_ms"] == nil || w["method"] != "POST" {
		t.Fatalf("audit line: %v", w)
	}
	if k := lines[1]; k["principal"] != "vera" || k["operation"] != "t.kill" || k["status"] != 403.0 || k["code"] != "forbidden" {
		t.Fatalf("refused dangerous call: %v", k)
	}
	if k := lines[2]; k["principal"] != "(unauthenticated)" || k["status"] != 401.0 {
		t.Fatalf("unauthenticated call: %v", k)
	}
	all := audit.String() + logs.String()
	for _, tok := range []string{viewerToken, operatorToken} {
		if strings.Contains(all, tok) {
			t.Fatal("a token was logged")
		}
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var deadline atomic.Int64
	reg := NewRegistry()
	reg.MustRegister(
		Operation{Name: "t.slow", Category: "system", Summary: "waits for its context", Method: "GET",
			Path: "/api/v1/slow", Timeout: 50 * time.Millisecond,
			Run: func(ctx context.Context, _ *Request) (*Result, error) {
				d, _ := ctx.Deadline()
				deadline.Store(int64(time.Until(d)))
				<-ctx.Done()
				return nil, ctx.Err()
			}, Response: ""},
		Operation{Name: "t.stuck", Category: "system", Summary: "ignores its context", Method: "GET",
			Path: "/api/v1/stuck", Timeout: 50 * time.Millisecond,
			Run: func(ctx context.Context, _ *Request) (*Result, error) {
				<-release
				return &Result{Data: "late"}, nil
			}, Response: ""},
		Operation{Name: "t.calltimeout", Category: "system", Summary: "a process call timed out", Method: "GET",
			Path: "/api/v1/calltimeout",
			Run: func(ctx context.Context, _ *Request) (*Result, error) {
				return nil, &process.CallError{Err: process.Timeout}
			}, Response: ""},
	)
	srv := serve(t, reg, ServerConfig{OpenReads: true})
	a := do(t, "GET", srv.URL+"/api/v1/slow", "", "")
	if a.status != 504 || a.errCode() != "timeout" || a.errMessage() != "t.slow did not finish within its timeout of 50ms" {
		t.Fatalf("slow: %d %s", a.status, a.raw)
	}
	if d := time.Duration(deadline.Load()); d <= 0 || d > 50*time.Millisecond {
		t.Fatalf("Run's context deadline is %s away, want within 50ms", d)
	}
	start := time.Now()
	a = do(t, "GET", srv.URL+"/api/v1/stuck", "", "")
	if a.status != 504 || a.errCode() != "timeout" {
		t.Fatalf("stuck: %d %s", a.status, a.raw)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("a Run that ignores its context held the answer for %s", el)
	}
	a = do(t, "GET", srv.URL+"/api/v1/calltimeout", "", "")
	if a.status != 504 || a.errCode() != "timeout" {
		t.Fatalf("call timeout: %d %s", a.status, a.raw)
	}
}

func TestPanicIs500AndServerLives(t *testing.T) {
	var logs logBuffer
	reg := NewRegistry()
	reg.MustRegister(
		Operation{Name: "t.panic", Category: "system", Summary: "panics", Method: "GET", Path: "/api/v1/panic",
			Run: func(context.Context, *Request) (*Result, error) { panic("boom") }, Response: ""},
		okOp("t.ok", "GET", "/api/v1/ok"),
	)
	srv := serve(t, reg, ServerConfig{OpenReads: true, Logger: jsonLogger(&logs)})
	for range 2 {
		a := do(t, "GET", srv.URL+"/api/v1/panic", "", "")
		if a.status != 500 || a.errCode() != "internal" || !strings.Contains(a.errMessage(), "t.panic panicked: boom") {
			t.Fatalf("panic: %d %s", a.status, a.raw)
		}
		if a := do(t, "GET", srv.URL+"/api/v1/ok", "", ""); a.status != 200 {
			t.Fatalf("after a panic: %d %s", a.status, a.raw)
		}
	}
	var found bool
	for _, l := range logs.lines() {
		if l["msg"] == "operation panicked" && l["level"] == "ERROR" && strings.Contains(l["stack"].(string), "server_test.go") {
			found = true
		}
	}
	if !found {
		t.Fatalf("the panic was not logged with its stack:\n%s", logs.String())
	}
}

type codedErr string

func (c codedErr) Error() string { return "coded: " + string(c) }
func (c codedErr) Code() string  { return string(c) }

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{NotFound("no such trace"), 404, "not_found"},
		{fmt.Errorf("wrapped: %w", Forbidden("protected process")), 403, "forbidden"},
		{Unavailable("minority side"), 503, "unavailable"},
		{Timeout("slow"), 504, "timeout"},
		{BadRequest("no"), 400, "bad_request"},
		{Conflict("already tracing"), 409, "conflict"},
		{&process.CallError{Err: process.NoProc}, 404, "noproc"},
		{&process.ExitError{Reason: process.NoProc}, 404, "noproc"},
		{&process.CallError{Err: process.Timeout}, 504, "timeout"},
		{context.DeadlineExceeded, 504, "timeout"},
		{&process.CallError{Err: process.NoConnection}, 503, "node_unreachable"},
		{fmt.Errorf("send: %w", node.ErrUnreachable), 503, "node_unreachable"},
		{&process.ExitError{Reason: process.Killed}, 409, "process_exited"},
		{fmt.Errorf("x: %w", process.ErrBadPID), 400, "bad_request"},
		{&node.RequestError{Node: "b", Code: node.CodeUnreachable, Message: "gone"}, 503, "node_unreachable"},
		{&node.RequestError{Node: "b", Code: node.CodeTimeout}, 504, "timeout"},
		{&node.RequestError{Node: "b", Code: "not_found"}, 404, "not_found"},
		{&node.RequestError{Node: "b", Code: node.CodeUnknownOp}, 404, "unknown_operation"},
		{&node.RequestError{Node: "b", Code: node.CodeBadRequest}, 400, "bad_request"},
		{&node.RequestError{Node: "b", Code: node.CodeInternal}, 500, "internal"},
		{&node.RequestError{Node: "b", Code: "strange"}, 500, "strange"},
		{fmt.Errorf("remote: %w", codedErr("not_found")), 404, "not_found"},
		{errors.New("boom"), 500, "internal"},
	}
	for _, c := range cases {
		got := ToError(c.err)
		if got.Status != c.status || got.Code != c.code || got.Message == "" {
			t.Errorf("ToError(%v) = %d %s %q, want %d %s", c.err, got.Status, got.Code, got.Message, c.status, c.code)
		}
	}
	if ToError(nil) != nil {
		t.Fatal("ToError(nil) != nil")
	}

	// Over HTTP, with the message and the meta; a 500 is logged.
	var logs logBuffer
	reg := NewRegistry()
	for i, c := range cases {
		err := c.err
		reg.MustRegister(Operation{Name: fmt.Sprintf("t.e%d", i), Category: "system", Summary: "fails",
			Method: "GET", Path: fmt.Sprintf("/api/v1/e/%d", i),
			Run: func(context.Context, *Request) (*Result, error) { return nil, err }, Response: ""})
	}
	srv := serve(t, reg, ServerConfig{OpenReads: true, Node: "n1", Logger: jsonLogger(&logs)})
	for i, c := range cases {
		a := do(t, "GET", fmt.Sprintf("%s/api/v1/e/%d", srv.URL, i), "", "")
		if a.status != c.status || a.errCode() != c.code || a.errMessage() != ToError(c.err).Message {
			t.Errorf("%v: %d %s", c.err, a.status, a.raw)
		}
		if a.meta()["node"] != "n1" || a.meta()["operation"] != fmt.Sprintf("t.e%d", i) {
			t.Errorf("error meta: %v", a.meta())
		}
	}
	if !strings.Contains(logs.String(), `"error":"boom"`) {
		t.Fatalf("the 500 was not logged:\n%s", logs.String())
	}
}

func TestResponsesAndRoutes(t *testing.T) {
	reg := NewRegistry()
	reg.MustRegister(
		Operation{Name: "t.meta", Category: "system", Summary: "meta", Method: "GET", Path: "/api/v1/meta",
			Run: func(context.Context, *Request) (*Result, error) {
				return &Result{Data: []int{1, 2}, Meta: map[string]any{"total": 2, "node": "evil", "missing_nodes": []string{}}}, nil
			}, Response: []int{}},
		Operation{Name: "t.nil", Category: "system", Summary: "nil result", Method: "POST", Path: "/api/v1/nil",
			Run: func(context.Context, *Request) (*Result, error) { return nil, nil }, Response: map[string]any{}},
		Operation{Name: "t.wrongtype", Category: "system", Summary: "answers another type", Method: "GET", Path: "/api/v1/wrongtype",
			Run: func(context.Context, *Request) (*Result, error) { return &Result{Data: 7}, nil }, Response: ""},
		Operation{Name: "t.chan", Category: "system", Summary: "cannot encode", Method: "GET", Path: "/api/v1/chan",
			Run: func(context.Context, *Request) (*Result, error) {
				return &Result{Data: map[string]any{"c": make(chan int)}}, nil
			}, Response: map[string]any{}},
	)
	srv := serve(t, reg, ServerConfig{OpenReads: true, Node: "n1", Tokens: testTokens})

	a := do(t, "GET", srv.URL+"/api/v1/meta", "", "")
	m := a.meta()
	if a.status != 200 || a.header.Get("Content-Type") != "application/json" || m["operation"] != "t.meta" || m["node"] != "n1" ||
		m["total"] != 2.0 || m["duration_ms"] == nil || a.body["data"].([]any)[1] != 2.0 {
		t.Fatalf("meta: %s", a.raw)
	}
	// A nil result or data of another type than Response is the
	// operation's bug: a 500, never a body the document does not describe.
	if a := do(t, "POST", srv.URL+"/api/v1/nil", operatorToken, ""); a.status != 500 || !strings.Contains(a.errMessage(), "t.nil answered <nil>, not its documented map[string]interface {}") {
		t.Fatalf("nil result: %d %s", a.status, a.raw)
	}
	if a := do(t, "GET", srv.URL+"/api/v1/wrongtype", "", ""); a.status != 500 || !strings.Contains(a.errMessage(), "t.wrongtype answered int, not its documented string") {
		t.Fatalf("wrong type: %d %s", a.status, a.raw)
	}
	if a := do(t, "GET", srv.URL+"/api/v1/chan", "", ""); a.status != 500 || !strings.Contains(a.errMessage(), "cannot be encoded") {
		t.Fatalf("unencodable: %d %s", a.status, a.raw)
	}
	if a := do(t, "GET", srv.URL+"/api/v1/nope", "", ""); a.status != 404 || a.errCode() != "unknown_operation" {
		t.Fatalf("unknown: %d %s", a.status, a.raw)
	}
	if a := do(t, "GET", srv.URL+"/elsewhere", "", ""); a.status != 404 || a.errCode() != "unknown_operation" {
		t.Fatalf("outside /api: %d %s", a.status, a.raw)
	}
	a = do(t, "POST", srv.URL+"/api/v1/meta", "", "")
	if a.status != 405 || a.errCode() != "method_not_allowed" || a.header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("wrong method: %d %v %s", a.status, a.header, a.raw)
	}
	if a := do(t, "DELETE", srv.URL+CataloguePath, "", ""); a.status != 405 {
		t.Fatalf("wrong method on the catalogue: %d", a.status)
	}
	if a := do(t, "HEAD", srv.URL+"/api/v1/meta", "", ""); a.status != 200 || a.raw != "" {
		t.Fatalf("HEAD: %d %q", a.status, a.raw)
	}
}

func TestLoadTokens(t *testing.T) {
	good := `# tokens
abcdefghijklmnop0 viewer Vera Viewer

abcdefghijklmnop1 operator ci-bot
`
	toks, err := ParseTokens(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if toks["abcdefghijklmnop0"] != (Principal{"Vera Viewer", RoleViewer}) || toks["abcdefghijklmnop1"].Role != RoleOperator || len(toks) != 2 {
		t.Fatalf("%v", toks)
	}
	for _, c := range []struct{ in, want string }{
		{"abcdefghijklmnop0 viewer", "line 1: want TOKEN ROLE NAME"},
		{"abcdefghijklmnop0 admin x", `line 1: role "admin"`},
		{"short viewer x", "line 1: the token is shorter than 16"},
		{"abcdefghijklmnop0 viewer a\nabcdefghijklmnop0 operator b", "line 2: the same token as line 1"},
	} {
		_, err := ParseTokens(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "abcdefghijklmnop0") {
			t.Errorf("the error shows the token: %v", err)
		}
	}
	path := t.TempDir() + "/tokens"
	if _, err := LoadTokens(path); err == nil {
		t.Fatal("missing file")
	}
	os.WriteFile(path, []byte(good), 0o600)
	if toks, err := LoadTokens(path); err != nil || len(toks) != 2 {
		t.Fatalf("LoadTokens: %v %v", toks, err)
	}
	os.WriteFile(path, []byte("short viewer x"), 0o600)
	if _, err := LoadTokens(path); err == nil || !strings.HasPrefix(err.Error(), path+": line 1") {
		t.Fatalf("LoadTokens of a bad file: %v", err)
	}
}

func TestDefaultOpenReads(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:4000": true, "127.1.2.3:80": true, "[::1]:4000": true, "localhost:4000": true,
		"LOCALHOST": true, "::1": true, "127.0.0.1": true,
		":4000": false, "0.0.0.0:4000": false, "[::]:4000": false, "10.0.0.5:4000": false,
		"example.com:80": false, "": false,
	} {
		if got := DefaultOpenReads(addr); got != want {
			t.Errorf("DefaultOpenReads(%q) = %v, want %v", addr, got, want)
		}
	}
}
