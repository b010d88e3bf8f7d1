package control_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/arsenal-go/arsenal/codec"
	"github.com/arsenal-go/arsenal/control"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
)

type greeting struct{ Text string }

// The node's side of the protocol over stdio: "ready" first with the
// version, then replies by id; version, command and value errors name
// what is wrong; EOF asks the node to stop.
func TestServerStdio(t *testing.T) {
	codec.MustRegister[greeting]("control.test.greeting")
	n, err := node.Start(context.Background(), node.Config{Name: "c@127.0.0.1", Cluster: "control-test",
		Secret: []byte("0123456789abcdef0123"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	}()
	srv := control.NewServer(control.Target{Node: n, App: "test", Kinds: []string{"k"}})
	defer srv.Close()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	go srv.ServeStdio(inR, outW)
	lines := bufio.NewScanner(outR)
	read := func() control.Line {
		t.Helper()
		if !lines.Scan() {
			t.Fatal("the node closed its output")
		}
		var l control.Line
		if err := json.Unmarshal(lines.Bytes(), &l); err != nil {
			t.Fatalf("not a line: %q", lines.Text())
		}
		return l
	}
	first := read()
	var ready control.Ready
	if first.Event != "ready" || json.Unmarshal(first.Data, &ready) != nil || ready.Protocol != control.Version || ready.App != "test" || ready.Name != n.Name() {
		t.Fatalf("first line %+v, want ready with protocol %d", first, control.Version)
	}
	call := func(id uint64, cmd string, args any) control.Line {
		t.Helper()
		raw, _ := json.Marshal(args)
		b, _ := json.Marshal(control.Command{ID: id, Cmd: cmd, Args: raw})
		if _, err := inW.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
		for {
			if l := read(); l.ID == id {
				return l
			}
		}
	}
	if l := call(1, "hello", control.Hello{Protocol: control.Version + 1}); l.OK || !strings.Contains(l.Error, "speaks version 2, this side speaks version 1") {
		t.Errorf("hello with another version: %+v", l)
	}
	if l := call(2, "hello", control.Hello{Protocol: control.Version}); !l.OK {
		t.Errorf("hello: %+v", l)
	}
	if l := call(3, "frobnicate", nil); l.OK || !strings.Contains(l.Error, `unknown command "frobnicate" (control protocol version 1)`) {
		t.Errorf("unknown command: %+v", l)
	}
	if l := call(4, "spawn", control.Spawn{Kind: "nope"}); l.OK || !strings.Contains(l.Error, `unknown kind "nope"`) || !strings.Contains(l.Error, "[k]") {
		t.Errorf("unknown kind: %+v", l)
	}
	l := call(5, "spawn", control.Spawn{Kind: "echo"})
	var pid string
	if !l.OK || json.Unmarshal(l.Result, &pid) != nil {
		t.Fatalf("spawn echo: %+v", l)
	}
	if _, err := process.ParsePID(pid); err != nil {
		t.Fatalf("spawn answered %q: %v", pid, err)
	}
	v, _ := codec.Append(nil, greeting{Text: "hi"})
	l = call(6, "call", control.Message{To: pid, Value: v})
	var got control.Value
	if !l.OK || json.Unmarshal(l.Result, &got) != nil {
		t.Fatalf("typed call: %+v", l)
	}
	if r, _, err := codec.Decode(got.Value); err != nil || r != (greeting{Text: "hi"}) {
		t.Fatalf("typed call answered %v, %v", r, err)
	}
	if l := call(7, "send", control.Message{To: pid, Value: []byte{0xff, 1, 2}}); l.OK || !strings.Contains(l.Error, "value:") {
		t.Errorf("a bad value was sent: %+v", l)
	}
	if l := call(8, "fault", control.Fault{Action: "block", Peer: "x"}); l.OK || !strings.Contains(l.Error, "without fault hooks") {
		t.Errorf("fault without hooks: %+v", l)
	}
	inW.Close()
	select {
	case why := <-srv.Done():
		if why != "control channel closed" {
			t.Errorf("stop requested for %q", why)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("EOF did not ask the node to stop")
	}
}
