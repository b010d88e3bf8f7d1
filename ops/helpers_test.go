package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Started by dependencies of the node package at init, not by ops.
		goleak.IgnoreTopFunction("github.com/hashicorp/go-metrics.(*InmemSink).run"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

const (
	viewerToken   = "viewer-token-0123456789"
	operatorToken = "operator-token-0123456789"
)

var testTokens = map[string]Principal{
	viewerToken:   {Name: "vera", Role: RoleViewer},
	operatorToken: {Name: "otto", Role: RoleOperator},
}

// echo is a Run that answers with its parameters, so tests see what the
// validation produced.
func echo(_ context.Context, req *Request) (*Result, error) {
	out := map[string]any{}
	for k, v := range req.Params {
		out[k] = jsonValue(v)
	}
	return &Result{Data: out, Meta: map[string]any{"principal": req.Principal.Name}}, nil
}

func okOp(name, method, path string, params ...Param) Operation {
	return Operation{
		Name: name, Category: "system", Summary: "test operation " + name,
		Method: method, Path: path, Params: params, Run: echo, Response: map[string]any{},
	}
}

// logBuffer is a concurrency-safe sink for slog in tests.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) lines() []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func jsonLogger(b *logBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// serve starts an httptest server for reg with cfg.
func serve(t testing.TB, reg *Registry, cfg ServerConfig) *httptest.Server {
	t.Helper()
	if cfg.Node == "" {
		cfg.Node = "test@127.0.0.1"
	}
	srv := httptest.NewServer(reg.Handler(cfg))
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// errCode returns error.code of an error answer.
func (a answer) errCode() string {
	e, _ := a.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (a answer) errMessage() string {
	e, _ := a.body["error"].(map[string]any)
	c, _ := e["message"].(string)
	return c
}

func (a answer) details() []map[string]any {
	e, _ := a.body["error"].(map[string]any)
	ds, _ := e["details"].([]any)
	var out []map[string]any
	for _, d := range ds {
		out = append(out, d.(map[string]any))
	}
	return out
}

func (a answer) data() map[string]any {
	d, _ := a.body["data"].(map[string]any)
	return d
}

func (a answer) meta() map[string]any {
	d, _ := a.body["meta"].(map[string]any)
	return d
}

func do(t testing.TB, method, url, token, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &a.body); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %v\n%s", method, url, err, b)
		}
	}
	return a
}
