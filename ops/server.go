package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// ServerConfig configures the HTTP handler of a registry.
type ServerConfig struct {
	// Node is this node's name, put in every response's meta.
	Node string
	// Tokens maps bearer tokens to their principals (see LoadTokens).
	// Tokens are never logged.
	Tokens map[string]Principal
	// OpenReads lets requests without a token run read operations (role
	// viewer, not dangerous) and read the catalogue and the docs. A request
	// that carries a token is still checked. See DefaultOpenReads.
	OpenReads bool
	// MaxBodyBytes bounds request bodies; zero means 1 MiB. A larger body
	// is refused with 413.
	MaxBodyBytes int64
	// AuditOutput, when set, gets the audit log as JSON lines, one per
	// call of a mutating operation (not idempotent, or dangerous) or of a
	// sensitive read, refused calls included: who (principal, role,
	// remote address), what (operation, method, path, parameters), the
	// target (the path parameters: a PID, a node, a trace or child id),
	// the result (status, code) and the duration. It is written whatever
	// the level of Logger, so an audit trail never depends on how chatty
	// the node is. A file opened with O_APPEND is a good AuditOutput.
	AuditOutput io.Writer
	// Audit is the logger of the audit lines when AuditOutput is nil. Nil
	// means Logger (whose level then applies: audit lines are INFO).
	Audit *slog.Logger
	// AuditPayloads writes payload parameters (a message sent to a
	// process, a child's arguments) to the audit log. By default they are
	// redacted to their size: the log says what was done to what, it does
	// not keep what a message said.
	AuditPayloads bool
	// AllowedHosts are host names (without port) a request's Host header
	// may carry besides IP literals and "localhost": the node's DNS names.
	// A request without a token whose Host is none of them is refused with
	// 403, which stops DNS rebinding (a web page whose own domain resolves
	// to this node's address would otherwise read the open reads through
	// the developer's browser). "*" allows any host, for a node behind a
	// proxy that checks hosts itself.
	AllowedHosts []string
	// Metrics, when set, gets the Prometheus metrics of every operation:
	// arsenal_ops_calls_total{operation,status},
	// arsenal_ops_errors_total{operation,code},
	// arsenal_ops_call_duration_seconds{operation} (a histogram) and
	// arsenal_ops_streams_open{operation}. Handler panics if they cannot
	// be registered (a second handler on the same registry). Nil records
	// none.
	Metrics prometheus.Registerer
	// Logger gets internal errors (500s, with their cause) and panics
	// (with their stack). Nil discards them.
	Logger *slog.Logger
	// Heartbeat is the interval of the comments that keep Server-Sent
	// Event streams alive through proxies; zero means 15 s.
	Heartbeat time.Duration
}

// DefaultMaxBodyBytes is the body limit when ServerConfig.MaxBodyBytes is
// zero.
const DefaultMaxBodyBytes = 1 << 20

// runGrace is how long a Run that outlived its deadline may still take
// to return its own answer before the server answers 504 without it. A
// Run that watches its context returns well within it.
const runGrace = 100 * time.Millisecond

type server struct {
	cfg       ServerConfig
	tokens    tokenTable
	log       *slog.Logger
	audit     *slog.Logger
	heartbeat time.Duration
	paths     *http.ServeMux      // method-less patterns, to tell 405 from 404
	allow     map[string][]string // method-less pattern → its methods
	catalogue []CatalogueEntry
	docs      []byte
	shutdowns sync.Map // *http.Server → context.Context ended by its Shutdown
	hosts     map[string]bool
	metrics   *metrics
}

