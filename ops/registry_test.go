package ops

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/process"
)

func TestRegisterRejectsBadDescriptions(t *testing.T) {
	pidParam := Param{Name: "pid", Type: TypePID, In: InPath}
	base := func() Operation {
		return okOp("process.info", "GET", "/api/v1/processes/{pid}/info", pidParam)
	}
	with := func(f func(*Operation)) Operation {
		op := base()
		f(&op)
		return op
	}
	withParam := func(p Param) Operation {
		return with(func(o *Operation) { o.Params = append(o.Params, p) })
	}
	cases := []struct {
		name string
		op   Operation
		want string
	}{
		{"bad name", with(func(o *Operation) { o.Name = "Process Info" }), "name must be lower case"},
		{"empty name", with(func(o *Operation) { o.Name = "" }), "name must be lower case"},
		{"bad category", with(func(o *Operation) { o.Category = "" }), "category"},
		{"no summary", with(func(o *Operation) { o.Summary = " " }), "summary is empty"},
		{"bad method", with(func(o *Operation) { o.Method = "get" }), "method"},
		{"no run", with(func(o *Operation) { o.Run = nil }), "exactly one of Run and Stream"},
		{"run and stream", with(func(o *Operation) {
			o.Stream = func(context.Context, *Request, StreamWriter) error { return nil }
		}), "exactly one of Run and Stream"},
		{"stream not GET", with(func(o *Operation) {
			o.Method, o.Run = "POST", nil
			o.Stream = func(context.Context, *Request, StreamWriter) error { return nil }
		}), "Stream operation must use GET"},
		{"negative timeout", with(func(o *Operation) { o.Timeout = -time.Second }), "timeout is negative"},
		{"bad role", with(func(o *Operation) { o.Role = "admin" }), "role"},
		{"dangerous viewer", with(func(o *Operation) { o.Dangerous, o.Role = true, RoleViewer }), "dangerous operation needs role operator"},
		{"path not api", with(func(o *Operation) { o.Path = "/processes/{pid}" }), "must start with /api/"},
		{"trailing slash", with(func(o *Operation) { o.Path = "/api/v1/processes/{pid}/" }), "must not end with /"},
		{"empty segment", with(func(o *Operation) { o.Path = "/api/v1//{pid}" }), "empty segment"},
		{"partial wildcard", with(func(o *Operation) { o.Path = "/api/v1/p-{pid}" }), "whole {snake_case} wildcard"},
		{"rest wildcard", with(func(o *Operation) { o.Path = "/api/v1/{pid...}" }), "wildcard"},
		{"path param missing", with(func(o *Operation) { o.Params = nil }), "path segment {pid} has no param"},
		{"path param in query", with(func(o *Operation) { o.Params = []Param{{Name: "pid", Type: TypePID, In: InQuery}} }),
			"path segment {pid} has no param \"pid\" with In: path"},
		{"path param not in path", withParam(Param{Name: "node", Type: TypeNode, In: InPath}), "not a {node} segment"},
		{"duplicate param", withParam(pidParam), "declared twice"},
		{"bad param name", withParam(Param{Name: "Limit", Type: TypeInt, In: InQuery}), "snake_case"},
		{"bad type", withParam(Param{Name: "x", Type: "integer", In: InQuery}), "unknown type"},
		{"bad in", withParam(Param{Name: "x", Type: TypeInt, In: "header"}), "unknown location"},
		{"body on GET", withParam(Param{Name: "x", Type: TypeInt, In: InBody}), "GET operation cannot have body"},
		{"object in query", withParam(Param{Name: "x", Type: TypeObject, In: InQuery}), "object parameter must be in the body"},
		{"list in path", with(func(o *Operation) { o.Params = []Param{{Name: "pid", Type: TypeList, In: InPath}} }), "path parameter cannot be a list"},
		{"default in path", with(func(o *Operation) { o.Params = []Param{{Name: "pid", Type: TypePID, In: InPath, Default: "x"}} }), "path parameter cannot have a default"},
		{"required with default", withParam(Param{Name: "x", Type: TypeInt, In: InQuery, Required: true, Default: 1}), "required parameter cannot have a default"},
		{"default wrong type", withParam(Param{Name: "x", Type: TypeInt, In: InQuery, Default: "10"}), "must have Go type int"},
		{"default int64", withParam(Param{Name: "x", Type: TypeInt, In: InQuery, Default: int64(10)}), "must have Go type int"},
		{"default duration as int", withParam(Param{Name: "x", Type: TypeDuration, In: InQuery, Default: 5}), "must have Go type time.Duration"},
		{"default out of range", withParam(Param{Name: "x", Type: TypeInt, In: InQuery, Default: 5000, Max: new(1000.0)}), "must be at most 1000"},
		{"default not in enum", withParam(Param{Name: "x", Type: TypeEnum, In: InQuery, Enum: []string{"a"}, Default: "b"}), "must be one of a"},
		{"default against pattern", withParam(Param{Name: "x", Type: TypeString, In: InQuery, Pattern: "^a", Default: "b"}), "must match"},
		{"default list type", withParam(Param{Name: "x", Type: TypeList, Items: TypeInt, In: InQuery, Default: []string{"1"}}), "must have Go type []int"},
		{"default bad node", withParam(Param{Name: "x", Type: TypeNode, In: InQuery, Default: "a b"}), "character"},
		{"default zero pid", withParam(Param{Name: "x", Type: TypePID, In: InQuery, Default: process.PID{}}), "must have Go type process.PID"},
		{"default duration bound", withParam(Param{Name: "x", Type: TypeDuration, In: InQuery, MaxDuration: time.Second, Default: time.Minute}), "must be at most 1s"},
		{"enum without values", withParam(Param{Name: "x", Type: TypeEnum, In: InQuery}), "needs its values"},
		{"enum repeated", withParam(Param{Name: "x", Type: TypeEnum, In: InQuery, Enum: []string{"a", "a"}}), "repeated"},
		{"enum on int", withParam(Param{Name: "x", Type: TypeInt, In: InQuery, Enum: []string{"1"}}), "Enum is only for enums"},
		{"bad pattern", withParam(Param{Name: "x", Type: TypeString, In: InQuery, Pattern: "("}), "pattern"},
		{"pattern on int", withParam(Param{Name: "x", Type: TypeInt, In: InQuery, Pattern: "1"}), "Pattern is only for strings"},
		{"min on duration", withParam(Param{Name: "x", Type: TypeDuration, In: InQuery, Min: new(1.0)}), "MinDuration and MaxDuration, not Min and Max"},
		{"min on bool", withParam(Param{Name: "x", Type: TypeBool, In: InQuery, Min: new(1.0)}), "do not apply"},
		{"min above max", withParam(Param{Name: "x", Type: TypeInt, In: InQuery, Min: new(2.0), Max: new(1.0)}), "above Max"},
		{"fractional int bound", withParam(Param{Name: "x", Type: TypeInt, In: InQuery, Max: new(1.5)}), "whole numbers"},
		{"min duration on int", withParam(Param{Name: "x", Type: TypeInt, In: InQuery, MinDuration: time.Second}), "only for durations"},
		{"duration bounds crossed", withParam(Param{Name: "x", Type: TypeDuration, In: InQuery, MinDuration: time.Minute, MaxDuration: time.Second}), "above MaxDuration"},
		{"items on int", withParam(Param{Name: "x", Type: TypeInt, In: InQuery, Items: TypeInt}), "Items is only for lists"},
		{"list of lists", withParam(Param{Name: "x", Type: TypeList, In: InQuery, Items: TypeList}), "list items cannot"},
		{"catalogue route", with(func(o *Operation) { o.Path, o.Params = CataloguePath, nil }), "route"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := NewRegistry().Register(c.op)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Register: %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestRegisterDuplicatesAndConflicts(t *testing.T) {
	reg := NewRegistry()
	reg.MustRegister(okOp("a.one", "GET", "/api/v1/a/{id}", Param{Name: "id", Type: TypeString, In: InPath}))
	if err := reg.Register(okOp("a.one", "GET", "/api/v1/other")); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("duplicate name: %v", err)
	}
	if err := reg.Register(okOp("a.two", "GET", "/api/v1/a/{key}", Param{Name: "key", Type: TypeString, In: InPath})); err == nil ||
		!strings.Contains(err.Error(), "route GET /api/v1/a/{key}") {
		t.Fatalf("conflicting route: %v", err)
	}
	// A failed registration leaves nothing behind: the name is still free.
	if err := reg.Register(okOp("a.two", "POST", "/api/v1/a/{id}", Param{Name: "id", Type: TypeString, In: InPath})); err != nil {
		t.Fatalf("same path, other method: %v", err)
	}
	if err := reg.Register(okOp("a.three", "GET", "/api/v1/a/special")); err != nil {
		t.Fatalf("a literal path more specific than a wildcard: %v", err)
	}
	func() {
		defer func() {
			if v := recover(); v == nil || !strings.Contains(v.(error).Error(), "already registered") {
				t.Fatalf("MustRegister should panic with the error, got %v", v)
			}
		}()
		reg.MustRegister(okOp("a.one", "GET", "/api/v1/x"))
	}()
	var got []string
	for _, op := range reg.Operations() {
		got = append(got, op.Name)
	}
	if strings.Join(got, " ") != "a.one a.three a.two" {
		t.Fatalf("Operations = %v, want sorted", got)
	}
	if op, ok := reg.Lookup("a.two"); !ok || op.Method != "POST" {
		t.Fatalf("Lookup: %v %v", op, ok)
	}
}

func TestRegisterFillsImpliedValues(t *testing.T) {
	reg := NewRegistry()
	reg.MustRegister(
		okOp("r.read", "GET", "/api/v1/r/{id}", Param{Name: "id", Type: TypeString, In: InPath}),
		okOp("r.write", "POST", "/api/v1/r"),
		Operation{Name: "r.kill", Category: "process", Summary: "kill", Method: "DELETE", Path: "/api/v1/r/{id}",
			Params: []Param{{Name: "id", Type: TypeString, In: InPath}}, Dangerous: true, Run: echo, Response: map[string]any{}},
	)
	read, _ := reg.Lookup("r.read")
	if read.Role != RoleViewer || !read.Idempotent || read.Timeout != DefaultTimeout || !read.Params[0].Required {
		t.Fatalf("read: role %s idempotent %v timeout %s required %v", read.Role, read.Idempotent, read.Timeout, read.Params[0].Required)
	}
	write, _ := reg.Lookup("r.write")
	if write.Role != RoleOperator || write.Idempotent {
		t.Fatalf("write: role %s idempotent %v", write.Role, write.Idempotent)
	}
	kill, _ := reg.Lookup("r.kill")
	if kill.Role != RoleOperator {
		t.Fatalf("dangerous: role %s", kill.Role)
	}
	if CLIVerb("cluster.supervision_trees") != "cluster-supervision-trees" {
		t.Fatal(CLIVerb("cluster.supervision_trees"))
	}
}
