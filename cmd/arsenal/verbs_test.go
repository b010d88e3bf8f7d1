package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/arsenal-go/arsenal/ops"
)

const testPID = "42.lx3k2f9a1@api@127.0.0.1"

// fakeAPI serves every built-in operation's real description (so the
// client sees the real catalogue and the real validation) with canned
// answers, and records the parameters each call arrived with.
type fakeAPI struct {
	mu     sync.Mutex
	calls  map[string][]ops.Params
	answer map[string]*ops.Result
}

func newFakeAPI(t *testing.T) (*fakeAPI, string) {
	t.Helper()
	f := &fakeAPI{calls: map[string][]ops.Params{}, answer: map[string]*ops.Result{}}
	reg := ops.NewRegistry()
	for _, op := range schemaRegistry().Operations() {
		op := *op
		if op.Stream != nil {
			continue
		}
		name := op.Name
		op.Run = func(_ context.Context, req *ops.Request) (*ops.Result, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.calls[name] = append(f.calls[name], req.Params)
			if name == "registry.lookup" && req.Params.String("name") != "web" {
				return nil, ops.NotFound("no process is registered as " + req.Params.String("name"))
			}
			r, ok := f.answer[name]
			if !ok {
				r = &ops.Result{Data: map[string]any{}}
			}
			// Answer with the operation's documented type, filled from
			// the canned map.
			b, err := json.Marshal(r.Data)
			if err != nil {
				return nil, err
			}
			v := reflect.New(reflect.TypeOf(op.Response))
			if err := json.Unmarshal(b, v.Interface()); err != nil {
				return nil, err
			}
			return &ops.Result{Data: v.Elem().Interface(), Meta: r.Meta}, nil
		}
		if err := reg.Register(op); err != nil {
			t.Fatal(err)
		}
	}
	f.answer["registry.lookup"] = &ops.Result{Data: map[string]any{"name": "web", "pid": testPID, "node": "api@127.0.0.1"}}
	srv := httptest.NewServer(reg.Handler(ops.ServerConfig{
		OpenReads: true,
		Tokens:    map[string]ops.Principal{"operator-token-0123": {Name: "op", Role: ops.RoleOperator}},
	}))
	t.Cleanup(srv.Close)
	t.Setenv("ARSENAL_ADDR", srv.URL)
	t.Setenv("ARSENAL_TOKEN", "operator-token-0123")
	return f, srv.URL
}

func (f *fakeAPI) params(t *testing.T, op string) ops.Params {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.calls[op]); n != 1 {
		t.Fatalf("%s called %d times, want 1 (calls: %v)", op, n, f.calls)
	}
	return f.calls[op][0]
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errs bytes.Buffer
	code = run(args, &out, &errs)
	return code, out.String(), errs.String()
}

// Flags after the PID are parsed, typed and sent, not ignored.
func TestFlagsAfterPositional(t *testing.T) {
	f, _ := newFakeAPI(t)
	code, out, errs := runCLI("trace", testPID, "--duration", "10s", "--max-events", "7")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	p := f.params(t, "process.trace")
	if p.Duration("duration").String() != "10s" || p.Int("max_events") != 7 || p.PID("pid").String() != testPID {
		t.Fatalf("trace got %v", p)
	}
	code, out, errs = runCLI("send", testPID, "--message", `{"a":1}`, "--mode", "cast")
	if code != 0 {
		t.Fatalf("send: exit %d: %s%s", code, out, errs)
	}
	p = f.params(t, "process.send")
	if p.String("mode") != "cast" || p.Object("message")["a"] != int64(1) {
		t.Fatalf("send got %v", p)
	}
}

// A registered name is accepted where a PID is.
func TestRegisteredNameForPID(t *testing.T) {
	f, _ := newFakeAPI(t)
	if code, out, errs := runCLI("info", "web"); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	if got := f.params(t, "process.info").PID("pid").String(); got != testPID {
		t.Fatalf("info got pid %s", got)
	}
	code, _, errs := runCLI("info", "nobody")
	if code != exitFailed || !strings.Contains(errs, "neither a PID") {
		t.Fatalf("unknown name: exit %d, %q", code, errs)
	}
}