// Handler returns the HTTP handler of every operation registered so far,
// plus GET /api/v1/arsenal/operations (the catalogue) and GET
// /api/v1/arsenal/docs (the OpenAPI document). Operations registered later
// are not served by it.
func (r *Registry) Handler(cfg ServerConfig) http.Handler {
	s := &server{
		cfg:       cfg,
		tokens:    newTokenTable(cfg.Tokens),
		log:       cfg.Logger,
		audit:     cfg.Audit,
		heartbeat: cfg.Heartbeat,
		paths:     http.NewServeMux(),
		allow:     map[string][]string{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.AuditOutput != nil:
		s.audit = slog.New(slog.NewJSONHandler(cfg.AuditOutput, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", cfg.Node)
	case s.audit == nil:
		s.audit = s.log
	}
	m, err := newMetrics(cfg.Metrics, cfg.Node)
	if err != nil {
		panic("ops: register the metrics: " + err.Error())
	}
	s.metrics = m
	s.hosts = map[string]bool{"localhost": true}
	for _, h := range cfg.AllowedHosts {
		s.hosts[strings.ToLower(strings.TrimSuffix(h, "."))] = true
	}
	if s.cfg.MaxBodyBytes <= 0 {
		s.cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if s.heartbeat <= 0 {
		s.heartbeat = 15 * time.Second
	}
	entries := r.entries()
	mux := http.NewServeMux()
	for _, e := range entries {
		mux.Handle(e.op.Method+" "+e.op.Path, s.serveOp(e))
		s.addPath(e.op.Method, e.op.Path)
	}
	g := newSchemaGen()
	doc, err := json.MarshalIndent(openAPIWith(g, entries, cfg.OpenReads), "", "  ")
	if err != nil {
		panic("ops: encode the OpenAPI document: " + err.Error()) // built from plain values: cannot fail
	}
	s.docs = doc
	s.catalogue = catalogue(entries)
	for i, e := range entries {
		s.catalogue[i].Response = g.names[e.resp] // the answer's schema, as the document names it
	}
	mux.HandleFunc("GET "+CataloguePath, s.serveCatalogue)
	mux.HandleFunc("GET "+DocsPath, s.serveDocs)
	s.addPath(http.MethodGet, CataloguePath)
	s.addPath(http.MethodGet, DocsPath)
	mux.HandleFunc("/", s.serveUnknown)
	return mux
}

func (s *server) addPath(method, path string) {
	if _, ok := s.allow[path]; !ok {
		s.paths.Handle(path, http.NotFoundHandler())
	}
	s.allow[path] = append(s.allow[path], method)
	if method == http.MethodGet {
		s.allow[path] = append(s.allow[path], http.MethodHead)
	}
}

// serveUnknown answers every request no route took: 405 when the path
// belongs to an operation with another method, else 404.
func (s *server) serveUnknown(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.paths.Handler(r); pattern != "" {
		allow := strings.Join(s.allow[pattern], ", ")
		w.Header().Set("Allow", allow)
		s.writeError(w, NewError(http.StatusMethodNotAllowed, "method_not_allowed",
			fmt.Sprintf("%s does not take %s; it takes %s", r.URL.Path, r.Method, allow)), nil)
		return
	}
	s.writeError(w, NewError(http.StatusNotFound, "unknown_operation",
		fmt.Sprintf("no operation at %s %s; GET %s lists them", r.Method, r.URL.Path, CataloguePath)), nil)
}

// call is the state of one operation call, for the response and the
// audit line.
type call struct {
	e         *entry
	start     time.Time
	principal Principal
	params    Params
	status    int
	code      string
}

func (s *server) serveOp(e *entry) http.HandlerFunc {
	open := s.cfg.OpenReads && e.op.Role == RoleViewer && !e.op.Dangerous && !e.op.Sensitive
	return func(w http.ResponseWriter, r *http.Request) {
		c := &call{e: e, start: time.Now()}
		if e.audit {
			defer s.auditCall(r, c)
		}
		if s.metrics != nil {
			defer func() {
				status := c.status
				if status == 0 {
					status = http.StatusOK
				}
				s.metrics.observe(e.op.Name, status, c.code, time.Since(c.start))
			}()
		}
		if herr := s.checkHost(r); herr != nil {
			s.fail(w, c, herr)
			return
		}
		p, aerr := s.tokens.authenticate(r, e.op.Role, open)
		c.principal = p
		if aerr != nil {
			if aerr.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="arsenal"`)
			}
			s.fail(w, c, aerr)
			return
		}
		body, berr := s.readBody(w, r)
		if berr != nil {
			s.fail(w, c, berr)
			return
		}
		params, verr := e.decode(r, body)
		if verr != nil {
			s.fail(w, c, verr)
			return
		}
		c.params = params
		req := &Request{Op: e.op, Params: params, Principal: p, HTTP: r}
		if e.op.Stream != nil {
			s.stream(w, r, c, req)
			return
		}
		res, err := s.run(r.Context(), e, req)
		if err != nil {
			s.fail(w, c, s.classify(e, err))
			return
		}
		if res == nil || !e.answers(res.Data) {
			// Data of another type than the documented Response: a bug in
			// the operation, which must not reach a client that trusts
			// the document.
			var got any
			if res != nil {
				got = res.Data
			}
			s.log.Error("operation answered data of an undocumented type", "operation", e.op.Name, "type", fmt.Sprintf("%T", got), "documented", e.resp.String())
			s.fail(w, c, NewError(http.StatusInternalServerError, "internal",
				fmt.Sprintf("%s answered %T, not its documented %s", e.op.Name, got, e.resp)))
			return
		}
		c.status = http.StatusOK
		meta := s.meta(c)
		for k, v := range res.Meta {
			if _, core := meta[k]; !core {
				meta[k] = v
			}
		}
		if err := s.writeJSON(w, http.StatusOK, envelope{Data: res.Data, Meta: meta}); err != nil {
			// The data could not be encoded (a channel, a NaN…): a bug in
			// the operation, reported as such rather than half-written.
			c.status, c.code = http.StatusInternalServerError, "internal"
			s.log.Error("operation result cannot be encoded", "operation", e.op.Name, "error", err)
			s.writeError(w, NewError(http.StatusInternalServerError, "internal",
				fmt.Sprintf("the result of %s cannot be encoded as JSON: %v", e.op.Name, err)), s.meta(c))
		}
	}
}

// answers reports whether data has the operation's documented type (or is
// a non-nil pointer to it).
func (e *entry) answers(data any) bool {
	t := reflect.TypeOf(data)
	if t == e.resp {
		return true
	}
	return t != nil && t.Kind() == reflect.Pointer && t.Elem() == e.resp && !reflect.ValueOf(data).IsNil()
}

// classify maps a Run error to its Error and logs the ones that are bugs.
func (s *server) classify(e *entry, err error) *Error {
	ae := ToError(err)
	if _, explicit := errors.AsType[*Error](err); !explicit && ae.Status == http.StatusInternalServerError {
		// An error nobody classified is a bug; an *Error was chosen by the
		// operation (or is a panic, already logged with its stack).
		s.log.Error("operation failed", "operation", e.op.Name, "error", err)
	}
	return ae
}

func (s *server) fail(w http.ResponseWriter, c *call, e *Error) {
	c.status, c.code = e.Status, e.Code
	s.writeError(w, e, s.meta(c))
}

func (s *server) meta(c *call) map[string]any {
	return map[string]any{
		"operation":   c.e.op.Name,
		"node":        s.cfg.Node,
		"duration_ms": ms(time.Since(c.start)),
	}
}

// ms is a duration in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func (s *server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *Error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	tooBig := NewError(http.StatusRequestEntityTooLarge, "body_too_large",
		fmt.Sprintf("the request body is larger than %d bytes", s.cfg.MaxBodyBytes))
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, tooBig
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooBig
		}
		return nil, BadRequest("reading the request body: " + err.Error())
	}
	return body, nil
}

type outcome struct {
	res *Result
	err error
}

// run calls Run with the operation's timeout. Run runs in a goroutine of
// its own so that the answer is bounded by the timeout even if Run does
// not watch its context; a panic in it becomes a 500 and is logged with
// its stack, and the server lives on.
func (s *server) run(parent context.Context, e *entry, req *Request) (*Result, error) {
	ctx, cancel := context.WithTimeout(parent, e.op.Timeout)
	defer cancel()
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("operation panicked", "operation", e.op.Name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				done <- outcome{err: NewError(http.StatusInternalServerError, "internal", fmt.Sprintf("%s panicked: %v", e.op.Name, v))}
			}
		}()
		res, err := e.op.Run(ctx, req)
		done <- outcome{res, err}
	}()
	// A bare "context deadline exceeded" from the operation's own deadline
	// is reworded, so the caller learns which operation ran out of which
	// time.
	expired := func(err error) error {
		if errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded) && parent.Err() == nil {
			return Timeout(fmt.Sprintf("%s did not finish within its timeout of %s", e.op.Name, e.op.Timeout))
		}
		return err
	}
	select {
	case o := <-done:
		return o.res, expired(o.err)
	case <-ctx.Done():
	}
	// The deadline passed or the client left. A Run that watches ctx
	// returns now, possibly with a result it finished just in time,
	// which is the truth and worth reporting.
	t := time.NewTimer(runGrace)
	defer t.Stop()
	select {
	case o := <-done:
		return o.res, expired(o.err)
	case <-t.C:
	}
	s.log.Warn("operation did not return after its context ended; it is still running", "operation", e.op.Name)
	if parent.Err() != nil {
		return nil, parent.Err()
	}
	return nil, expired(context.DeadlineExceeded)
}

// checkHost refuses a request without a token whose Host header names
// none of the hosts this node answers to (see ServerConfig.AllowedHosts).
// A request with a token is not checked: a page in a browser that a
// rebinding attack uses has no token.
func (s *server) checkHost(r *http.Request) *Error {
	if s.hosts["*"] || r.Header.Get("Authorization") != "" {
		return nil
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" || net.ParseIP(host) != nil || s.hosts[host] {
		return nil
	}
	return NewError(http.StatusForbidden, "host_not_allowed",
		fmt.Sprintf("Host %q is not one of this node's names; without a token only an IP address, localhost or a configured name (ServerConfig.AllowedHosts) is answered, against DNS rebinding", r.Host))
}

// auditCall writes the audit line of a mutating call.
func (s *server) auditCall(r *http.Request, c *call) {
	who := c.principal.Name
	if who == "" {
		who = "(unauthenticated)"
	}
	attrs := []slog.Attr{
		slog.String("principal", who),
		slog.String("role", string(c.principal.Role)),
		slog.String("operation", c.e.op.Name),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
	}
	var target []string
	for _, p := range c.e.params {
		if p.In == InPath {
			target = append(target, r.PathValue(p.Name))
		}
	}
	if len(target) > 0 {
		attrs = append(attrs, slog.String("target", strings.Join(target, " ")))
	}
	if len(c.params) > 0 {
		ps := make([]any, 0, len(c.params))
		for _, p := range c.e.params {
			if v, ok := c.params[p.Name]; ok {
				if p.isPayload() && !s.cfg.AuditPayloads {
					ps = append(ps, slog.String(p.Name, redacted(v)))
					continue
				}
				ps = append(ps, slog.String(p.Name, auditValue(v)))
			}
		}
		attrs = append(attrs, slog.Group("params", ps...))
	}
	attrs = append(attrs,
		slog.Int("status", c.status),
		slog.String("code", c.code),
		slog.Float64("duration_ms", ms(time.Since(c.start))),
		slog.String("remote", r.RemoteAddr),
	)
	s.audit.LogAttrs(context.Background(), slog.LevelInfo, "operation call", attrs...)
}

// redacted stands for a payload in the audit log: its size only.
func redacted(v any) string {
	var n int
	switch x := v.(type) {
	case string:
		n = len(x)
	default:
		b, _ := json.Marshal(x)
		n = len(b)
	}
	return fmt.Sprintf("[redacted: %d bytes]", n)
}

// auditValue renders a parameter for the audit log, shortened: the log
// says what was targeted, it does not archive payloads.
func auditValue(v any) string {
	var s string
	switch x := v.(type) {
	case map[string]any:
		b, _ := json.Marshal(x)
		s = string(b)
	case fmt.Stringer:
		s = x.String()
	default:
		s = fmt.Sprint(v)
	}
	if len(s) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

type envelope struct {
	Data any            `json:"data"`
	Meta map[string]any `json:"meta"`
}

type errorEnvelope struct {
	Error *Error         `json:"error"`
	Meta  map[string]any `json:"meta,omitempty"`
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeJSON encodes v completely before writing anything, so an encoding
// error can still become a proper error response.
func (s *server) writeJSON(w http.ResponseWriter, status int, v any) error {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 64<<10 {
			bufPool.Put(buf)
		}
	}()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(buf.Bytes()) // a failed write means the client left; nothing to do
	return nil
}

func (s *server) writeError(w http.ResponseWriter, e *Error, meta map[string]any) {
	if err := s.writeJSON(w, e.Status, errorEnvelope{Error: e, Meta: meta}); err != nil {
		// Only Details can fail to encode; drop them rather than the error.
		s.log.Error("error details cannot be encoded", "code", e.Code, "error", err)
		plain := *e
		plain.Details = nil
		s.writeJSON(w, e.Status, errorEnvelope{Error: &plain, Meta: meta})
	}
}

func (s *server) serveCatalogue(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeRead(w, r) {
		return
	}
	start := time.Now()
	s.writeJSON(w, http.StatusOK, envelope{Data: s.catalogue, Meta: map[string]any{
		"operation": "arsenal.operations", "node": s.cfg.Node, "duration_ms": ms(time.Since(start)),
	}})
}

func (s *server) serveDocs(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeRead(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(s.docs)
}

// authorizeRead guards the catalogue and the docs like a read operation.
func (s *server) authorizeRead(w http.ResponseWriter, r *http.Request) bool {
	if err := s.checkHost(r); err != nil {
		s.writeError(w, err, nil)
		return false
	}
	_, err := s.tokens.authenticate(r, RoleViewer, s.cfg.OpenReads)
	if err != nil {
		if err.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="arsenal"`)
		}
		s.writeError(w, err, nil)
		return false
	}
	return true
}
