package ops

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func safetyRegistry() *Registry {
	reg := NewRegistry()
	reg.MustRegister(
		okOp("t.read", "GET", "/api/v1/read"),
		Operation{Name: "t.trace", Category: "tracing", Summary: "a read that shows message contents", Method: "GET",
			Path: "/api/v1/trace/{id}", Params: []Param{{Name: "id", Type: TypeString, In: InPath}},
			Sensitive: true, Run: echo, Response: map[string]any{}},
		Operation{Name: "t.send", Category: "process", Summary: "send", Method: "POST",
			Path: "/api/v1/send/{pid}", Params: []Param{
				{Name: "pid", Type: TypePID, In: InPath},
				{Name: "message", Type: TypeObject, In: InBody},
				{Name: "args", Type: TypeString, In: InBody, Payload: true},
				{Name: "mode", Type: TypeString, In: InBody},
			}, Run: echo, Response: map[string]any{}},
	)
	return reg
}

func withHost(t *testing.T, method, url, host, token, body string) int {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	} else {
		rd = strings.NewReader("")
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, url, rd)
	req.Host = host
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestSensitiveReadsNeedATokenEvenWhenReadsAreOpen(t *testing.T) {
	srv := serve(t, safetyRegistry(), ServerConfig{OpenReads: true, Tokens: testTokens})
	if a := do(t, "GET", srv.URL+"/api/v1/read", "", ""); a.status != 200 {
		t.Fatalf("open read: %d", a.status)
	}
	if a := do(t, "GET", srv.URL+"/api/v1/trace/x", "", ""); a.status != 401 || a.errCode() != "unauthorized" {
		t.Fatalf("sensitive read without a token: %d %s", a.status, a.raw)
	}
	if a := do(t, "GET", srv.URL+"/api/v1/trace/x", viewerToken, ""); a.status != 200 {
		t.Fatalf("sensitive read with a viewer token: %d %s", a.status, a.raw)
	}
}

func TestHostHeaderAgainstDNSRebinding(t *testing.T) {
	srv := serve(t, safetyRegistry(), ServerConfig{OpenReads: true, Tokens: testTokens, AllowedHosts: []string{"api.example.internal"}})
	port := srv.URL[strings.LastIndexByte(srv.URL, ':'):]
	cases := []struct {
		host, token string
		path        string
		status      int
	}{
		{"127.0.0.1" + port, "", "/api/v1/read", 200},
		{"[::1]" + port, "", "/api/v1/read", 200},
		{"localhost" + port, "", "/api/v1/read", 200},
		{"LOCALHOST.", "", "/api/v1/read", 200},
		{"api.example.internal" + port, "", "/api/v1/read", 200},
		{"attacker.example" + port, "", "/api/v1/read", 403},
		{"attacker.example" + port, "", CataloguePath, 403},
		{"attacker.example" + port, "", DocsPath, 403},
		{"127.0.0.1.attacker.example", "", "/api/v1/read", 403},
		{"attacker.example" + port, viewerToken, "/api/v1/read", 200}, // a token: not a browser page
	}
	for _, c := range cases {
		if got := withHost(t, "GET", srv.URL+c.path, c.host, c.token, ""); got != c.status {
			t.Errorf("Host %q token %v %s: %d, want %d", c.host, c.token != "", c.path, got, c.status)
		}
	}
	any := serve(t, safetyRegistry(), ServerConfig{OpenReads: true, AllowedHosts: []string{"*"}})
	if got := withHost(t, "GET", any.URL+"/api/v1/read", "whatever.example", "", ""); got != 200 {
		t.Fatalf("AllowedHosts *: %d", got)
	}
}

func TestAuditOutputRedactsPayloadsAtEveryLevel(t *testing.T) {
	var audit, logs logBuffer
	// The node's logger is at ERROR: the audit log does not depend on it.
	quiet := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))
	srv := serve(t, safetyRegistry(), ServerConfig{Node: "n1", OpenReads: true, Tokens: testTokens, AuditOutput: &audit,
		Logger: quiet})
	body := `{"message":{"password":"hunter2-secret"},"args":"more-secret-args","mode":"call"}`
	if a := do(t, "POST", srv.URL+"/api/v1/send/"+testPID, operatorToken, body); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	if a := do(t, "GET", srv.URL+"/api/v1/trace/abc", viewerToken, ""); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	if a := do(t, "GET", srv.URL+"/api/v1/read", "", ""); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	lines := audit.lines()
	if len(lines) != 2 {
		t.Fatalf("want 2 audit lines (the send and the sensitive read), got %d:\n%s", len(lines), audit.String())
	}
	if strings.Contains(audit.String(), "hunter2") || strings.Contains(audit.String(), "more-secret") {
		t.Fatalf("a payload reached the audit log:\n%s", audit.String())
	}
	send := lines[0]
	params, _ := send["params"].(map[string]any)
	if send["principal"] != "otto" || send["operation"] != "t.send" || send["target"] != testPID || send["node"] != "n1" ||
		send["status"] != 200.0 || send["duration_ms"] == nil || params["mode"] != "call" ||
		params["message"] != "[redacted: 29 bytes]" || params["args"] != "[redacted: 16 bytes]" {
		t.Fatalf("send audit line: %v", send)
	}
	if tr := lines[1]; tr["operation"] != "t.trace" || tr["principal"] != "vera" || tr["target"] != "abc" {
		t.Fatalf("sensitive read audit line: %v", tr)
	}

	// AuditPayloads keeps them, on purpose.
	var full logBuffer
	srv2 := serve(t, safetyRegistry(), ServerConfig{OpenReads: true, Tokens: testTokens, AuditOutput: &full, AuditPayloads: true})
	if a := do(t, "POST", srv2.URL+"/api/v1/send/"+testPID, operatorToken, body); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	if !strings.Contains(full.String(), "hunter2") {
		t.Fatalf("AuditPayloads did not keep the payload:\n%s", full.String())
	}
}