// Stray arguments, missing arguments, bad flag values and unknown flags
// are usage errors (exit 2) with a message, and no request is made.
func TestUsageErrors(t *testing.T) {
	f, _ := newFakeAPI(t)
	for _, args := range [][]string{
		{"ps", "extra"},
		{"nodes", "x"},
		{"trace"},
		{"trace", testPID, "another"},
		{"trace", testPID, "--duration", "ten"},
		{"ps", "--limit", "many"},
		{"ps", "--no-such-flag"},
		{"send", testPID},
		{"health", "--format", "yaml"},
		{"health", "--timeout", "0s"},
		{"ops", "call"},
		{"ops", "call", "cluster.topology", "stray"},
		{"ops", "list", "stray"},
		{"no-such-command"},
		{},
	} {
		code, _, errs := runCLI(args...)
		if code != exitUsage || strings.TrimSpace(errs) == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, errs)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) != 0 {
		t.Fatalf("usage errors made calls: %v", f.calls)
	}
}

// --format json prints the whole envelope: data and meta, with the nodes
// that did not answer; the table says them on stderr.
func TestFormatJSONEnvelope(t *testing.T) {
	f, _ := newFakeAPI(t)
	f.answer["cluster.processes"] = &ops.Result{
		Data: map[string]any{"total": 0, "processes": []any{}},
		Meta: map[string]any{"unreachable_nodes": map[string]string{"b@h": "node is dead: not asked", "a@h": "timeout"}},
	}
	// A partial answer is printed whole, and exits 3 (exitDegraded).
	code, out, errs := runCLI("ps", "--format", "json")
	if code != exitDegraded {
		t.Fatalf("exit %d, want %d: %s", code, exitDegraded, errs)
	}
	var env struct {
		Data map[string]any `json:"data"`
		Meta struct {
			Unreachable map[string]string `json:"unreachable_nodes"`
		} `json:"meta"`
	}
	if err := json.Unmarshal([]byte(out), &env); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if env.Data == nil || len(env.Meta.Unreachable) != 2 || env.Meta.Unreachable["b@h"] != "node is dead: not asked" {
		t.Fatalf("envelope %s", out)
	}
	code, out, errs = runCLI("ps")
	if code != exitDegraded {
		t.Fatalf("table: exit %d, want %d: %s", code, exitDegraded, errs)
	}
	want := "warning: 2 node(s) did not answer; the list above is without them:\n  a@h: timeout\n  b@h: node is dead: not asked\n"
	if errs != want || strings.Contains(out+errs, "map[") {
		t.Fatalf("table stderr %q, want %q; stdout %q", errs, want, out)
	}
}

// A partial answer exits 3 on every verb that prints it, ops call
// included; a complete one exits 0; health's own code wins when higher.
func TestPartialAnswerExitCode(t *testing.T) {
	f, _ := newFakeAPI(t)
	partial := map[string]any{"unreachable_nodes": map[string]string{"b@h": "timeout"}}
	f.answer["cluster.supervision_trees"] = &ops.Result{Data: map[string]any{"nodes": []any{}}, Meta: partial}
	for _, args := range [][]string{{"tree"}, {"tree", "--format", "json"}, {"ops", "call", "cluster.supervision_trees"}} {
		if code, out, errs := runCLI(args...); code != exitDegraded {
			t.Errorf("%v with a node missing: exit %d, want %d; %s%s", args, code, exitDegraded, out, errs)
		}
	}
	f.answer["cluster.supervision_trees"] = &ops.Result{Data: map[string]any{"nodes": []any{}}, Meta: map[string]any{"unreachable_nodes": map[string]string{}}}
	if code, out, errs := runCLI("tree"); code != exitOK || errs != "" {
		t.Errorf("tree, every node answered: exit %d, want 0; %s%s", code, out, errs)
	}
	for status, want := range map[string]int{"healthy": exitDegraded, "critical": exitCritical} {
		f.answer["cluster.health"] = &ops.Result{Data: map[string]any{"overall_status": status, "nodes": []any{}}, Meta: partial}
		if code, out, errs := runCLI("health"); code != want {
			t.Errorf("health %s with a node missing: exit %d, want %d; %s%s", status, code, want, out, errs)
		}
	}
}

