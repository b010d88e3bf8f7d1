// Package ops is the framework of Arsenal's operations API: the HTTP
// endpoints through which people, scripts and the arsenal CLI look at a
// cluster and act on it (list processes, kill one, trace one…).
//
// An operation is written once, as an Operation value. From that one
// description come the parameter validation, the HTTP route, the CLI verb,
// the entry in the catalogue (GET /api/v1/arsenal/operations) and the
// OpenAPI 3.1 document (GET /api/v1/arsenal/docs), with the schema of its
// answer reflected from the Go type it answers with. Nothing is listed
// twice, so nothing can drift: a parameter added to the description is
// validated, documented and offered by the CLI at once, and the server
// answers 500 rather than send data of another type than the documented
// one.
//
// # Writing an operation
//
// Declare the parameters with their types and constraints, and write Run
// against the already validated Params:
//
//	var processInfo = ops.Operation{
//		Name:     "process.info",
//		Category: "process",
//		Summary:  "Information about one process",
//		Method:   "GET",
//		Path:     "/api/v1/processes/{pid}/info",
//		Params: []ops.Param{
//			{Name: "pid", Type: ops.TypePID, In: ops.InPath, Description: "The process."},
//			{Name: "messages", Type: ops.TypeInt, In: ops.InQuery, Default: 0,
//				Min: new(0.0), Max: new(100.0), Description: "How many queued messages to show."},
//		},
//		Timeout:  5 * time.Second,
//		Response: ProcessInfo{}, // the type of Data, for the document
//		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
//			info, err := rt.Info(req.Params.PID("pid")) // a NoProc error becomes a 404
//			if err != nil {
//				return nil, err
//			}
//			return &ops.Result{Data: toProcessInfo(info)}, nil
//		},
//	}
//
//	reg := ops.NewRegistry()
//	reg.MustRegister(processInfo)
//	http.ListenAndServe(addr, reg.Handler(ops.ServerConfig{
//		Node:      "api@10.0.0.5",
//		OpenReads: ops.DefaultOpenReads(addr),
//	}))
//
// The answer type follows the wire rules, which Register enforces: a
// 64-bit integer is a string (json:",string") unless it is a count
// (arsenal:"count"); a duration is a float64 of milliseconds in a field
// named …_ms, never a time.Duration; a pointer field is omitempty; lists
// must be non-nil (the schema has no null). Tags doc:"…" and enum:"a,b"
// describe a field.
//
// Register checks the description itself, so mistakes show at start-up
// rather than on the first request: the {pid} wildcard must have a path
// Param and the other way round, a default must have the parameter's Go
// type and meet its constraints, a dangerous operation must need the
// operator role, names and routes must be unique.
//
// # Validation
//
// Path and query values are text and are coerced to their type: "true",
// "false", "1", "0" for booleans, "5s" for durations, the PID text form
// for PIDs, repeated keys or comma-separated items for lists. Body values
// are JSON and keep their JSON type: 5 for an int, not "5". Unknown
// parameters are refused, and so is any bad value: a default fills only a
// parameter that is absent, never one that is wrong. A request with bad
// parameters gets a 422 that lists every offending field with its reason:
//
//	{"error": {"code": "validation_failed", "message": "invalid parameters for process.list: limit",
//	           "details": [{"field": "limit", "in": "query", "reason": "must be at most 1000, got 5000"}]}}
//
// # Answers
//
// A success is {"data": …, "meta": {"operation", "node", "duration_ms",
// …}}; an error is {"error": {"code", "message", "details"}}. Run returns
// an *Error (NotFound, Forbidden, Conflict, …) when it knows the status,
// or any error, which ToError maps: process.NoProc is a 404,
// process.Timeout and deadlines a 504, an unreachable node a 503, and an
// error nobody foresaw a 500, logged as the bug it is. Each Run gets a
// context bounded by the operation's Timeout; a panic in Run is a 500 and
// the server carries on.
//
// # Access
//
// Callers present a bearer token that maps to a Principal with a role,
// viewer or operator (see LoadTokens). With OpenReads, read operations need
// no token; DefaultOpenReads turns that on for loopback addresses only.
// Sensitive reads (message contents) need a token even then. Dangerous
// operations always need an operator. A request without a token must name
// the node by an IP address, localhost or one of AllowedHosts in its Host
// header (against DNS rebinding). Calls of operations that change things,
// and of sensitive reads, are written to the audit log (AuditOutput),
// refused ones included, with payloads redacted.
//
// # Streams
//
// An operation with Stream instead of Run answers with Server-Sent Events
// (the cluster event feed): it sends events through a StreamWriter (with
// an id: line by SendID, which a reconnecting client gives back as
// Request.LastEventID) until the client goes away, with a heartbeat
// comment every 15 s in between. When the http.Server that serves it
// shuts down, every stream ends at once with a "shutdown" event, so an
// open stream never holds up a graceful stop.
//
// # Client
//
// Client calls any operation by name, knowing only the catalogue: it puts
// each key=value argument in the path, the query or the body, converted to
// the parameter's JSON type, and returns the data or an *APIError that
// reads well in a terminal. Stream follows a stream of events; Resume
// reconnects to one with the id of the last event received.
package ops
