package clustertest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/arsenal-go/arsenal/clustertest"
	"github.com/arsenal-go/arsenal/internal/testutil"
)

// conformance checks answers of a real node against its own OpenAPI
// document with an independent JSON Schema validator
// (santhosh-tekuri/jsonschema, draft 2020-12, formats asserted): the
// status must be declared for the operation, the content type must be the
// declared one, and the body must validate against the declared schema.
type conformance struct {
	t     *testing.T
	doc   map[string]any
	c     *jsonschema.Compiler
	mu    sync.Mutex
	cache map[string]*jsonschema.Schema
	// seen: operationId → statuses answered
	seen map[string]map[int]bool
}

const docURL = "https://arsenal.invalid/openapi.json"

func newConformance(t *testing.T, raw []byte) *conformance {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(docURL, inst); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("openapi %q, want 3.1.x", v)
	}
	return &conformance{t: t, doc: doc, c: c, cache: map[string]*jsonschema.Schema{}, seen: map[string]map[int]bool{}}
}

func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func (cf *conformance) schema(ptr string) *jsonschema.Schema {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if s, ok := cf.cache[ptr]; ok {
		return s
	}
	s, err := cf.c.Compile(docURL + "#" + ptr)
	if err != nil {
		cf.t.Fatalf("compile the schema at %s: %v", ptr, err)
	}
	cf.cache[ptr] = s
	return s
}

// route finds the path template and method item of a concrete path.
func (cf *conformance) route(method, path string) (template string, item map[string]any) {
	paths := cf.doc["paths"].(map[string]any)
	for tmpl, it := range paths {
		re := "^" + regexp.MustCompile(`\\\{[a-z_]+\\\}`).ReplaceAllString(regexp.QuoteMeta(tmpl), `[^/]+`) + "$"
		if regexp.MustCompile(re).MatchString(path) {
			return tmpl, it.(map[string]any)
		}
	}
	return "", nil
}

// resolve follows a local $ref in the document, returning the target
// and its JSON pointer.
func (cf *conformance) resolve(v map[string]any, ptr string) (map[string]any, string) {
	r, ok := v["$ref"].(string)
	if !ok {
		return v, ptr
	}
	var cur any = cf.doc
	for _, part := range strings.Split(strings.TrimPrefix(r, "#/"), "/") {
		cur = cur.(map[string]any)[part]
	}
	return cur.(map[string]any), strings.TrimPrefix(r, "#")
}

// check validates one answer; it returns the operationId.
func (cf *conformance) check(method, rawPath string, status int, ctype string, body []byte) string {
	t := cf.t
	t.Helper()
	u, _ := url.Parse(rawPath)
	tmpl, item := cf.route(method, u.EscapedPath())
	if item == nil {
		t.Fatalf("%s %s: no path of the document matches", method, rawPath)
	}
	opPtr := "/paths/" + pointerEscape(tmpl) + "/" + strings.ToLower(method)
	op, ok := item[strings.ToLower(method)].(map[string]any)
	if !ok {
		// Another method than the path's: the 405 the path's operations
		// declare.
		if status != http.StatusMethodNotAllowed {
			t.Fatalf("%s %s: the document has no %s here, and the answer is %d, not 405", method, rawPath, method, status)
		}
		for _, m := range []string{"get", "post", "put", "patch", "delete"} {
			if o, ok := item[m].(map[string]any); ok {
				op, opPtr = o, "/paths/"+pointerEscape(tmpl)+"/"+m
				break
			}
		}
	}
	id, _ := op["operationId"].(string)
	resps := op["responses"].(map[string]any)
	rv, ok := resps[strconv.Itoa(status)].(map[string]any)
	if !ok {
		t.Fatalf("%s %s (%s) answered %d, which the document does not declare: %s", method, rawPath, id, status, trim(body))
	}
	resp, respPtr := cf.resolve(rv, opPtr+"/responses/"+strconv.Itoa(status))
	content, _ := resp["content"].(map[string]any)
	mt := strings.TrimSpace(strings.Split(ctype, ";")[0])
	media, ok := content[mt].(map[string]any)
	if !ok {
		t.Fatalf("%s %s (%s) %d: content type %q is not declared (%v)", method, rawPath, id, status, ctype, keys(content))
	}
	cf.mu.Lock()
	if cf.seen[id] == nil {
		cf.seen[id] = map[int]bool{}
	}
	cf.seen[id][status] = true
	cf.mu.Unlock()
	if mt != "application/json" || method == http.MethodHead {
		return id
	}
	_ = media
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s %s (%s) %d: not JSON: %v", method, rawPath, id, status, err)
	}
	if err := cf.schema(respPtr + "/content/application~1json/schema").Validate(inst); err != nil {
		t.Fatalf("%s %s (%s) %d: the answer does not match the document:\n%v\nanswer: %s", method, rawPath, id, status, err, trim(body))
	}
	return id
}