// arsenal --help lists the exit codes, and docs/OPERATIONS.md's table has
// the same codes with the same meanings.
func TestExitCodesInHelp(t *testing.T) {
	code, out, errs := runCLI("--help")
	if code != 0 {
		t.Fatalf("--help: exit %d: %s", code, errs)
	}
	b, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Split(line, " | "); len(f) == 2 && len(line) > 4 && line[0] == '|' && line[2] >= '0' && line[2] <= '9' && line[3] == ' ' {
			rows[line[2:3]] = f[1]
		}
	}
	for code, c := range map[string]struct{ help, doc string }{
		"0": {"0  success", "success"},
		"1": {"1  the operation failed", "the operation failed"},
		"2": {"2  bad usage", "bad usage"},
		"3": {"3  health degraded, or a partial answer", "partial"},
		"4": {"4  health critical", "critical"},
	} {
		if !strings.Contains(out, c.help) {
			t.Errorf("arsenal --help has no %q:\n%s", c.help, out)
		}
		if !strings.Contains(rows[code], c.doc) {
			t.Errorf("docs/OPERATIONS.md: exit code %s is %q, want it to say %q", code, rows[code], c.doc)
		}
		delete(rows, code)
	}
	if len(rows) > 0 {
		t.Errorf("docs/OPERATIONS.md has exit codes the CLI does not: %v", rows)
	}
}

// arsenal health exits 0 healthy or warning, 3 degraded, 4 critical, in
// either format.
func TestHealthExitCode(t *testing.T) {
	f, _ := newFakeAPI(t)
	for status, want := range map[string]int{"healthy": 0, "warning": 0, "degraded": exitDegraded, "critical": exitCritical} {
		f.answer["cluster.health"] = &ops.Result{Data: map[string]any{"overall_status": status, "nodes": []any{}}}
		for _, format := range []string{"table", "json"} {
			code, out, errs := runCLI("health", "--format", format)
			if code != want || !strings.Contains(out, status) {
				t.Errorf("%s, %s: exit %d, want %d; %s%s", status, format, code, want, out, errs)
			}
		}
	}
}

// An unreachable API is exit 1 with the error said.
func TestAPIErrorExit(t *testing.T) {
	t.Setenv("ARSENAL_ADDR", "http://127.0.0.1:1")
	code, _, errs := runCLI("nodes", "--timeout", "5s")
	if code != exitFailed || errs == "" {
		t.Fatalf("exit %d, %q", code, errs)
	}
}

// --help of every client verb is true to its operation: it lists every
// parameter (but the positional one) as a flag with its allowed values
// and default, and each flag sets that parameter.
func TestHelpTrueToOperations(t *testing.T) {
	for _, v := range clientVerbs() {
		op := operationSchema(v.op)
		code, out, errs := runCLI(v.name, "--help")
		if code != 0 {
			t.Fatalf("%s --help: exit %d: %s", v.name, code, errs)
		}
		if !strings.Contains(out, op.Name) {
			t.Errorf("%s --help does not name %s", v.name, op.Name)
		}
		for _, p := range op.Params {
			if p.Name == v.positional {
				if !strings.Contains(out, strings.ToUpper(p.Name)) {
					t.Errorf("%s --help has no %s", v.name, strings.ToUpper(p.Name))
				}
				continue
			}
			line := ""
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "--"+flagName(p.Name)+" ") {
					line = l
				}
			}
			if line == "" {
				t.Errorf("%s --help lacks --%s", v.name, flagName(p.Name))
				continue
			}
			typ := map[ops.Type]string{ops.TypeInt: "int", ops.TypeFloat: "float64", ops.TypeDuration: "duration", ops.TypeList: typeWord(p) + "-list"}[p.Type]
			if typ == "" {
				typ = typeWord(p)
			}
			if p.Type != ops.TypeBool && !strings.Contains(line, "--"+flagName(p.Name)+" "+typ+" ") {
				t.Errorf("%s --%s help does not name its type %s: %q", v.name, flagName(p.Name), typ, line)
			}
			for _, e := range p.Enum {
				if !strings.Contains(line, e) {
					t.Errorf("%s --%s help lacks the value %s: %q", v.name, flagName(p.Name), e, line)
				}
			}
			if p.Default != nil && !strings.Contains(line, "default ") {
				t.Errorf("%s --%s help lacks its default: %q", v.name, flagName(p.Name), line)
			}
			if p.Description != "" && !strings.Contains(line, p.Description) {
				t.Errorf("%s --%s help lacks its description: %q", v.name, flagName(p.Name), line)
			}
		}
	}
	// Every command answers --help with exit 0.
	for _, c := range newRoot(&bytes.Buffer{}, &bytes.Buffer{}).Commands() {
		if code, _, errs := runCLI(c.Name(), "--help"); code != 0 {
			t.Errorf("%s --help: exit %d: %s", c.Name(), code, errs)
		}
	}
}

