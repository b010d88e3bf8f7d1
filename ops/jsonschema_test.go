package ops

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/process"
)

type wireNode struct {
	Name        string            `json:"name" doc:"the node"`
	Incarnation uint64            `json:"incarnation,string"`
	Spawned     uint64            `json:"spawned" arsenal:"count"`
	Status      string            `json:"status" enum:"alive,dead"`
	Since       time.Time         `json:"since"`
	Leader      process.PID       `json:"leader,omitzero"`
	Children    []wireNode        `json:"children"`
	Tags        map[string]string `json:"tags,omitempty"`
	Next        *wireNode         `json:"next,omitempty"`
	RTTMS       float64           `json:"rtt_ms"`
	Anything    any               `json:"anything"`
}

func TestAnswerSchema(t *testing.T) {
	g := newSchemaGen()
	s, err := g.schema(reflect.TypeFor[wireNode]())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, ref("schemas", "wireNode")) {
		t.Fatalf("named struct is not a $ref: %v", s)
	}
	def := g.defs["wireNode"].(obj)
	props := def["properties"].(obj)
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"incarnation", props["incarnation"], obj{"type": "string", "pattern": `^[0-9]+$`}},
		{"spawned", props["spawned"], obj{"type": "integer", "minimum": 0}},
		{"status", props["status"], obj{"type": "string", "enum": []string{"alive", "dead"}}},
		{"since", props["since"], obj{"type": "string", "format": "date-time"}},
		{"children", props["children"], obj{"type": "array", "items": ref("schemas", "wireNode")}},
		{"next", props["next"], ref("schemas", "wireNode")},
		{"tags", props["tags"], obj{"type": "object", "additionalProperties": obj{"type": "string"}}},
		{"name", props["name"], obj{"type": "string", "description": "the node"}},
		{"anything", props["anything"], obj{}},
		{"additionalProperties", def["additionalProperties"], false},
		{"required", def["required"], []string{"name", "incarnation", "spawned", "status", "since", "children", "rtt_ms", "anything"}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestAnswerSchemaRules(t *testing.T) {
	type bigID struct {
		ID uint64 `json:"id"`
	}
	type dur struct {
		Wait time.Duration `json:"wait"`
	}
	type nullable struct {
		P *int `json:"p"`
	}
	type intKeys struct {
		M map[int]string `json:"m"`
	}
	cases := []struct {
		v    any
		want string
	}{
		{bigID{}, "is 64-bit"},
		{dur{}, "time.Duration would travel as nanoseconds"},
		{nullable{}, "pointer without omitempty"},
		{intKeys{}, "map keys must be strings"},
		{make(chan int), "cannot travel as JSON"},
	}
	for _, c := range cases {
		reg := NewRegistry()
		err := reg.Register(Operation{Name: "t.x", Category: "system", Summary: "x", Method: "GET", Path: "/api/v1/x",
			Run: func(context.Context, *Request) (*Result, error) { return nil, nil }, Response: c.v})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%T: got %v, want an error with %q", c.v, err, c.want)
		}
	}
	reg := NewRegistry()
	if err := reg.Register(Operation{Name: "t.x", Category: "system", Summary: "x", Method: "GET", Path: "/api/v1/x",
		Run: func(context.Context, *Request) (*Result, error) { return nil, nil }}); err == nil || !strings.Contains(err.Error(), "Response is not set") {
		t.Errorf("no Response: %v", err)
	}
}
