package clustertest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/clustertest"
	"github.com/arsenal-go/arsenal/internal/testutil"
)

type apiResp struct {
	Status int
	Data   map[string]any
	Meta   map[string]any
	Error  struct {
		Code    string
		Message string
		Details []map[string]any
	}
}

func api(t *testing.T, method, url, token string, body any) apiResp {
	t.Helper()
	var rd io.Reader
	if b, ok := body.([]byte); ok {
		rd = bytes.NewReader(b)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r struct {
		Data  json.RawMessage
		Meta  map[string]any
		Error struct {
			Code    string
			Message string
			Details []map[string]any
		}
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %s", method, url, resp.StatusCode, raw)
	}
	out := apiResp{Status: resp.StatusCode, Meta: r.Meta, Error: r.Error}
	_ = json.Unmarshal(r.Data, &out.Data)
	return out
}

func want(t *testing.T, r apiResp, status int, what string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d (want %d): %+v", what, r.Status, status, r.Error)
	}
}

func TestOperationsAcrossRealNodes(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	a, b, x := c.Node(0), c.Node(1), c.Node(2)
	base := a.URL() + "/api/v1"
	op := c.Token()

	var echo string
	b.MustDo("spawn", map[string]any{"kind": "echo", "name": "ops-echo"}, &echo)
	pid := url.PathEscape(echo)

	r := api(t, "GET", base+"/cluster/topology", "", nil)
	want(t, r, 200, "topology")
	if r.Data["alive_nodes"] != 3.0 || r.Data["mode"] != "multi_node" || r.Meta["node"] != a.Name {
		t.Fatalf("topology %+v meta %+v", r.Data, r.Meta)
	}
	// Processes on another node are listed, with the true total.
	r = api(t, "GET", base+"/cluster/processes?node="+b.Name+"&name=^ops-echo$", "", nil)
	want(t, r, 200, "processes")
	procs := r.Data["processes"].([]any)
	if r.Data["total"] != 1.0 || len(procs) != 1 || procs[0].(map[string]any)["pid"] != echo {
		t.Fatalf("processes %+v", r.Data)
	}
	a.MustDo("spawn", map[string]any{"kind": "echo"}, nil)
	x.MustDo("spawn", map[string]any{"kind": "echo"}, nil)
	r = api(t, "GET", base+"/cluster/processes?limit=1&offset=1", "", nil)
	want(t, r, 200, "processes paged")
	if tot := r.Data["total"].(float64); tot != 3 || len(r.Data["processes"].([]any)) != 1 {
		t.Fatalf("paging: %+v", r.Data)
	}
	// Info, call and trace of a remote PID.
	r = api(t, "GET", base+"/processes/"+pid+"/info", "", nil)
	want(t, r, 200, "info")
	if r.Data["name"] != "ops-echo" {
		t.Fatalf("info %+v", r.Data)
	}
	r = api(t, "POST", base+"/processes/"+pid+"/trace", op, map[string]any{"max_events": 5})
	want(t, r, 200, "trace start")
	traceID := r.Data["trace_id"].(string)
	r = api(t, "POST", base+"/processes/"+pid+"/message", op, map[string]any{"message": map[string]any{"ping": 1}, "mode": "call"})
	want(t, r, 200, "call")
	if reply, _ := r.Data["reply"].(map[string]any); reply["ping"] != 1.0 {
		t.Fatalf("call reply %+v", r.Data)
	}
	// Traces hold message contents: a token even on loopback.
	want(t, api(t, "GET", base+"/traces/"+url.PathEscape(traceID), "", nil), 401, "trace get without a token")
	r = api(t, "GET", base+"/traces/"+url.PathEscape(traceID), op, nil)
	want(t, r, 200, "trace get")
	if ev := r.Data["events"].([]any); len(ev) == 0 {
		t.Fatalf("trace recorded nothing: %+v", r.Data)
	}
	want(t, api(t, "DELETE", base+"/traces/"+url.PathEscape(traceID), op, nil), 200, "trace stop")
	want(t, api(t, "GET", base+"/cluster/supervision-trees", "", nil), 200, "trees")
	want(t, api(t, "GET", base+"/cluster/health?include_history=true", "", nil), 200, "health")
	want(t, api(t, "GET", base+"/cluster/nodes/"+x.Name+"/info?include_processes=true", "", nil), 200, "node info")

	// Bad input: status and the offending fields.
	r = api(t, "GET", base+"/cluster/processes?limit=0&bogus=1&sort=size", "", nil)
	want(t, r, 422, "bad query")
	if len(r.Error.Details) != 3 {
		t.Fatalf("want three offending fields: %+v", r.Error)
	}
	want(t, api(t, "GET", base+"/processes/not-a-pid/info", "", nil), 422, "malformed pid")
	want(t, api(t, "GET", base+"/cluster/nodes/nobody@127.0.0.1/info", "", nil), 404, "unknown node")
	want(t, api(t, "POST", base+"/processes/"+pid+"/message", op, map[string]any{"message": map[string]any{}, "colour": "red"}), 422, "unknown body field")
	want(t, api(t, "POST", base+"/processes/"+pid+"/message", op, map[string]any{"message": "text"}), 422, "wrong type")
	want(t, api(t, "POST", base+"/processes/"+pid+"/message", op, []byte("{not json")), 400, "malformed body")
	want(t, api(t, "POST", base+"/processes/"+pid+"/message", op, []byte(`{"message":{"x":"`+strings.Repeat("a", 2<<20)+`"}}`)), 413, "oversize body")
	// Access: a token is needed to kill, the operator role, and force for supervisors.
	want(t, api(t, "DELETE", base+"/processes/"+pid, "", nil), 401, "kill without token")
	want(t, api(t, "DELETE", base+"/processes/"+pid, op+"-viewer", nil), 403, "kill as viewer")
	var sup string
	b.MustDo("spawn", map[string]any{"kind": "supervisor"}, &sup)
	r = api(t, "GET", base+"/supervisors", "", nil)
	want(t, r, 200, "supervisors")
	if r.Data["total"] != 1.0 {
		t.Fatalf("supervisors %+v", r.Data)
	}
	// Restart the supervisor's child through the supervisor, on another node.
	r = api(t, "GET", base+"/cluster/processes?node="+b.Name+"&behaviour=control.Echo", "", nil)
	var child string
	for _, p := range r.Data["processes"].([]any) {
		if pm := p.(map[string]any); pm["name"] == nil {
			child = pm["pid"].(string)
		}
	}
	r = api(t, "POST", base+"/processes/"+url.PathEscape(child)+"/restart", op, nil)
	want(t, r, 200, "restart")
	if r.Data["child_id"] != "echo" || r.Data["new_pid"] == child {
		t.Fatalf("restart %+v", r.Data)
	}
	want(t, api(t, "DELETE", base+"/processes/"+url.PathEscape(sup), op, nil), 403, "kill a supervisor without force")
	want(t, api(t, "DELETE", base+"/processes/"+url.PathEscape(sup)+"?force=true", op, nil), 200, "kill a supervisor with force")
	r = api(t, "DELETE", base+"/processes/"+pid, op, nil)
	want(t, r, 200, "kill")
	if r.Data["exited"] != true || r.Data["exit_reason"] != "killed" {
		t.Fatalf("kill %+v", r.Data)
	}
	want(t, api(t, "GET", base+"/processes/"+pid+"/info", "", nil), 404, "info of a killed process")

	// The catalogue and the OpenAPI document.
	r = api(t, "GET", base+"/arsenal/docs", "", nil)
	if r.Status != 200 {
		t.Fatalf("docs %d", r.Status)
	}
	// The event feed: a snapshot first, then the crash of x.
	events := make(chan string, 64)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/cluster/events", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				events <- name
			} else if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && strings.Contains(data, x.Name) {
				events <- "about-x"
			}
		}
	}()
	if e := <-events; e != "topology" {
		t.Fatalf("first event %q, want topology", e)
	}
	// A node killed just before a cluster-wide read is reported, not a 500.
	c.Kill(2)
	r = api(t, "GET", base+"/cluster/processes", "", nil)
	want(t, r, 200, "processes after a crash")
	for _, q := range r.Meta["nodes_queried"].([]any) {
		if q == x.Name {
			t.Fatalf("a killed node answered: %+v", r.Meta)
		}
	}
	// The feed reports the crash (suspect first on some nodes, then down).
	deadline := time.After(testutil.Scale(within))
	for seenDown := false; !seenDown; {
		select {
		case e := <-events:
			if e == "node_down" {
				seenDown = true
			}
		case <-deadline:
			t.Fatal("no node_down event after a crash")
		}
	}
}