// ops list fits 100 columns and shows each parameter's type and default.
func TestOpsListFits(t *testing.T) {
	newFakeAPI(t)
	code, out, errs := runCLI("ops", "list")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, l := range strings.Split(out, "\n") {
		if n := len([]rune(l)); n > maxWidth {
			t.Errorf("%d columns: %q", n, l)
		}
	}
	if !strings.Contains(out, "  max_events int (default 1000)") || !strings.Contains(out, "  pid pid (required)") {
		t.Fatalf("ops list lacks types or defaults:\n%s", out)
	}
}

// Completion scripts for bash, zsh and fish.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, errs := runCLI("completion", sh)
		if code != 0 || !strings.Contains(out, "arsenal") {
			t.Errorf("completion %s: exit %d: %s", sh, code, errs)
		}
	}
}

// Tables fit 100 columns even with long names, and print no Go map syntax.
func TestTablesFit(t *testing.T) {
	f, _ := newFakeAPI(t)
	long := strings.Repeat("x", 60)
	pid := "123456789.lx3k2f9a1abc@" + long + "@127.0.0.1"
	f.answer["cluster.processes"] = &ops.Result{Data: map[string]any{"total": 1, "processes": []any{map[string]any{
		"node": long, "pid": pid, "name": long, "behaviour": long, "status": "waiting"}}}}
	f.answer["cluster.topology"] = &ops.Result{Data: map[string]any{"cluster_name": "c", "nodes": []any{map[string]any{
		"name": long + "@127.0.0.1", "status": "alive", "self": true, "node_addr": "127.0.0.1:41601", "http_addr": "127.0.0.1:4100",
		"since": "2026-01-01T00:00:00Z"}}}}
	f.answer["cluster.health"] = &ops.Result{Data: map[string]any{"overall_status": "warning", "nodes": []any{map[string]any{
		"node": "n1", "status": "alive", "score": 70, "issues": []string{"a " + long, "b " + long}}}}}
	f.answer["cluster.supervision_trees"] = &ops.Result{Data: map[string]any{"nodes": []any{map[string]any{"node": "n1",
		"trees": []any{map[string]any{"pid": pid, "name": long, "strategy": "one_for_one", "children": []any{
			map[string]any{"id": long, "pid": pid, "type": "worker", "restart": "permanent", "state": "running"}}}}}}}}
	for _, verb := range []string{"ps", "nodes", "health", "tree"} {
		code, out, errs := runCLI(verb)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", verb, code, errs)
		}
		for _, l := range strings.Split(out, "\n") {
			if n := len([]rune(l)); n > maxWidth {
				t.Errorf("%s: %d columns: %q", verb, n, l)
			}
		}
		if strings.Contains(out, "map[") {
			t.Errorf("%s prints Go map syntax:\n%s", verb, out)
		}
	}
}

// The hand-written commands took -name as well as --name; the client
// verbs still do.
func TestSingleDashLongFlags(t *testing.T) {
	f, _ := newFakeAPI(t)
	if code, out, errs := runCLI("trace", "-duration", "10s", testPID, "-format=json"); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	if d := f.params(t, "process.trace").Duration("duration").String(); d != "10s" {
		t.Fatalf("duration %s", d)
	}
}

