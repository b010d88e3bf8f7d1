package ops

import (
	"context"
	"errors"
	"net/http"

	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
)

// Error is an error with an HTTP status and a stable code. Operations
// return one (see NotFound and the other constructors) when they know what
// went wrong; other errors are mapped by ToError.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Message
}

// NewError returns an Error with any status and code.
func NewError(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// NotFound is a 404: an unknown process, node, trace…
func NotFound(msg string) *Error { return NewError(http.StatusNotFound, "not_found", msg) }

// Forbidden is a 403: the caller may not do this, such as killing a
// protected process without force.
func Forbidden(msg string) *Error { return NewError(http.StatusForbidden, "forbidden", msg) }

// Unavailable is a 503: the service cannot answer now (minority side of a
// partition, node unreachable…).
func Unavailable(msg string) *Error {
	return NewError(http.StatusServiceUnavailable, "unavailable", msg)
}

// Timeout is a 504: the work did not finish in time.
func Timeout(msg string) *Error { return NewError(http.StatusGatewayTimeout, "timeout", msg) }

// BadRequest is a 400 for a request the parameter schema cannot catch.
func BadRequest(msg string) *Error { return NewError(http.StatusBadRequest, "bad_request", msg) }

// Conflict is a 409: the request does not fit the current state.
func Conflict(msg string) *Error { return NewError(http.StatusConflict, "conflict", msg) }

// codeStatus maps the codes of node.RequestError (and of errors that
// implement node.Coded) to HTTP statuses.
var codeStatus = map[string]int{
	node.CodeUnreachable: http.StatusServiceUnavailable,
	node.CodeTimeout:     http.StatusGatewayTimeout,
	"not_found":          http.StatusNotFound,
	"noproc":             http.StatusNotFound,
	node.CodeUnknownOp:   http.StatusNotFound,
	node.CodeBadRequest:  http.StatusBadRequest,
	"forbidden":          http.StatusForbidden,
	"protected":          http.StatusForbidden, // a supervisor or system process, without force
	"conflict":           http.StatusConflict,
	"unavailable":        http.StatusServiceUnavailable,
	"validation_failed":  http.StatusUnprocessableEntity,
}

// StatusClientClosed is the status recorded (never seen by anyone) when
// the client went away before the answer, as nginx does.
const StatusClientClosed = 499

// ToError maps any error to the Error the server answers with:
//
//   - an *Error anywhere in the chain: itself;
//   - process.NoProc: 404 "noproc";
//   - process.Timeout, context.DeadlineExceeded: 504 "timeout";
//   - process.NoConnection, node.ErrUnreachable: 503 "node_unreachable";
//   - *node.RequestError or node.Coded: by code (node_unreachable 503,
//     timeout 504, not_found and unknown_operation 404, bad_request 400,
//     anything else 500);
//   - process.ErrBadPID: 400 "bad_request";
//   - *process.ExitError for another reason: 409 "process_exited" (the
//     process died while handling the request);
//   - context.Canceled: 499, the client went away;
//   - anything else: 500 "internal", a bug.
//
// The message is the error's own text.
func ToError(err error) *Error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	msg := err.Error()
	// Remote errors first: a RequestError carries the code the other node
	// chose, which is more precise than its text.
	if re, ok := errors.AsType[*node.RequestError](err); ok {
		return NewError(statusOf(re.Code), re.Code, msg)
	}
	switch {
	case errors.Is(err, process.NoProc):
		return NewError(http.StatusNotFound, "noproc", msg)
	case errors.Is(err, process.Timeout), errors.Is(err, context.DeadlineExceeded):
		return NewError(http.StatusGatewayTimeout, "timeout", msg)
	case errors.Is(err, process.NoConnection), errors.Is(err, node.ErrUnreachable):
		return NewError(http.StatusServiceUnavailable, "node_unreachable", msg)
	case errors.Is(err, process.ErrBadPID):
		return NewError(http.StatusBadRequest, "bad_request", msg)
	case errors.Is(err, context.Canceled):
		return NewError(StatusClientClosed, "canceled", msg)
	}
	if c, ok := errors.AsType[codedError](err); ok {
		return NewError(statusOf(c.Code()), c.Code(), msg)
	}
	if _, ok := errors.AsType[*process.ExitError](err); ok {
		return NewError(http.StatusConflict, "process_exited", msg)
	}
	return NewError(http.StatusInternalServerError, "internal", msg)
}

// codedError is an error that implements node.Coded.
type codedError interface {
	error
	node.Coded
}

func statusOf(code string) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}
