package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// sseWriter writes Server-Sent Events. The heartbeat goroutine and the
// Stream share it, hence the mutex. Headers go out with the first event
// or heartbeat, so a Stream that fails before sending anything still gets
// a normal JSON error response.
type sseWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      *http.ResponseController
	ctx     context.Context
	started bool
	err     error // the first write error: the client is gone
}

func (s *sseWriter) startLocked() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // tell nginx not to buffer the stream
	s.w.WriteHeader(http.StatusOK)
}

// writeLocked writes one chunk and flushes it. The first failure sticks.
func (s *sseWriter) writeLocked(chunk []byte) error {
	if s.err != nil {
		return s.err
	}
	if err := s.ctx.Err(); err != nil {
		return err
	}
	s.startLocked()
	if _, err := s.w.Write(chunk); err != nil {
		s.err = err
		return err
	}
	if err := s.rc.Flush(); err != nil {
		s.err = err
		return err
	}
	return nil
}

func (s *sseWriter) Send(event string, data any) error { return s.SendID("", event, data) }

func (s *sseWriter) SendID(id, event string, data any) error {
	if strings.ContainsAny(event, "\r\n") {
		return fmt.Errorf("ops: event name %q has a line break", event)
	}
	if strings.ContainsAny(id, "\r\n\x00") {
		return fmt.Errorf("ops: event id %q has a line break or NUL", id)
	}
	b, err := json.Marshal(data) // compact JSON has no raw line breaks: one data line
	if err != nil {
		return fmt.Errorf("ops: encode event %q: %w", event, err)
	}
	chunk := make([]byte, 0, len(id)+len(event)+len(b)+24)
	if id != "" {
		chunk = append(chunk, "id: "...)
		chunk = append(chunk, id...)
		chunk = append(chunk, '\n')
	}
	if event != "" {
		chunk = append(chunk, "event: "...)
		chunk = append(chunk, event...)
		chunk = append(chunk, '\n')
	}
	chunk = append(chunk, "data: "...)
	chunk = append(chunk, b...)
	chunk = append(chunk, "\n\n"...)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked(chunk)
}

func (s *sseWriter) comment(text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked([]byte(": " + text + "\n\n"))
}

func (s *sseWriter) hasStarted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// stream serves a Stream operation. The stream lasts until the Stream
// returns, the client goes (the request context ends, or a write fails)
// or the server's base context ends; the operation's Timeout does not
// apply.
func (s *server) stream(w http.ResponseWriter, r *http.Request, c *call, req *Request) {
	ctx, cancelCause := context.WithCancelCause(r.Context())
	cancel := func() { cancelCause(context.Canceled) }
	defer cancel()
	// The end of the server ends the stream at once, so that a feed never
	// holds up a graceful shutdown (http.Server.Shutdown waits for every
	// handler to return, and a feed would never return by itself).
	stopAfter := context.AfterFunc(s.shutdownContext(r), func() { cancelCause(errServerShutdown) })
	defer stopAfter()
	req.LastEventID = r.Header.Get("Last-Event-ID")
	s.metrics.stream(c.e.op.Name, 1)
	defer s.metrics.stream(c.e.op.Name, -1)
	rc := http.NewResponseController(w)
	// A server WriteTimeout would cut every stream; lift it for this one.
	// Not every ResponseWriter supports it, and then there is none to lift.
	_ = rc.SetWriteDeadline(time.Time{})
	sw := &sseWriter{w: w, rc: rc, ctx: ctx}

	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(s.heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if sw.comment("heartbeat") != nil {
					cancel() // the client is gone: end the Stream
					return
				}
			}
		}
	})

	err := s.runStream(ctx, c.e, req, sw)
	shutdown := errors.Is(context.Cause(ctx), errServerShutdown)
	cancel()
	wg.Wait()

	c.status = http.StatusOK
	if shutdown && r.Context().Err() == nil {
		// Say why the stream ends, so a client reconnects elsewhere (or
		// later) instead of taking it for a network error.
		sw.mu.Lock()
		sw.ctx = r.Context()
		sw.mu.Unlock()
		_ = sw.Send("shutdown", streamEnd{Reason: "server_shutdown"})
		return
	}
	if err == nil || r.Context().Err() != nil {
		return // done, or nobody is listening any more
	}
	ae := s.classify(c.e, err)
	if !sw.hasStarted() {
		s.fail(w, c, ae)
		return
	}
	// Too late for a status: say it in the stream. The request context
	// is still alive, so reopen the writer for this last event.
	c.status, c.code = ae.Status, ae.Code
	sw.mu.Lock()
	sw.ctx = r.Context()
	sw.mu.Unlock()
	_ = sw.Send("error", streamError{Error: ae, Status: ae.Status})
}

// streamEnd is the data of the "shutdown" event that ends every stream
// when the server shuts down.
type streamEnd struct {
	Reason string `json:"reason"`
}

var errServerShutdown = errors.New("ops: the HTTP server is shutting down")

// shutdownContext returns a context that ends when the http.Server that
// serves r starts its Shutdown. The first stream of each server registers
// the hook (http.Server.RegisterOnShutdown), so nobody has to wire the
// handler to the server. A request served without an http.Server (a test
// calling ServeHTTP) gets a context that never ends.
func (s *server) shutdownContext(r *http.Request) context.Context {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok || srv == nil {
		return context.Background()
	}
	if v, ok := s.shutdowns.Load(srv); ok {
		return v.(context.Context)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if v, loaded := s.shutdowns.LoadOrStore(srv, ctx); loaded {
		cancel()
		return v.(context.Context)
	}
	srv.RegisterOnShutdown(cancel)
	return ctx
}

// streamError is the data of the "error" event that ends a stream that
// failed after it started; it carries the status the headers could not.
type streamError struct {
	Error  *Error `json:"error"`
	Status int    `json:"status"`
}

func (s *server) runStream(ctx context.Context, e *entry, req *Request, w StreamWriter) (err error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("operation panicked", "operation", e.op.Name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = NewError(http.StatusInternalServerError, "internal", fmt.Sprintf("%s panicked: %v", e.op.Name, v))
		}
	}()
	return e.op.Stream(ctx, req, w)
}