// Completion offers a verb's enum values and the cluster subcommands.
func TestCompletionValues(t *testing.T) {
	f, _ := newFakeAPI(t)
	f.answer["cluster.registry"] = &ops.Result{Data: map[string]any{"registrations": []any{
		map[string]any{"name": "web", "pid": testPID, "node": "api@127.0.0.1"}}}}
	if code, out, errs := runCLI("__complete", "kill", ""); code != 0 || !strings.HasPrefix(out, "web\t"+testPID+"\n") {
		t.Errorf("complete kill: exit %d, %q %s", code, out, errs)
	}
	for args, want := range map[string]string{
		"ps --sort ":         "mailbox\n",
		"send x --mode ":     "cast\n",
		"cluster ":           "partition\t",
		"ops call ":          "process.kill\t",
		"health --format ":   "json\n",
		"node --adv":         "--advertise-addr\n",
		"dev --sim":          "--simulate\n",
		"cluster start --no": "--nodes\n",
	} {
		a := append([]string{"__complete"}, strings.Split(args, " ")...)
		code, out, errs := runCLI(a...)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("complete %q: exit %d, %q %s", args, code, out, errs)
		}
	}
}

// 'arsenal ops call NAME --help' lists every parameter of NAME.
func TestOpsCallHelpListsParams(t *testing.T) {
	for _, op := range schemaRegistry().Operations() {
		code, out, errs := runCLI("ops", "call", op.Name, "--help")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", op.Name, code, errs)
		}
		for _, p := range op.Params {
			if !strings.Contains(out, "  "+p.Name+"=") {
				t.Errorf("ops call %s --help lacks %s", op.Name, p.Name)
			}
		}
	}
}

// --node NAME of a node that is dead, left or unknown is exit 1 with the
// reason, and no request goes to the address it last published.
func TestNodeByNameNotAlive(t *testing.T) {
	f, _ := newFakeAPI(t)
	f.answer["cluster.topology"] = &ops.Result{Data: map[string]any{"cluster_name": "c", "nodes": []any{
		map[string]any{"name": "a@h", "status": "alive", "self": true, "node_addr": "127.0.0.1:1", "http_addr": "127.0.0.1:1"},
		map[string]any{"name": "d@h", "status": "dead", "node_addr": "127.0.0.1:2", "http_addr": "127.0.0.1:2"},
		map[string]any{"name": "l@h", "status": "left", "node_addr": "127.0.0.1:3", "http_addr": "127.0.0.1:3"},
	}}}
	for name, want := range map[string]string{"d@h": "the node is dead", "l@h": "the node is left", "x@h": "no such node in the cluster"} {
		code, _, errs := runCLI("health", "--node", name)
		if code != exitFailed || !strings.Contains(errs, "--node "+name+": "+want) {
			t.Errorf("health --node %s: exit %d, %q; want 1 and %q", name, code, errs, want)
		}
	}
	if n := len(f.calls["cluster.health"]); n != 0 {
		t.Errorf("cluster.health called %d times through a node that is not alive", n)
	}
}

// A list parameter is a repeatable flag named by its items' type, read
// back as a pflag.SliceValue (what the verb sends, joined by commas).
func TestListParamFlag(t *testing.T) {
	cmd := &cobra.Command{Use: "x"}
	addParamFlag(cmd, ops.Param{Name: "meta", Type: ops.TypeList, In: ops.InQuery, Description: "key=value"})
	if err := cmd.ParseFlags([]string{"--meta", "a=1", "--meta", "b"}); err != nil {
		t.Fatal(err)
	}
	f := cmd.Flags().Lookup("meta")
	sv, ok := f.Value.(pflag.SliceValue)
	if !ok || !reflect.DeepEqual(sv.GetSlice(), []string{"a=1", "b"}) || f.Value.Type() != "string-list" {
		t.Fatalf("--meta: %T %v, type %q", f.Value, f.Value, f.Value.Type())
	}
}
