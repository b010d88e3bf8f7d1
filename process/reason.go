package process

import (
	"errors"
	"fmt"
)

// Reason is the type of exit reasons. The standard reasons are distinct
// values compared with errors.Is; any other error is a user reason.
type Reason = error

type stdReason string

func (r stdReason) Error() string { return string(r) }

// The standard exit reasons, with OTP's meaning.
var (
	// Normal is a normal exit: links to a process that exits normally do
	// not kill non-trapping partners, and transient children are not
	// restarted. A process function that returns nil exits with Normal.
	Normal Reason = stdReason("normal")
	// Shutdown is the reason a supervisor uses to stop its children.
	Shutdown Reason = stdReason("shutdown")
	// Kill, sent with Exit, cannot be trapped: the target ends at once
	// with reason Killed.
	Kill Reason = stdReason("kill")
	// Killed is the exit reason of a process that received Kill.
	Killed Reason = stdReason("killed")
	// NoProc means the process does not exist (or no longer does).
	NoProc Reason = stdReason("noproc")
	// NoConnection means the node of the process was lost.
	NoConnection Reason = stdReason("noconnection")
	// Timeout is returned by Call when no reply came in time.
	Timeout Reason = stdReason("timeout")
)

// StandardReason returns the standard reason with the given text, or nil.
// The node layer uses it to restore reasons received from the network.
func StandardReason(text string) Reason {
	for _, r := range []Reason{Normal, Shutdown, Kill, Killed, NoProc, NoConnection, Timeout} {
		if r.Error() == text {
			return r
		}
	}
	return nil
}

// PanicError is the exit reason of a process whose handler panicked.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// IsNormal reports whether reason counts as a normal exit (nil or Normal).
func IsNormal(reason error) bool { return reason == nil || errors.Is(reason, Normal) }

// isShutdown reports whether reason is Normal or Shutdown (or wraps
// Shutdown): the reasons a transient child is not restarted for.
func isShutdown(reason error) bool { return IsNormal(reason) || errors.Is(reason, Shutdown) }

// IsShutdown reports whether reason is normal or a shutdown.
func IsShutdown(reason error) bool { return isShutdown(reason) }

// Error values returned by the runtime's API (not exit reasons).
var (
	ErrNilBehaviour   = errors.New("behaviour is nil")
	ErrNameTaken      = errors.New("name already registered")
	ErrBadName        = errors.New("invalid name")
	ErrNotRunning     = errors.New("runtime is shut down")
	ErrNotFuncProcess = errors.New("Receive is only for processes started with SpawnFunc")
)

// ExitMsg is the message a process that traps exits receives instead of
// dying when a linked process exits or Exit is called on it.
type ExitMsg struct {
	From   PID
	Reason Reason
}

// DownMsg is the message a monitoring process receives, exactly once per
// monitor, when the monitored process exits (or did not exist: NoProc).
type DownMsg struct {
	Ref    Ref
	PID    PID
	Reason Reason
}

// TimeoutMsg is delivered by timers that were started without a message.
type TimeoutMsg struct{ Ref Ref }
