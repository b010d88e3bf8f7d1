package ops

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Client calls operations over HTTP, knowing nothing of them in advance:
// it reads the catalogue and puts each argument where the operation wants
// it. It is what the CLI uses for "arsenal ops call NAME key=value…".
type Client struct {
	// BaseURL is the node's address, "http://127.0.0.1:4000"; without a
	// scheme, http:// is assumed.
	BaseURL string
	// Token is sent as a bearer token when not empty.
	Token string
	// HTTP is the client to use; nil means http.DefaultClient. Bound calls
	// with their context: streams must not have a client timeout.
	HTTP *http.Client
}

// Response is a successful answer.
type Response struct {
	Status int
	Data   json.RawMessage
	Meta   map[string]any
}

// APIError is an error answered by the server.
type APIError struct {
	Status  int
	Code    string
	Message string
	Details any
}

// Error reads well in a terminal: the message, the status and code, and
// one line per offending field of a validation error.
func (e *APIError) Error() string {
	var b strings.Builder
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	fmt.Fprintf(&b, "%s (%d %s)", msg, e.Status, e.Code)
	for _, f := range e.Fields() {
		fmt.Fprintf(&b, "\n  %s (%s): %s", f.Field, f.In, f.Reason)
	}
	return b.String()
}

// Fields returns the offending fields of a validation error, or nil.
func (e *APIError) Fields() []FieldError {
	list, ok := e.Details.([]any)
	if !ok {
		return nil
	}
	var out []FieldError
	for _, d := range list {
		m, _ := d.(map[string]any)
		field, _ := m["field"].(string)
		in, _ := m["in"].(string)
		reason, _ := m["reason"].(string)
		if field == "" && reason == "" {
			continue
		}
		out = append(out, FieldError{Field: field, In: In(in), Reason: reason})
	}
	return out
}

func (c *Client) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) base() string {
	b := strings.TrimRight(c.BaseURL, "/")
	if !strings.Contains(b, "://") {
		b = "http://" + b
	}
	return b
}

// maxResponseBytes bounds what the client reads of one answer.
const maxResponseBytes = 64 << 20

func (c *Client) do(req *http.Request) (*Response, error) {
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", req.Method, req.URL.Redacted(), err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, apiError(resp.StatusCode, body)
	}
	var env struct {
		Data json.RawMessage `json:"data"`
		Meta map[string]any  `json:"meta"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%s %s: the answer is not an Arsenal envelope: %w", req.Method, req.URL.Redacted(), err)
	}
	return &Response{Status: resp.StatusCode, Data: env.Data, Meta: env.Meta}, nil
}

func apiError(status int, body []byte) *APIError {
	var env struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Details any    `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error != nil {
		return &APIError{Status: status, Code: env.Error.Code, Message: env.Error.Message, Details: env.Error.Details}
	}
	// Not ours (a proxy's error page…): show the start of it.
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	return &APIError{Status: status, Code: "http_" + strconv.Itoa(status), Message: text}
}

// Catalogue fetches the operations the server offers.
func (c *Client) Catalogue(ctx context.Context) ([]CatalogueEntry, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base()+CataloguePath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	var out []CatalogueEntry
	if err := json.Unmarshal(resp.Data, &out); err != nil {
		return nil, fmt.Errorf("the catalogue cannot be read: %w", err)
	}
	return out, nil
}

// FindOperation finds an operation in a catalogue by name or CLI verb.
func FindOperation(cat []CatalogueEntry, name string) (CatalogueEntry, error) {
	for _, e := range cat {
		if e.Name == name || e.CLI == name {
			return e, nil
		}
	}
	all := make([]string, len(cat))
	for i, e := range cat {
		all[i] = e.Name
	}
	slices.Sort(all)
	return CatalogueEntry{}, fmt.Errorf("no operation %q; the server has: %s", name, strings.Join(all, ", "))
}

// Call runs the operation called name (or its CLI verb) with args given
// as text, as on a command line. It reads the catalogue first; use Invoke
// with an entry to skip that.
func (c *Client) Call(ctx context.Context, name string, args map[string]string) (*Response, error) {
	cat, err := c.Catalogue(ctx)
	if err != nil {
		return nil, err
	}
	op, err := FindOperation(cat, name)
	if err != nil {
		return nil, err
	}
	return c.Invoke(ctx, op, args)
}

// Invoke runs op with args. Each argument goes where the operation wants
// it: into the path, the query string or the JSON body, where it is
// converted to the parameter's JSON type ("5" to 5 for an int, "a,b" to
// ["a","b"] for a list). A value that does not convert is sent as it is,
// so the server's validation explains what is wrong with it, in the same
// words as for any other client. Unknown argument names fail here, with
// the list of valid ones.
func (c *Client) Invoke(ctx context.Context, op CatalogueEntry, args map[string]string) (*Response, error) {
	if op.Stream {
		return nil, fmt.Errorf("%s answers with a stream of events; use Stream", op.Name)
	}
	req, err := c.newRequest(ctx, op, args)
	if err != nil {
		return nil, err
	}
	return c.do(req)
}

