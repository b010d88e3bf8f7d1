package ops

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkHandlerOverhead measures what the HTTP layer costs per call:
// routing, authentication, validation of a path PID and three query
// parameters, the Run goroutine and timeout, and the JSON envelope, for an
// operation that does nothing.
func BenchmarkHandlerOverhead(b *testing.B) {
	reg := NewRegistry()
	reg.MustRegister(Operation{
		Name: "bench.noop", Category: "system", Summary: "does nothing", Method: "GET",
		Path: "/api/v1/bench/{pid}",
		Params: []Param{
			{Name: "pid", Type: TypePID, In: InPath},
			{Name: "limit", Type: TypeInt, In: InQuery, Min: new(1.0), Max: new(1000.0), Default: 100},
			{Name: "details", Type: TypeBool, In: InQuery},
			{Name: "sort", Type: TypeEnum, In: InQuery, Enum: []string{"mailbox", "age"}},
		},
		Run: func(context.Context, *Request) (*Result, error) {
			return &Result{Data: map[string]int{"n": 1}}, nil
		},
		Response: map[string]int{},
	})
	h := reg.Handler(ServerConfig{Node: "bench", Tokens: testTokens})
	target := "/api/v1/bench/" + testPID + "?limit=50&details=true&sort=age"

	b.Run("in-process", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := httptest.NewRequest("GET", target, nil)
			r.Header.Set("Authorization", "Bearer "+viewerToken)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
	// With the per-operation Prometheus metrics on, and without a token
	// (an open read, whose Host is checked).
	hm := reg.Handler(ServerConfig{Node: "bench", Tokens: testTokens, OpenReads: true, Metrics: prometheus.NewRegistry()})
	b.Run("in-process-open-metrics", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := httptest.NewRequest("GET", target, nil)
			r.Host = "127.0.0.1:4100"
			w := httptest.NewRecorder()
			hm.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
	b.Run("loopback", func(b *testing.B) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		defer srv.Client().CloseIdleConnections()
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequest("GET", srv.URL+target, nil)
			req.Header.Set("Authorization", "Bearer "+viewerToken)
			resp, err := srv.Client().Do(req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatal(resp.StatusCode)
			}
		}
	})
}
