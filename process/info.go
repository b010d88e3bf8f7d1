package process

import (
	"fmt"
	"sort"
	"time"
)

// Status is what a process is doing.
type Status string

const (
	StatusRunning Status = "running" // handling a message
	StatusWaiting Status = "waiting" // idle, waiting for a message
	StatusExiting Status = "exiting" // ordered to exit, finishing
)

// Info describes one process at one moment.
type Info struct {
	PID           PID        `json:"pid"`
	Name          string     `json:"name,omitempty"`
	Behaviour     string     `json:"behaviour"`
	Status        Status     `json:"status"`
	System        bool       `json:"system"`
	TrapExits     bool       `json:"trap_exits"`
	MailboxLen    int        `json:"mailbox_len"`
	MessagesIn    uint64     `json:"messages_in"`
	MessagesOut   uint64     `json:"messages_out"`
	Parent        PID        `json:"parent,omitzero"`
	Links         []PID      `json:"links"`
	Monitors      []PID      `json:"monitors"`     // processes this one monitors
	MonitoredBy   []PID      `json:"monitored_by"` // processes that monitor this one
	Restarts      int        `json:"restarts"`
	StartedAt     time.Time  `json:"started_at"`
	CurrentCall   *CallState `json:"current_call,omitempty"`
	Supervisor    bool       `json:"supervisor"`
	IsFuncProcess bool       `json:"-"`
}

// CallState is the call a process is handling.
type CallState struct {
	Request string    `json:"request"` // the request's Go type
	Since   time.Time `json:"since"`
}

// SupervisorMarker is implemented by supervisor behaviours so that
// introspection can tell supervisors from workers.
type SupervisorMarker interface{ IsSupervisor() bool }

// summary describes p without its links and monitors; ok is false once
// p is dead.
func (p *process) summary() (s Summary, ok bool) {
	s = Summary{PID: p.pid, Behaviour: p.behName, System: p.system, MessagesOut: p.out.Load(),
		Restarts: int(p.restarts), StartedAt: p.started}
	if m, isSup := p.beh.(SupervisorMarker); isSup && m.IsSupervisor() {
		s.Supervisor = true
	}
	switch p.status.Load() {
	case statusRunning:
		s.Status = StatusRunning
	case statusExiting:
		s.Status = StatusExiting
	default:
		s.Status = StatusWaiting
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state.Load() != stateAlive {
		s.Status = StatusExiting
	}
	s.Name = p.name
	p.mbox.lock()
	s.MailboxLen, s.MessagesIn = p.mbox.len(), p.mbox.in
	p.mbox.unlock()
	return s, p.state.Load() != stateDead
}

func (p *process) info() Info {
	s, _ := p.summary()
	in := Info{
		PID: s.PID, Name: s.Name, Behaviour: s.Behaviour, Status: s.Status, System: s.System,
		Supervisor: s.Supervisor, TrapExits: p.trap.Load(), MailboxLen: s.MailboxLen,
		MessagesIn: s.MessagesIn, MessagesOut: s.MessagesOut, Parent: p.parent, Restarts: s.Restarts,
		StartedAt: time.Unix(0, s.StartedAt), IsFuncProcess: p.fn != nil,
	}
	p.mu.Lock()
	in.Links = make([]PID, 0, len(p.links))
	for l := range p.links {
		in.Links = append(in.Links, l)
	}
	in.Monitors = make([]PID, 0, len(p.watching))
	for _, t := range p.watching {
		in.Monitors = append(in.Monitors, t)
	}
	in.MonitoredBy = make([]PID, 0, len(p.monitors))
	for _, w := range p.monitors {
		if w.fn == nil {
			in.MonitoredBy = append(in.MonitoredBy, w.pid)
		}
	}
	if p.curCall != nil {
		in.CurrentCall = &CallState{Request: fmt.Sprintf("%T", p.curCall), Since: time.Unix(0, p.curSince)}
	}
	p.mu.Unlock()
	sortPIDs(in.Links)
	sortPIDs(in.Monitors)
	sortPIDs(in.MonitoredBy)
	return in
}

func sortPIDs(s []PID) {
	sort.Slice(s, func(i, j int) bool {
		if s[i].Node != s[j].Node {
			return s[i].Node < s[j].Node
		}
		return s[i].ID < s[j].ID
	})
}

// Info returns a live local process's description, or an error wrapping
// NoProc.
func (rt *Runtime) Info(pid PID) (Info, error) {
	p := rt.lookup(pid)
	if p == nil || p.state.Load() == stateDead {
		return Info{}, &CallError{PID: pid, Err: NoProc}
	}
	return p.info(), nil
}

// Processes describes every live local process, ordered by id.
func (rt *Runtime) Processes() []Info {
	out := make([]Info, 0, rt.Count())
	rt.table.Range(func(_, v any) bool {
		p := v.(*process)
		if p.state.Load() != stateDead {
			out = append(out, p.info())
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].PID.ID < out[j].PID.ID })
	return out
}

// PIDs returns the PIDs of every live local process, ordered by id.
func (rt *Runtime) PIDs() []PID {
	out := make([]PID, 0, rt.Count())
	rt.table.Range(func(_, v any) bool {
		out = append(out, v.(*process).pid)
		return true
	})
	sortPIDs(out)
	return out
}

// IsSystem reports whether pid is a live system process.
func (rt *Runtime) IsSystem(pid PID) bool {
	p := rt.lookup(pid)
	return p != nil && p.system
}

// MailboxTotals returns the sum and the maximum of all mailbox lengths.
func (rt *Runtime) MailboxTotals() (total, max int) {
	rt.table.Range(func(_, v any) bool {
		p := v.(*process)
		p.mbox.lock()
		l := p.mbox.len()
		p.mbox.unlock()
		total += l
		if l > max {
			max = l
		}
		return true
	})
	return total, max
}

// Summary is the part of Info that is cheap to gather: no links or
// monitors. Listings of many processes use it.
type Summary struct {
	PID         PID
	Name        string
	Behaviour   string
	Status      Status
	System      bool
	Supervisor  bool
	MailboxLen  int
	MessagesIn  uint64
	MessagesOut uint64
	Restarts    int
	StartedAt   int64 // Unix nanoseconds
}

// Summaries yields a Summary of every live local process, in no
// particular order, without allocating per process.
func (rt *Runtime) Summaries(yield func(Summary) bool) {
	rt.table.Range(func(_, v any) bool {
		s, ok := v.(*process).summary()
		if !ok {
			return true
		}
		return yield(s)
	})
}
