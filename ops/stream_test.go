package ops

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// feed is a Stream that sends one event per value on its channel and
// reports when it ended.
type feed struct {
	events chan string
	ended  chan error
}

func newFeed() *feed { return &feed{events: make(chan string), ended: make(chan error, 1)} }

func (f *feed) op() Operation {
	return Operation{Name: "t.events", Category: "cluster", Summary: "events", Method: "GET",
		Path:   "/api/v1/events",
		Params: []Param{{Name: "kinds", Type: TypeList, In: InQuery}},
		Events: map[string]any{"tick": map[string]any{}},
		Stream: func(ctx context.Context, req *Request, w StreamWriter) (err error) {
			defer func() { f.ended <- err }()
			for {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case ev, ok := <-f.events:
					if !ok {
						return nil
					}
					if ev == "fail" {
						return Unavailable("the feed broke")
					}
					if err := w.Send("node_up", map[string]any{"node": ev, "kinds": req.Params.Strings("kinds")}); err != nil {
						return err
					}
				}
			}
		}}
}

func readLine(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(line, "\n")
}

func TestStreamDeliversEventsAndStopsOnDisconnect(t *testing.T) {
	f := newFeed()
	reg := NewRegistry()
	reg.MustRegister(f.op())
	srv := serve(t, reg, ServerConfig{OpenReads: true, Heartbeat: 20 * time.Millisecond})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events?kinds=up,down", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Headers come with the first event or heartbeat.
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	br := bufio.NewReader(resp.Body)
	if l := readLine(t, br); l != ": heartbeat" {
		t.Fatalf("first line %q, want a heartbeat", l)
	}
	f.events <- "a@h"
	var lines []string
	for len(lines) < 2 {
		l := readLine(t, br)
		if l == "" || strings.HasPrefix(l, ":") {
			continue
		}
		lines = append(lines, l)
	}
	if lines[0] != "event: node_up" || lines[1] != `data: {"kinds":["up","down"],"node":"a@h"}` {
		t.Fatalf("event lines %q", lines)
	}

	// The client goes: the Stream's context ends and the handler returns.
	cancel()
	select {
	case err := <-f.ended:
		if err == nil {
			t.Fatal("the Stream ended without an error after the client left")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the Stream did not stop when the client left")
	}
}

func TestStreamErrors(t *testing.T) {
	f := newFeed()
	reg := NewRegistry()
	reg.MustRegister(f.op())
	srv := serve(t, reg, ServerConfig{Tokens: testTokens, Heartbeat: time.Hour})

	// Refused before streaming: plain JSON errors.
	if a := do(t, "GET", srv.URL+"/api/v1/events", "", ""); a.status != 401 {
		t.Fatalf("no token: %d", a.status)
	}
	if a := do(t, "GET", srv.URL+"/api/v1/events?x=1", viewerToken, ""); a.status != 422 {
		t.Fatalf("bad param: %d", a.status)
	}
	// Failing before the first event: still a JSON error with its status.
	go func() { f.events <- "fail" }()
	a := do(t, "GET", srv.URL+"/api/v1/events", viewerToken, "")
	if a.status != 503 || a.errMessage() != "the feed broke" {
		t.Fatalf("early failure: %d %s", a.status, a.raw)
	}
	<-f.ended

	// Failing after an event: an error event, then the end of the stream.
	go func() {
		f.events <- "a@h"
		f.events <- "fail"
	}()
	var events []Event
	c := &Client{BaseURL: srv.URL, Token: viewerToken}
	err := c.Stream(context.Background(), "t.events", nil, func(ev Event) error {
		events = append(events, ev)
		return nil
	})
	<-f.ended
	ae, ok := err.(*APIError)
	if !ok || ae.Status != 503 || ae.Code != "unavailable" || len(events) != 1 || events[0].Name != "node_up" {
		t.Fatalf("late failure: %v (%T), events %v", err, err, events)
	}

	// The end of the stream is a clean end for the client.
	go func() {
		f.events <- "b@h"
		close(f.events)
	}()
	events = nil
	err = c.Stream(context.Background(), "t-events", nil, func(ev Event) error {
		events = append(events, ev)
		return nil
	})
	<-f.ended
	if err != nil || len(events) != 1 || string(events[0].Data) != `{"kinds":null,"node":"b@h"}` {
		t.Fatalf("clean end: %v %v", err, events)
	}
}

func TestStreamWriterRejectsBadEventNames(t *testing.T) {
	sw := &sseWriter{ctx: context.Background()}
	if err := sw.Send("a\nb", 1); err == nil {
		t.Fatal("an event name with a line break was accepted")
	}
	if err := sw.Send("x", make(chan int)); err == nil {
		t.Fatal("unencodable data was accepted")
	}
}

func TestStreamPanic(t *testing.T) {
	var logs logBuffer
	reg := NewRegistry()
	reg.MustRegister(Operation{Name: "t.panics", Category: "cluster", Summary: "panics", Method: "GET",
		Path:   "/api/v1/panics",
		Stream: func(context.Context, *Request, StreamWriter) error { panic("stream boom") }, Events: map[string]any{"x": ""}})
	srv := serve(t, reg, ServerConfig{OpenReads: true, Logger: jsonLogger(&logs)})
	a := do(t, "GET", srv.URL+"/api/v1/panics", "", "")
	if a.status != 500 || !strings.Contains(a.errMessage(), "t.panics panicked: stream boom") {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	if !strings.Contains(logs.String(), "operation panicked") {
		t.Fatal("the panic was not logged")
	}
}
