package ops

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestOperationMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := serve(t, authRegistry(), ServerConfig{Node: "n1", OpenReads: true, Tokens: testTokens, Metrics: reg})
	for range 3 {
		if a := do(t, "GET", srv.URL+"/api/v1/read", "", ""); a.status != 200 {
			t.Fatal(a.raw)
		}
	}
	if a := do(t, "GET", srv.URL+"/api/v1/read?bogus=1", "", ""); a.status != 422 {
		t.Fatal(a.raw)
	}
	if a := do(t, "POST", srv.URL+"/api/v1/write", "", ""); a.status != 401 {
		t.Fatal(a.raw)
	}
	want := `
# HELP arsenal_ops_calls_total Calls of each operation of the operations API, by HTTP status (refused calls included).
# TYPE arsenal_ops_calls_total counter
arsenal_ops_calls_total{node="n1",operation="t.read",status="200"} 3
arsenal_ops_calls_total{node="n1",operation="t.read",status="422"} 1
arsenal_ops_calls_total{node="n1",operation="t.write",status="401"} 1
# HELP arsenal_ops_errors_total Calls of each operation that failed, by error code (validation_failed, unauthorized, noproc, timeout, internal…).
# TYPE arsenal_ops_errors_total counter
arsenal_ops_errors_total{code="unauthorized",node="n1",operation="t.write"} 1
arsenal_ops_errors_total{code="validation_failed",node="n1",operation="t.read"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "arsenal_ops_calls_total", "arsenal_ops_errors_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "arsenal_ops_call_duration_seconds"); err != nil || n != 2 {
		t.Fatalf("duration histograms: %d, %v", n, err)
	}
}
