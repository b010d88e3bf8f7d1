package ops

import (
	"context"
	"net/http"
	"time"
)

// Type is the type of a parameter. It decides how a value is read from a
// query string or a JSON body, which Go type Params holds for it, and the
// JSON Schema the catalogue and the OpenAPI document show.
type Type string

// The parameter types and the Go type each one is held as in Params (and
// must be given as in Param.Default).
const (
	TypeString   Type = "string"   // string
	TypeInt      Type = "int"      // int
	TypeFloat    Type = "float"    // float64
	TypeBool     Type = "bool"     // bool; in a query: true, false, 1 or 0
	TypeDuration Type = "duration" // time.Duration; written as Go durations, "5s", "1m30s"
	TypePID      Type = "pid"      // process.PID, in its text form
	TypeNode     Type = "node"     // string, checked with process.ValidateNodeName (syntax only: an unknown node is the operation's 404)
	TypeEnum     Type = "enum"     // string, one of Param.Enum
	TypeList     Type = "list"     // a slice of the Items type (see Param.Items)
	TypeObject   Type = "object"   // map[string]any; JSON body only
)

// In is where a parameter is read from.
type In string

// Parameter locations.
const (
	InPath  In = "path"  // a {name} segment of Operation.Path
	InQuery In = "query" // the URL query string
	InBody  In = "body"  // a field of the JSON object in the request body
)

// Param describes one parameter of an operation.
//
// Constraints apply by type: Min and Max bound int and float values, the
// length in characters of strings and the number of items of lists; they
// are not allowed on durations, which use MinDuration and MaxDuration so a
// bound reads as a duration and not as a number of unknown unit. Pattern is
// a Go regular expression that a string (or each string item of a list)
// must match somewhere, unanchored as in JSON Schema: write ^…$ to match
// the whole value. Enum lists the values of an enum (or of enum items).
//
// Default is used only when the parameter is absent, never to replace a
// bad value. It must have the Go type of the parameter (int for int,
// time.Duration for duration, []string for a list of strings, …) and
// satisfy the constraints; Register checks both.
type Param struct {
	Name        string // snake_case; the query key, JSON field or path wildcard
	Description string
	Type        Type
	In          In
	Required    bool // path parameters are always required
	Default     any
	Enum        []string
	Min, Max    *float64
	// MinDuration and MaxDuration bound a duration; zero means no bound.
	// Negative durations are always rejected.
	MinDuration, MaxDuration time.Duration
	Pattern                  string
	// Payload marks what a caller sends on to a process (a message, a
	// child's arguments): the audit log shows only its size unless
	// ServerConfig.AuditPayloads. Object parameters are payloads always.
	Payload bool
	// Items is the type of the elements of a list. Empty means string.
	// Lists of lists or objects are not supported: a query string cannot
	// carry them.
	Items Type
}

// Role is the minimum role a caller needs for an operation.
type Role string

// Roles, from least to most powerful.
const (
	RoleViewer   Role = "viewer"   // may run reads
	RoleOperator Role = "operator" // may run everything, including dangerous operations
)

func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	}
	return 0
}

// Allows reports whether a caller with role r may run an operation that
// needs role min.
func (r Role) Allows(min Role) bool { return r.rank() > 0 && r.rank() >= min.rank() }

// Principal is the caller of an operation.
type Principal struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
}

// Anonymous is the principal of a request without a token on a server
// whose reads are open.
var Anonymous = Principal{Name: "anonymous", Role: RoleViewer}

// DefaultTimeout is the timeout of an operation that does not set one.
const DefaultTimeout = 10 * time.Second

// Operation describes one operation. It is the only place an operation is
// written down: validation, the HTTP route, the CLI verb, the catalogue
// entry and the OpenAPI document all come from it.
type Operation struct {
	// Name is unique, lower case, with words joined by "." or "_", such as
	// "cluster.topology". The CLI verb derives from it (see CLIVerb).
	Name string
	// Category groups operations in the catalogue and the OpenAPI tags:
	// cluster, process, supervisor, registry, tracing or system.
	Category    string
	Summary     string // one line
	Description string // optional, longer
	// Method and Path make the route, a Go ServeMux pattern such as
	// GET /api/v1/processes/{pid}/info. Each {name} is a Param with
	// In: InPath, and each path Param appears in Path.
	Method, Path string
	Params       []Param
	// Dangerous operations can lose work or state (kill a process…);
	// they always need RoleOperator.
	Dangerous bool
	// Idempotent operations can be retried safely. GET operations are
	// idempotent by definition; Register sets it for them. Calls to
	// operations that are not idempotent, or are dangerous, are audited.
	Idempotent bool
	// Timeout bounds Run; the context given to Run carries it. Zero means
	// DefaultTimeout. Stream is not bounded by it.
	Timeout time.Duration
	// Role is the minimum role of a caller. Empty means RoleViewer for a
	// GET that is not dangerous and RoleOperator for anything else, so a
	// forgotten role fails closed.
	Role Role
	// Run answers one call. Exactly one of Run and Stream is set. Run must
	// return when ctx ends: if it does not, the caller still gets its 504
	// shortly after the timeout, but Run's goroutine runs on.
	Run func(ctx context.Context, req *Request) (*Result, error)
	// Stream, for GET operations only, answers with Server-Sent Events
	// until the client goes away or ctx ends. Return nil at the end of the
	// stream. Headers are sent with the first event (or heartbeat), so an
	// error returned before the first Send is a normal JSON error; a feed
	// with nothing to say at once should send a first event (a snapshot,
	// a hello) so that clients see the stream open.
	Stream func(ctx context.Context, req *Request, w StreamWriter) error
	// Response is a value of the type Run puts in Result.Data (a zero
	// struct such as TopologyData{}). The OpenAPI document describes the
	// answer from this type, and the server answers 500 when Run returns
	// data of another type, so the document and the wire cannot drift.
	// Required with Run. See the rules in jsonschema.go: 64-bit integers
	// as strings, no time.Duration, no null.
	Response any
	// Events, for a Stream, maps each event name it sends to a value of
	// the type of that event's data, for the document. Required with
	// Stream.
	Events map[string]any
	// Sensitive reads reveal message contents or process state (traces,
	// a process's messages): they need a token even when reads are open.
	Sensitive bool
}

// Request is one call of an operation, after authentication and
// validation.
type Request struct {
	Op        *Operation
	Params    Params
	Principal Principal
	// HTTP is the underlying request, for the rare operation that needs a
	// header. Its body has already been read.
	HTTP *http.Request
	// LastEventID is, for a Stream, the Last-Event-ID header a client
	// sends when it reconnects: the id of the last event it received.
	// Empty on a first connection.
	LastEventID string
}

// Result is what Run returns on success. Data becomes the "data" member of
// the response; Meta is merged into "meta" (operation, node and
// duration_ms are set by the server and cannot be overridden).
type Result struct {
	Data any
	Meta map[string]any
}

// StreamWriter sends Server-Sent Events to the client of a Stream.
type StreamWriter interface {
	// Send writes one event, with data encoded as JSON, and flushes it. It
	// fails once the client has gone; the Stream should then return.
	Send(event string, data any) error
	// SendID is Send with an id: line, which a client gives back in the
	// Last-Event-ID header when it reconnects (see Request.LastEventID).
	// The id must not contain a line break.
	SendID(id, event string, data any) error
}