func (c *Client) newRequest(ctx context.Context, op CatalogueEntry, args map[string]string) (*http.Request, error) {
	byName := map[string]ParamSchema{}
	valid := make([]string, 0, len(op.Params))
	for _, p := range op.Params {
		byName[p.Name] = p
		valid = append(valid, p.Name)
	}
	slices.Sort(valid)
	var unknown []string
	for k := range args {
		if _, ok := byName[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		if len(valid) == 0 {
			return nil, fmt.Errorf("%s takes no arguments; unknown: %s", op.Name, strings.Join(unknown, ", "))
		}
		return nil, fmt.Errorf("unknown argument(s) %s for %s; valid: %s", strings.Join(unknown, ", "), op.Name, strings.Join(valid, ", "))
	}
	path := op.Path
	query := url.Values{}
	body := map[string]any{}
	for _, p := range op.Params {
		v, given := args[p.Name]
		switch p.In {
		case InPath:
			if !given {
				return nil, fmt.Errorf("%s needs the argument %s (the {%s} of %s)", op.Name, p.Name, p.Name, op.Path)
			}
			path = strings.Replace(path, "{"+p.Name+"}", url.PathEscape(v), 1)
		case InQuery:
			if given {
				query.Set(p.Name, v)
			}
		case InBody:
			if given {
				body[p.Name] = bodyValue(p.Type, p.Items, v)
			}
		}
	}
	u := c.base() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if len(body) > 0 {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, op.Method, u, rd)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// bodyValue converts a command-line argument to the JSON type of a body
// parameter, or leaves it a string for the server to reject.
func bodyValue(t, items Type, s string) any {
	switch t {
	case TypeInt:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case TypeFloat:
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f
		}
	case TypeBool:
		switch strings.ToLower(s) {
		case "true", "1":
			return true
		case "false", "0":
			return false
		}
	case TypeObject:
		if json.Valid([]byte(s)) {
			return json.RawMessage(s)
		}
	case TypeList:
		if s == "" {
			return []any{}
		}
		if items == "" {
			items = TypeString
		}
		parts := strings.Split(s, ",")
		out := make([]any, len(parts))
		for i, part := range parts {
			out[i] = bodyValue(items, "", part)
		}
		return out
	}
	return s
}

// Event is one Server-Sent Event.
type Event struct {
	ID   string // the frame's id: line, for Resume; empty if it had none
	Name string
	Data json.RawMessage
}

// Stream runs a streaming operation and calls fn for each event until the
// stream ends (nil), ctx ends (its error), fn fails (its error) or the
// server sends an "error" event (an *APIError).
func (c *Client) Stream(ctx context.Context, name string, args map[string]string, fn func(Event) error) error {
	return c.Resume(ctx, name, args, "", fn)
}

// Resume is Stream for a client that reconnects: lastEventID (the ID of
// the last Event it received) goes in the Last-Event-ID header, and the
// server sends what the client missed if it still has it. A stream the
// server ends because it shuts down delivers a "shutdown" event, then
// Resume returns ErrStreamShutdown.
func (c *Client) Resume(ctx context.Context, name string, args map[string]string, lastEventID string, fn func(Event) error) error {
	cat, err := c.Catalogue(ctx)
	if err != nil {
		return err
	}
	op, err := FindOperation(cat, name)
	if err != nil {
		return err
	}
	if !op.Stream {
		return fmt.Errorf("%s does not stream; use Call", op.Name)
	}
	req, err := c.newRequest(ctx, op, args)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
		return apiError(resp.StatusCode, body)
	}
	err = readEvents(resp.Body, func(ev Event) error {
		if ev.Name == "error" {
			var st struct {
				Status int `json:"status"`
			}
			if json.Unmarshal(ev.Data, &st) != nil || st.Status == 0 {
				st.Status = http.StatusInternalServerError
			}
			return apiError(st.Status, ev.Data)
		}
		if err := fn(ev); err != nil {
			return err
		}
		if ev.Name == "shutdown" {
			return ErrStreamShutdown
		}
		return nil
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// ErrStreamShutdown is returned by Stream and Resume when the server ended
// the stream because it shuts down.
var ErrStreamShutdown = errors.New("ops: the server ended the stream: it is shutting down")

// readEvents parses a text/event-stream: "event:" and "data:" lines,
// comments (":"), and a blank line to end each event.
func readEvents(r io.Reader, fn func(Event) error) error {
	br := bufio.NewReader(r)
	var ev Event
	var data []byte
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if data != nil {
				ev.Data = json.RawMessage(bytes.TrimSuffix(data, []byte("\n")))
				if err := fn(ev); err != nil {
					return err
				}
			}
			ev, data = Event{}, nil
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id:"):
			ev.ID = strings.TrimPrefix(strings.TrimPrefix(line, "id:"), " ")
		case strings.HasPrefix(line, "event:"):
			ev.Name = strings.TrimPrefix(strings.TrimPrefix(line, "event:"), " ")
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
			data = append(data, '\n')
		}
	}
}
