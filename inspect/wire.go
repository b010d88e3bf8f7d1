package inspect

import (
	"math"
	"time"

	"github.com/arsenal-go/arsenal/process"
)

// Millis is a duration as a number of milliseconds, to the microsecond:
// the one form durations take in answers of the operations API.
func Millis(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// ProcessInfo is process.Info as the operations API sends it: counters
// are marked as counts (far below 2^53, so JSON numbers), lists are never
// null.
type ProcessInfo struct {
	PID         process.PID        `json:"pid"`
	Name        string             `json:"name,omitempty"`
	Behaviour   string             `json:"behaviour"`
	Status      process.Status     `json:"status" enum:"running,waiting,exiting"`
	System      bool               `json:"system"`
	TrapExits   bool               `json:"trap_exits"`
	MailboxLen  int                `json:"mailbox_len"`
	MessagesIn  uint64             `json:"messages_in" arsenal:"count"`
	MessagesOut uint64             `json:"messages_out" arsenal:"count"`
	Parent      process.PID        `json:"parent,omitzero"`
	Links       []process.PID      `json:"links"`
	Monitors    []process.PID      `json:"monitors" doc:"processes this one monitors"`
	MonitoredBy []process.PID      `json:"monitored_by" doc:"processes that monitor this one"`
	Restarts    int                `json:"restarts"`
	StartedAt   time.Time          `json:"started_at"`
	CurrentCall *process.CallState `json:"current_call,omitempty"`
	Supervisor  bool               `json:"supervisor"`
}

// NewProcessInfo converts a process.Info for the wire.
func NewProcessInfo(in process.Info) ProcessInfo {
	return ProcessInfo{PID: in.PID, Name: in.Name, Behaviour: in.Behaviour, Status: in.Status, System: in.System,
		TrapExits: in.TrapExits, MailboxLen: in.MailboxLen, MessagesIn: in.MessagesIn, MessagesOut: in.MessagesOut,
		Parent: in.Parent, Links: orEmpty(in.Links), Monitors: orEmpty(in.Monitors), MonitoredBy: orEmpty(in.MonitoredBy),
		Restarts: in.Restarts, StartedAt: in.StartedAt, CurrentCall: in.CurrentCall, Supervisor: in.Supervisor}
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
