package ops

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func clientRegistry() *Registry {
	reg := NewRegistry()
	reg.MustRegister(
		okOp("proc.message", "POST", "/api/v1/procs/{pid}/message",
			Param{Name: "pid", Type: TypePID, In: InPath},
			Param{Name: "timeout", Type: TypeDuration, In: InQuery},
			Param{Name: "nodes", Type: TypeList, Items: TypeNode, In: InQuery},
			Param{Name: "mode", Type: TypeEnum, In: InBody, Enum: []string{"send", "cast", "call"}, Required: true},
			Param{Name: "count", Type: TypeInt, In: InBody},
			Param{Name: "ratio", Type: TypeFloat, In: InBody},
			Param{Name: "urgent", Type: TypeBool, In: InBody},
			Param{Name: "tags", Type: TypeList, In: InBody},
			Param{Name: "ids", Type: TypeList, Items: TypeInt, In: InBody},
			Param{Name: "payload", Type: TypeObject, In: InBody},
			Param{Name: "text", Type: TypeString, In: InBody},
		),
		Operation{Name: "proc.lost", Category: "process", Summary: "not found", Method: "GET", Path: "/api/v1/lost",
			Run: func(context.Context, *Request) (*Result, error) { return nil, NotFound("no process 42") }, Response: map[string]any{}},
		okOp("proc.noargs", "GET", "/api/v1/noargs"),
	)
	return reg
}

func TestClientCallRoundTrip(t *testing.T) {
	srv := serve(t, clientRegistry(), ServerConfig{Tokens: testTokens, Node: "n1"})
	c := &Client{BaseURL: strings.TrimPrefix(srv.URL, "http://") + "/", Token: operatorToken}
	ctx := context.Background()

	resp, err := c.Call(ctx, "proc.message", map[string]string{
		"pid": testPID, "timeout": "2s", "nodes": "a@h,b@h", "mode": "call", "count": "3", "ratio": "0.5",
		"urgent": "1", "tags": "x,y", "ids": "1,2", "payload": `{"k":[1,"v"]}`, "text": "a b/c?d",
	})
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	json.Unmarshal(resp.Data, &data)
	want := map[string]any{
		"pid": testPID, "timeout": "2s", "nodes": []any{"a@h", "b@h"}, "mode": "call", "count": 3.0, "ratio": 0.5,
		"urgent": true, "tags": []any{"x", "y"}, "ids": []any{1.0, 2.0}, "payload": map[string]any{"k": []any{1.0, "v"}},
		"text": "a b/c?d",
	}
	if !reflect.DeepEqual(data, want) {
		t.Fatalf("data %v\nwant %v", data, want)
	}
	if resp.Status != 200 || resp.Meta["node"] != "n1" || resp.Meta["operation"] != "proc.message" || resp.Meta["principal"] != "otto" {
		t.Fatalf("meta %v", resp.Meta)
	}

	// By CLI verb, with a value the server must refuse.
	_, err = c.Call(ctx, "proc-message", map[string]string{"pid": testPID, "count": "many", "urgent": "yes"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 422 || ae.Code != "validation_failed" || len(ae.Fields()) != 3 {
		t.Fatalf("bad values: %#v", err)
	}
	msg := err.Error()
	for _, line := range []string{
		"invalid parameters for proc.message: count, mode, urgent (422 validation_failed)",
		"\n  count (body): must be an integer, got a string",
		"\n  mode (body): is required",
		"\n  urgent (body): must be true or false, got a string",
	} {
		if !strings.Contains(msg, line) {
			t.Fatalf("error text %q lacks %q", msg, line)
		}
	}

	// Errors found before sending anything.
	_, err = c.Call(ctx, "proc.message", map[string]string{"pid": testPID, "mode": "send", "colour": "red", "size": "1"})
	if err == nil || err.Error() != "unknown argument(s) colour, size for proc.message; valid: count, ids, mode, nodes, payload, pid, ratio, tags, text, timeout, urgent" {
		t.Fatalf("unknown args: %v", err)
	}
	_, err = c.Call(ctx, "proc.noargs", map[string]string{"x": "1"})
	if err == nil || !strings.Contains(err.Error(), "proc.noargs takes no arguments") {
		t.Fatalf("no args: %v", err)
	}
	_, err = c.Call(ctx, "proc.message", map[string]string{"mode": "send"})
	if err == nil || !strings.Contains(err.Error(), "needs the argument pid") {
		t.Fatalf("missing path arg: %v", err)
	}
	_, err = c.Call(ctx, "proc.nothing", nil)
	if err == nil || !strings.Contains(err.Error(), `no operation "proc.nothing"; the server has: proc.lost, proc.message, proc.noargs`) {
		t.Fatalf("unknown op: %v", err)
	}

	// Errors from the operation and from access control.
	_, err = c.Call(ctx, "proc.lost", nil)
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "not_found" || err.Error() != "no process 42 (404 not_found)" {
		t.Fatalf("not found: %v", err)
	}
	viewer := &Client{BaseURL: srv.URL, Token: viewerToken}
	_, err = viewer.Call(ctx, "proc.message", map[string]string{"pid": testPID, "mode": "send"})
	if !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("viewer: %v", err)
	}
	anon := &Client{BaseURL: srv.URL}
	if _, err = anon.Catalogue(ctx); !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("anonymous: %v", err)
	}
	cat, err := c.Catalogue(ctx)
	if err != nil || len(cat) != 3 {
		t.Fatalf("catalogue: %v %v", cat, err)
	}
	if _, err := c.Invoke(ctx, CatalogueEntry{Name: "s", Stream: true}, nil); err == nil {
		t.Fatal("Invoke of a stream")
	}
}

func TestClientNonArsenalErrors(t *testing.T) {
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	}))
	defer proxy.Close()
	c := &Client{BaseURL: proxy.URL}
	_, err := c.Call(context.Background(), "x", nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Code != "http_502" || !strings.Contains(ae.Message, "bad gateway") {
		t.Fatalf("%#v", err)
	}
	// Nobody listening.
	c = &Client{BaseURL: "http://127.0.0.1:1"}
	if _, err := c.Catalogue(context.Background()); err == nil || !strings.Contains(err.Error(), "GET http://127.0.0.1:1/api/v1/arsenal/operations") {
		t.Fatalf("connection refused: %v", err)
	}
}

func TestBodyValue(t *testing.T) {
	for _, c := range []struct {
		t, items Type
		in       string
		want     any
	}{
		{TypeInt, "", "12", int64(12)},
		{TypeInt, "", "1.5", "1.5"},
		{TypeFloat, "", "1.5", 1.5},
		{TypeFloat, "", "NaN", "NaN"},
		{TypeBool, "", "False", false},
		{TypeBool, "", "maybe", "maybe"},
		{TypeObject, "", `{"a":1}`, json.RawMessage(`{"a":1}`)},
		{TypeObject, "", `{a}`, `{a}`},
		{TypeList, "", "", []any{}},
		{TypeList, "", "a,b", []any{"a", "b"}},
		{TypeList, TypeInt, "1,x", []any{int64(1), "x"}},
		{TypeDuration, "", "5s", "5s"},
		{TypePID, "", testPID, testPID},
	} {
		if got := bodyValue(c.t, c.items, c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("bodyValue(%s, %q) = %#v, want %#v", c.t, c.in, got, c.want)
		}
	}
}