// checkEvent validates one Server-Sent Event's data against the schema
// the document gives for its name.
func (cf *conformance) checkEvent(path, name string, data []byte) {
	t := cf.t
	t.Helper()
	tmpl, item := cf.route("GET", path)
	if item == nil {
		t.Fatalf("no path for %s", path)
	}
	evs := item["get"].(map[string]any)["responses"].(map[string]any)["200"].(map[string]any)["content"].(map[string]any)["text/event-stream"].(map[string]any)["x-arsenal-events"].(map[string]any)
	if _, ok := evs[name]; !ok {
		t.Fatalf("event %q of %s is not in the document (%v)", name, path, keys(evs))
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("event %s: data is not JSON: %v", name, err)
	}
	ptr := "/paths/" + pointerEscape(tmpl) + "/get/responses/200/content/text~1event-stream/x-arsenal-events/" + pointerEscape(name)
	if err := cf.schema(ptr).Validate(inst); err != nil {
		t.Fatalf("event %s does not match the document:\n%v\ndata: %s", name, err, trim(data))
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func trim(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

type answer struct {
	status int
	ctype  string
	body   []byte
	data   map[string]any
	meta   map[string]any
}

// call makes one request and checks the answer against the document.
func (cf *conformance) call(base, method, path, token string, body any) answer {
	cf.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cf.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: raw}
	cf.check(method, path, a.status, a.ctype, raw)
	var env struct {
		Data json.RawMessage
		Meta map[string]any
	}
	if json.Unmarshal(raw, &env) == nil {
		a.meta = env.Meta
		_ = json.Unmarshal(env.Data, &a.data)
	}
	return a
}

func (cf *conformance) must(a answer, status int, what string) answer {
	cf.t.Helper()
	if a.status != status {
		cf.t.Fatalf("%s: status %d, want %d: %s", what, a.status, status, trim(a.body))
	}
	return a
}

func docOf(t *testing.T, base string) []byte {
	resp, err := http.Get(base + "/api/v1/arsenal/docs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("docs: %d %s", resp.StatusCode, raw)
	}
	return raw
}

// Every operation, called on a real three-node cluster, answers what its
// OpenAPI document says, for successes and for errors; and every
// operation of the document was called.
func TestOperationsConformToTheirDocument(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	a, b, x := c.Node(0), c.Node(1), c.Node(2)
	base := a.URL()
	op, viewer := c.Token(), c.Token()+"-viewer"
	cf := newConformance(t, docOf(t, base))

	// The validator is not vacuous: wrong answers fail it.
	for _, bad := range []string{
		`{"data":{},"meta":{"operation":"cluster.topology","node":"n","duration_ms":1}}`,
		`{"data":null,"meta":{"operation":"cluster.topology","node":"n","duration_ms":1}}`,
		`{"error":{"code":"x","message":"y"}}`,
	} {
		inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		ptr := "/paths/" + pointerEscape("/api/v1/cluster/topology") + "/get/responses/200/content/application~1json/schema"
		if cf.schema(ptr).Validate(inst) == nil {
			t.Fatalf("the validator accepts %s as a topology", bad)
		}
	}

	var echo, sup string
	b.MustDo("spawn", map[string]any{"kind": "echo", "name": "conf-echo"}, &echo)
	b.MustDo("spawn", map[string]any{"kind": "supervisor"}, &sup)
	pid := "/api/v1/processes/" + url.PathEscape(echo)

	// Reads, with every include.
	cf.must(cf.call(base, "GET", "/api/v1/cluster/topology?include_processes=true&include_health=true", "", nil), 200, "topology")
	cf.must(cf.call(base, "GET", "/api/v1/cluster/topology?include_health=false", "", nil), 200, "topology without health")
	views := cf.must(cf.call(base, "GET", "/api/v1/cluster/membership-views", "", nil), 200, "membership views")
	if vs, _ := views.data["views"].([]any); len(vs) != 3 {
		t.Fatalf("membership views of %d nodes, want 3: %s", len(vs), views.body)
	}
	cf.must(cf.call(base, "GET", "/api/v1/cluster/health?include_history=true&include_metrics=true", "", nil), 200, "health")
	cf.must(cf.call(base, "GET", "/api/v1/cluster/nodes/"+url.PathEscape(b.Name)+"/info?include_processes=true", "", nil), 200, "node info (other)")
	cf.must(cf.call(base, "GET", "/api/v1/cluster/nodes/"+url.PathEscape(a.Name)+"/info", "", nil), 200, "node info (self)")
	cf.must(cf.call(base, "GET", "/api/v1/cluster/processes?include_details=true&limit=10000", "", nil), 200, "processes")
	cf.must(cf.call(base, "GET", "/api/v1/cluster/processes?node="+url.QueryEscape(b.Name)+"&name=nobody-has-this", "", nil), 200, "processes, none")
	cf.must(cf.call(base, "GET", "/api/v1/cluster/supervision-trees", "", nil), 200, "trees")
	cf.must(cf.call(base, "GET", "/api/v1/supervisors?per_page=100", "", nil), 200, "supervisors")
	cf.must(cf.call(base, "GET", pid+"/info", "", nil), 200, "info")
	cf.must(cf.call(base, "POST", pid+"/message", op, map[string]any{"message": map[string]any{"ping": 1}, "mode": "call"}), 200, "call")
	cf.must(cf.call(base, "POST", pid+"/message", op, map[string]any{"message": map[string]any{"ping": 2}}), 200, "send")
	tr := cf.must(cf.call(base, "POST", pid+"/trace", op, map[string]any{"max_events": 5, "duration": "30s"}), 200, "trace start")
	traceID, _ := tr.data["trace_id"].(string)
	cf.must(cf.call(base, "POST", pid+"/message", op, map[string]any{"message": map[string]any{"ping": 3}, "mode": "call"}), 200, "traced call")
	tp := "/api/v1/traces/" + url.PathEscape(traceID)
	cf.must(cf.call(base, "GET", tp, "", nil), 401, "trace read without a token (traces hold message contents)")
	got := cf.must(cf.call(base, "GET", tp, viewer, nil), 200, "trace get")
	if ev, _ := got.data["events"].([]any); len(ev) == 0 {
		t.Fatalf("the trace recorded nothing: %s", got.body)
	}
	cf.must(cf.call(base, "GET", "/api/v1/traces", viewer, nil), 200, "trace list")
	cf.must(cf.call(base, "DELETE", tp, op, nil), 200, "trace stop")

	// Placement and the registry, once the split-brain policy has
	// decided that this side runs children.
	c.Eventually(testutil.Scale(within), func() bool {
		resp, err := http.Get(base + "/api/v1/cluster/placement")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var r struct{ Data struct{ Side string } }
		return json.NewDecoder(resp.Body).Decode(&r) == nil && r.Data.Side == "up"
	}, "the placement side never came up")
	cf.must(cf.call(base, "POST", "/api/v1/cluster/placement/children", op, map[string]any{"id": "conf-child", "kind": "echo", "name": "conf-child-name"}), 200, "placement start")
	cf.must(cf.call(base, "POST", "/api/v1/cluster/placement/children", op, map[string]any{"id": "conf-child", "kind": "echo"}), 409, "placement start twice")
	cf.must(cf.call(base, "GET", "/api/v1/cluster/placement?include_nodes=true", "", nil), 200, "placement")
	cf.must(cf.call(base, "POST", "/api/v1/cluster/placement/rebalance", op, nil), 200, "placement rebalance")
	c.Eventually(testutil.Scale(within), func() bool {
		req, _ := http.NewRequest("GET", base+"/api/v1/cluster/registry/lookup?name=conf-child-name", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "the placed child's name is not in the registry")
	cf.must(cf.call(base, "GET", "/api/v1/cluster/registry/lookup?name=conf-child-name", "", nil), 200, "registry lookup")
	cf.must(cf.call(base, "GET", "/api/v1/cluster/registry/lookup?name=nobody", "", nil), 404, "registry lookup, unknown")
	cf.must(cf.call(base, "GET", "/api/v1/cluster/registry?include_entries=true", "", nil), 200, "registry")
	cf.must(cf.call(base, "DELETE", "/api/v1/cluster/placement/children/conf-child", op, nil), 200, "placement stop")

	// Supervision: restart a child, kill with and without force.
	procs := cf.must(cf.call(base, "GET", "/api/v1/cluster/processes?node="+url.QueryEscape(b.Name)+"&behaviour=control.Echo", "", nil), 200, "children")
	var child string
	for _, p := range procs.data["processes"].([]any) {
		if pm := p.(map[string]any); pm["name"] == nil {
			child = pm["pid"].(string)
		}
	}
	cf.must(cf.call(base, "POST", "/api/v1/processes/"+url.PathEscape(child)+"/restart", op, nil), 200, "restart")
	cf.must(cf.call(base, "POST", pid+"/restart", op, nil), 409, "restart a process without a supervisor")
	cf.must(cf.call(base, "DELETE", "/api/v1/processes/"+url.PathEscape(sup), op, nil), 403, "kill a supervisor without force")
	cf.must(cf.call(base, "DELETE", pid+"?wait=5s", op, nil), 200, "kill")
	cf.must(cf.call(base, "GET", pid+"/info", "", nil), 404, "info of a dead process")

	// Errors of the framework, each as declared.
	cf.must(cf.call(base, "DELETE", pid, "", nil), 401, "kill without a token")
	cf.must(cf.call(base, "DELETE", pid, viewer, nil), 403, "kill as a viewer")
	cf.must(cf.call(base, "POST", "/api/v1/cluster/topology", op, nil), 405, "wrong method")
	cf.must(cf.call(base, "GET", "/api/v1/cluster/processes?limit=0&bogus=1", "", nil), 422, "bad query")
	cf.must(cf.call(base, "POST", pid+"/message", op, []byte("{not json")), 400, "malformed body")
	cf.must(cf.call(base, "POST", pid+"/message", op, []byte(`{"message":{"x":"`+strings.Repeat("a", 2<<20)+`"}}`)), 413, "body too large")
	cf.must(cf.call(base, "GET", "/api/v1/cluster/nodes/nobody@127.0.0.1/info", "", nil), 404, "unknown node")

	// The catalogue and the document itself.
	cf.must(cf.call(base, "GET", "/api/v1/arsenal/operations", "", nil), 200, "catalogue")
	cf.must(cf.call(base, "GET", "/api/v1/arsenal/docs", "", nil), 200, "docs")

	// The event feed: the first frame has an id and a declared event;
	// then a crash of x arrives as declared events.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type frame struct{ id, name, data string }
	frames := make(chan frame, 64)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/cluster/events", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			close(frames)
			return
		}
		defer resp.Body.Close()
		cf.check("GET", "/api/v1/cluster/events", resp.StatusCode, resp.Header.Get("Content-Type"), nil)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var f frame
		for sc.Scan() {
			l := sc.Text()
			switch {
			case l == "":
				if f.name != "" {
					frames <- f
				}
				f = frame{}
			case strings.HasPrefix(l, "id: "):
				f.id = l[4:]
			case strings.HasPrefix(l, "event: "):
				f.name = l[7:]
			case strings.HasPrefix(l, "data: "):
				f.data = l[6:]
			}
		}
		close(frames)
	}()
	first := <-frames
	if first.name != "topology" || first.id == "" {
		t.Fatalf("first frame %+v, want a topology event with an id", first)
	}
	cf.checkEvent("/api/v1/cluster/events", first.name, []byte(first.data))
	c.Kill(2)
	deadline := time.After(testutil.Scale(within))
	for down := false; !down; {
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatal("the feed ended")
			}
			if f.id == "" {
				t.Fatalf("frame without an id: %+v", f)
			}
			cf.checkEvent("/api/v1/cluster/events", f.name, []byte(f.data))
			down = f.name == "node_down"
		case <-deadline:
			t.Fatal("no node_down after a crash")
		}
	}
	// A dead node: 503 as declared, and a cluster-wide read that says so.
	cf.must(cf.call(base, "GET", "/api/v1/cluster/nodes/"+url.PathEscape(x.Name)+"/info", "", nil), 503, "info of a dead node")
	// A cluster-wide read with a node down says so; once the node is
	// declared dead it is listed as not asked.
	c.Eventually(testutil.Scale(within), func() bool {
		r := cf.call(base, "GET", "/api/v1/cluster/processes", "", nil)
		un, _ := r.meta["unreachable_nodes"].(map[string]any)
		why, _ := un[x.Name].(string)
		return r.status == 200 && strings.Contains(why, "dead")
	}, "a cluster-wide read does not say that %s is dead", x.Name)

	// The calls are counted per operation on /metrics, next to
	// memberlist's own metrics.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	prom, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`arsenal_ops_calls_total{node="` + a.Name + `",operation="cluster.topology",status="200"} 2`,
		`arsenal_ops_errors_total{code="unauthorized",node="` + a.Name + `",operation="process.kill"} 1`,
		`arsenal_ops_call_duration_seconds_bucket{node="` + a.Name + `",operation="process.kill"`,
		`arsenal_memberlist_`,
	} {
		if !strings.Contains(string(prom), want) {
			t.Errorf("/metrics has no %s", want)
		}
	}

	// Every operation of the document was called and answered 200.
	var missing []string
	for tmpl, it := range cf.doc["paths"].(map[string]any) {
		for m, o := range it.(map[string]any) {
			id, _ := o.(map[string]any)["operationId"].(string)
			if !cf.seen[id][200] {
				missing = append(missing, fmt.Sprintf("%s (%s %s)", id, strings.ToUpper(m), tmpl))
			}
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Fatalf("operations of the document never called with success:\n%s", strings.Join(missing, "\n"))
	}
}
