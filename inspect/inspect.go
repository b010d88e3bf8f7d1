package inspect

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/arsenal-go/arsenal/codec"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/supervisor"
)

// Request names on the node protocol.
const (
	reqProcesses = "inspect.processes"
	reqInfo      = "inspect.info"
	reqKill      = "inspect.kill"
	reqSend      = "inspect.send"
	reqRestart   = "inspect.restart"
	reqTrees     = "inspect.trees"
	reqTrace     = "inspect.trace.start"
	reqTraceGet  = "inspect.trace.get"
	reqTraceStop = "inspect.trace.stop"
	reqTraceList = "inspect.trace.list"
)

// Error codes carried across nodes (the operations layer maps them to
// HTTP statuses).
const (
	CodeNoProc     = "noproc"
	CodeProtected  = "protected"
	CodeBadRequest = "bad_request"
	CodeNotFound   = "not_found"
	CodeTimeout    = "timeout"
	CodeConflict   = "conflict"
)

// codedErr makes an error whose code travels to the asking node
// (node.Coded).
func codedErr(code, format string, args ...any) error {
	return &coded{code: code, msg: fmt.Sprintf(format, args...)}
}

type coded struct{ code, msg string }

func (c *coded) Error() string { return c.msg }
func (c *coded) Code() string  { return c.code }

// Install registers the inspection handlers on n.
func Install(n *node.Node) {
	h := &handlers{n: n, traces: newTraceKeeper(n.Runtime(), TraceRetention)}
	n.HandleRequest(reqProcesses, h.processes)
	n.HandleRequest(reqInfo, h.info)
	n.HandleRequest(reqKill, h.kill)
	n.HandleRequest(reqSend, h.send)
	n.HandleRequest(reqRestart, h.restart)
	n.HandleRequest(reqTrees, h.trees)
	n.HandleRequest(reqTrace, h.traceStart)
	n.HandleRequest(reqTraceGet, h.traceGet)
	n.HandleRequest(reqTraceStop, h.traceStop)
	n.HandleRequest(reqTraceList, h.traceList)
}

type handlers struct {
	n      *node.Node
	traces *traceKeeper
}

func decode[T any](body []byte) (T, error) {
	var v T
	if err := codec.Unmarshal(body, &v); err != nil {
		return v, codedErr(CodeBadRequest, "malformed request: %v", err)
	}
	return v, nil
}

// ---- process list ----

// Filter selects processes. Empty fields match everything.
type Filter struct {
	Behaviour   string `cbor:"1,keyasint,omitempty"` // substring of the behaviour name, case-insensitive
	NamePattern string `cbor:"2,keyasint,omitempty"` // regular expression on the registered name
	Status      string `cbor:"3,keyasint,omitempty"` // running, waiting, exiting
	MinMailbox  int    `cbor:"4,keyasint,omitempty"`
	Sort        string `cbor:"5,keyasint,omitempty"` // pid (default), mailbox, messages, age
	Limit       int    `cbor:"6,keyasint,omitempty"` // 0: no limit
	Offset      int    `cbor:"7,keyasint,omitempty"`
	Details     bool   `cbor:"8,keyasint,omitempty"`
}

// Process is one process in a listing.
type Process struct {
	Node        string             `json:"node"`
	PID         process.PID        `json:"pid"`
	Name        string             `json:"name,omitempty"`
	Behaviour   string             `json:"behaviour"`
	Status      process.Status     `json:"status" enum:"running,waiting,exiting"`
	System      bool               `json:"system"`
	Supervisor  bool               `json:"supervisor"`
	MailboxLen  int                `json:"mailbox_len"`
	MessagesIn  uint64             `json:"messages_in" arsenal:"count"`
	MessagesOut uint64             `json:"messages_out" arsenal:"count"`
	Restarts    int                `json:"restarts"`
	StartedAt   time.Time          `json:"started_at"`
	Details     *ProcessInfo       `json:"details,omitempty"`
	Current     *process.CallState `json:"current_call,omitempty"`
}

// Page is one node's answer: the matching count and the first
// Offset+Limit matches in the requested order.
type Page struct {
	Node    string    `json:"node"`
	Total   int       `json:"total"`
	Entries []Process `json:"entries"`
}

func (f Filter) compile() (*regexp.Regexp, error) {
	if f.NamePattern == "" {
		return nil, nil
	}
	re, err := regexp.Compile(f.NamePattern)
	if err != nil {
		return nil, codedErr(CodeBadRequest, "name pattern: %v", err)
	}
	return re, nil
}

func less(sortBy string) func(a, b *Process) bool {
	byPID := func(a, b *Process) bool {
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		return a.PID.ID < b.PID.ID
	}
	switch sortBy {
	case "mailbox":
		return func(a, b *Process) bool {
			if a.MailboxLen != b.MailboxLen {
				return a.MailboxLen > b.MailboxLen
			}
			return byPID(a, b)
		}
	case "messages":
		return func(a, b *Process) bool {
			if x, y := a.MessagesIn+a.MessagesOut, b.MessagesIn+b.MessagesOut; x != y {
				return x > y
			}
			return byPID(a, b)
		}
	case "restarts":
		return func(a, b *Process) bool {
			if a.Restarts != b.Restarts {
				return a.Restarts > b.Restarts
			}
			return byPID(a, b)
		}
	case "age":
		return func(a, b *Process) bool {
			if !a.StartedAt.Equal(b.StartedAt) {
				return a.StartedAt.Before(b.StartedAt)
			}
			return byPID(a, b)
		}
	}
	return byPID
}

// LocalProcesses lists the processes of rt that match f: the true count of
// matches and the first Offset+Limit of them in the requested order. It
// keeps only those in a bounded heap, so a node with many processes does
// not sort or describe them all.
func LocalProcesses(rt *process.Runtime, f Filter) (Page, error) {
	re, err := f.compile()
	if err != nil {
		return Page{}, err
	}
	page := Page{Node: rt.Node()}
	beh := strings.ToLower(f.Behaviour)
	lt := less(f.Sort)
	keep := 0 // 0: keep all
	if f.Limit > 0 {
		keep = f.Offset + f.Limit
	}
	// top is a max-heap (by lt) of the best `keep` matches so far.
	top := &procHeap{less: lt}
	rt.Summaries(func(s process.Summary) bool {
		if beh != "" && !strings.Contains(strings.ToLower(s.Behaviour), beh) {
			return true
		}
		if re != nil && !re.MatchString(s.Name) {
			return true
		}
		if f.Status != "" && string(s.Status) != f.Status {
			return true
		}
		if s.MailboxLen < f.MinMailbox {
			return true
		}
		page.Total++
		p := Process{
			Node: rt.Node(), PID: s.PID, Name: s.Name, Behaviour: s.Behaviour, Status: s.Status,
			System: s.System, Supervisor: s.Supervisor, MailboxLen: s.MailboxLen,
			MessagesIn: s.MessagesIn, MessagesOut: s.MessagesOut, Restarts: s.Restarts,
			StartedAt: time.Unix(0, s.StartedAt),
		}
		if keep == 0 || top.Len() < keep {
			heap.Push(top, p)
		} else if lt(&p, &top.items[0]) {
			top.items[0] = p
			heap.Fix(top, 0)
		}
		return true
	})
	all := top.items
	sort.Slice(all, func(i, j int) bool { return lt(&all[i], &all[j]) })
	for i := range all {
		if in, err := rt.Info(all[i].PID); err == nil {
			all[i].Current = in.CurrentCall
			if f.Details {
				d := NewProcessInfo(in)
				all[i].Details = &d
			}
		}
	}
	page.Entries = all
	return page, nil
}

// procHeap is a max-heap: the root is the worst entry kept.
type procHeap struct {
	items []Process
	less  func(a, b *Process) bool
}

func (h *procHeap) Len() int           { return len(h.items) }
func (h *procHeap) Less(i, j int) bool { return h.less(&h.items[j], &h.items[i]) }
func (h *procHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *procHeap) Push(x any)         { h.items = append(h.items, x.(Process)) }
func (h *procHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}

func (h *handlers) processes(_ context.Context, _ string, body []byte) (any, error) {
	f, err := decode[Filter](body)
	if err != nil {
		return nil, err
	}
	return LocalProcesses(h.n.Runtime(), f)
}

// Listing is a cluster-wide process list.
type Listing struct {
	Total       int               `json:"total"`
	Processes   []Process         `json:"processes"`
	Nodes       []string          `json:"nodes"`                 // nodes that answered
	Unreachable map[string]string `json:"unreachable,omitempty"` // node → why it did not answer
}

// UpNodes returns the names of the members that are alive or suspect.
func UpNodes(n *node.Node) []string {
	var out []string
	for _, m := range n.Cluster().Members() {
		if m.Status.Up() {
			out = append(out, m.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Fanout asks every node in nodes with op and req, in parallel, each
// bounded by the node's request timeout. It returns the answers decoded
// as T and, for the nodes that failed, why.
func Fanout[T any](ctx context.Context, n *node.Node, nodes []string, op string, req any) (map[string]T, map[string]string) {
	var mu sync.Mutex
	out := map[string]T{}
	failed := map[string]string{}
	var wg sync.WaitGroup
	for _, name := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var v T
			err := n.Request(ctx, name, op, req, &v)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[name] = err.Error()
			} else {
				out[name] = v
			}
		}()
	}
	wg.Wait()
	return out, failed
}

// ListProcesses lists the processes of the given nodes (all up nodes when
// empty) that match f, sorted and paged over the whole cluster, with the
// true total of matches.
func ListProcesses(ctx context.Context, n *node.Node, nodes []string, f Filter) (Listing, error) {
	if _, err := f.compile(); err != nil {
		return Listing{}, err
	}
	if len(nodes) == 0 {
		nodes = UpNodes(n)
	}
	pages, failed := Fanout[Page](ctx, n, nodes, reqProcesses, f)
	l := Listing{Unreachable: failed, Processes: []Process{}}
	for name, p := range pages {
		l.Nodes = append(l.Nodes, name)
		l.Total += p.Total
		l.Processes = append(l.Processes, p.Entries...)
	}
	sort.Strings(l.Nodes)
	lt := less(f.Sort)
	sort.Slice(l.Processes, func(i, j int) bool { return lt(&l.Processes[i], &l.Processes[j]) })
	if f.Offset >= len(l.Processes) {
		l.Processes = []Process{}
	} else {
		l.Processes = l.Processes[f.Offset:]
		if f.Limit > 0 && len(l.Processes) > f.Limit {
			l.Processes = l.Processes[:f.Limit]
		}
	}
	if len(l.Unreachable) == 0 {
		l.Unreachable = nil
	}
	return l, nil
}

// ---- one process ----

type pidReq struct {
	PID process.PID `cbor:"1,keyasint"`
}

func (h *handlers) info(_ context.Context, _ string, body []byte) (any, error) {
	r, err := decode[pidReq](body)
	if err != nil {
		return nil, err
	}
	in, err := h.n.Runtime().Info(r.PID)
	if err != nil {
		return nil, codedErr(CodeNoProc, "no process %s on %s", r.PID, h.n.Name())
	}
	return in, nil
}

// route checks that pid's node is a member and returns it.
func route(n *node.Node, pid process.PID) (string, error) {
	if pid.Node == n.Name() {
		return pid.Node, nil
	}
	for _, m := range n.Cluster().Members() {
		if m.Name == pid.Node {
			if !m.Status.Up() {
				return "", &node.RequestError{Node: pid.Node, Code: node.CodeUnreachable, Message: fmt.Sprintf("node %s is %s", pid.Node, m.Status)}
			}
			return pid.Node, nil
		}
	}
	return "", &node.RequestError{Node: pid.Node, Code: CodeNotFound, Message: fmt.Sprintf("no node %s in the cluster", pid.Node)}
}

// ask runs a request on the node of pid.
func ask[T any](ctx context.Context, n *node.Node, pid process.PID, op string, req any) (T, error) {
	var res T
	target, err := route(n, pid)
	if err != nil {
		return res, err
	}
	err = n.Request(ctx, target, op, req, &res)
	return res, err
}

// Info describes one process on any node.
func Info(ctx context.Context, n *node.Node, pid process.PID) (process.Info, error) {
	return ask[process.Info](ctx, n, pid, reqInfo, pidReq{PID: pid})
}

// KillRequest asks a process to exit.
type KillRequest struct {
	PID    process.PID   `cbor:"1,keyasint"`
	Reason string        `cbor:"2,keyasint"` // kill (default), shutdown, normal, or any text
	Force  bool          `cbor:"3,keyasint"` // needed for system processes and supervisors
	Wait   time.Duration `cbor:"4,keyasint"` // how long to wait for the exit
}

// KillResult says what happened.
type KillResult struct {
	PID        process.PID `json:"pid"`
	Exited     bool        `json:"exited"`
	ExitReason string      `json:"exit_reason,omitempty"`
	WaitedMS   float64     `json:"waited_ms"`
	Note       string      `json:"note,omitempty"`
}

func reasonOf(s string) process.Reason {
	if s == "" {
		return process.Kill
	}
	if r := process.StandardReason(s); r != nil {
		return r
	}
	return errors.New(s)
}

func (h *handlers) kill(_ context.Context, _ string, body []byte) (any, error) {
	r, err := decode[KillRequest](body)
	if err != nil {
		return nil, err
	}
	rt := h.n.Runtime()
	in, err := rt.Info(r.PID)
	if err != nil {
		return nil, codedErr(CodeNoProc, "no process %s on %s", r.PID, h.n.Name())
	}
	if (in.System || in.Supervisor) && !r.Force {
		what := "a system process"
		if in.Supervisor {
			what = "a supervisor"
		}
		return nil, codedErr(CodeProtected, "%s is %s; set force to kill it", r.PID, what)
	}
	wait := killWait(r.Wait)
	gone := make(chan process.Reason, 1)
	cancel := rt.Watch(r.PID, func(d process.DownMsg) { gone <- d.Reason })
	defer cancel()
	start := time.Now()
	rt.Exit(r.PID, reasonOf(r.Reason))
	t := time.NewTimer(wait)
	defer t.Stop()
	res := KillResult{PID: r.PID}
	select {
	case reason := <-gone:
		res.Exited, res.ExitReason = true, reason.Error()
	case <-t.C:
		res.Note = fmt.Sprintf("the process did not exit within %s (it may trap exits, or the reason %q does not stop it); use reason kill to stop it unconditionally", wait, r.Reason)
	}
	res.WaitedMS = float64(time.Since(start).Microseconds()) / 1000
	return res, nil
}

// killWait is how long a kill waits for the exit: 5 s unless the request
// says otherwise, at most 30 s.
func killWait(d time.Duration) time.Duration {
	if d <= 0 || d > 30*time.Second {
		return 5 * time.Second
	}
	return d
}

// callTimeout is how long a call through send waits for the reply: 5 s
// unless the request says otherwise, at most 60 s.
func callTimeout(d time.Duration) time.Duration {
	if d <= 0 || d > 60*time.Second {
		return 5 * time.Second
	}
	return d
}

// Kill sends an exit signal to a process on any node and waits for it to
// exit.
func Kill(ctx context.Context, n *node.Node, r KillRequest) (KillResult, error) {
	// The wait travels in the request and bounds the handler; the asking
	// side waits that long plus its usual request timeout.
	ctx = node.WithRequestTimeout(ctx, killWait(r.Wait)+n.Config().RequestTimeout)
	return ask[KillResult](ctx, n, r.PID, reqKill, r)
}

// SendRequest delivers a message to a process.
type SendRequest struct {
	PID     process.PID   `cbor:"1,keyasint"`
	Mode    string        `cbor:"2,keyasint"` // send (default), cast, call
	Message any           `cbor:"3,keyasint"`
	Timeout time.Duration `cbor:"4,keyasint"` // for call
}

// SendResult is the outcome of a send.
type SendResult struct {
	PID       process.PID `json:"pid"`
	Mode      string      `json:"mode"`
	Delivered bool        `json:"delivered"`
	Reply     any         `json:"reply,omitempty"`
}

func (h *handlers) send(ctx context.Context, _ string, body []byte) (any, error) {
	r, err := decode[SendRequest](body)
	if err != nil {
		return nil, err
	}
	rt := h.n.Runtime()
	if !rt.Alive(r.PID) {
		return nil, codedErr(CodeNoProc, "no process %s on %s", r.PID, h.n.Name())
	}
	res := SendResult{PID: r.PID, Mode: r.Mode}
	switch r.Mode {
	case "", "send":
		res.Mode = "send"
		rt.Send(r.PID, r.Message)
	case "cast":
		rt.Cast(r.PID, r.Message)
	case "call":
		// The node gives a handler a context of its own request timeout;
		// the call is bounded by the timeout it carries instead.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout(r.Timeout))
		defer cancel()
		v, err := rt.Call(cctx, r.PID, r.Message)
		if err != nil {
			switch {
			case errors.Is(err, process.Timeout):
				return nil, codedErr(CodeTimeout, "%v", err)
			case errors.Is(err, process.NoProc):
				return nil, codedErr(CodeNoProc, "%v", err)
			}
			var ee *process.ExitError
			if errors.As(err, &ee) {
				return nil, codedErr(CodeConflict, "%v", err)
			}
			// An application error answered by the process.
			res.Reply = map[string]any{"error": err.Error()}
			res.Delivered = true
			return res, nil
		}
		res.Reply = renderable(v)
	default:
		return nil, codedErr(CodeBadRequest, "mode %q: want send, cast or call", r.Mode)
	}
	res.Delivered = true
	return res, nil
}

// renderable keeps values that encode as plain data and prints the rest.
func renderable(v any) any {
	if _, err := codec.Marshal(v); err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return v
}

// Send delivers a message to a process on any node.
func Send(ctx context.Context, n *node.Node, r SendRequest) (SendResult, error) {
	if r.Mode == "call" {
		ctx = node.WithRequestTimeout(ctx, callTimeout(r.Timeout)+n.Config().RequestTimeout)
	}
	return ask[SendResult](ctx, n, r.PID, reqSend, r)
}

// RestartResult is the outcome of a restart through a supervisor.
type RestartResult struct {
	OldPID     process.PID `json:"old_pid"`
	NewPID     process.PID `json:"new_pid"`
	Supervisor process.PID `json:"supervisor"`
	ChildID    string      `json:"child_id"`
}

// restartReq carries the time the asking side gives the restart, which
// bounds it on the process's node (whose own context for a request ends
// after its request timeout).
type restartReq struct {
	PID     process.PID   `cbor:"1,keyasint"`
	Timeout time.Duration `cbor:"2,keyasint,omitempty"`
}

func (h *handlers) restart(ctx context.Context, _ string, body []byte) (any, error) {
	r, err := decode[restartReq](body)
	if err != nil {
		return nil, err
	}
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), min(r.Timeout, time.Minute))
		defer cancel()
	}
	rt := h.n.Runtime()
	in, err := rt.Info(r.PID)
	if err != nil {
		return nil, codedErr(CodeNoProc, "no process %s on %s", r.PID, h.n.Name())
	}
	if in.Parent.IsZero() {
		return nil, codedErr(CodeConflict, "%s has no supervisor to restart it", r.PID)
	}
	children, err := supervisor.WhichChildren(ctx, rt, in.Parent)
	if err != nil {
		return nil, codedErr(CodeConflict, "%s's parent %s is not a supervisor: %v", r.PID, in.Parent, err)
	}
	for _, c := range children {
		if c.PID == r.PID {
			pid, err := supervisor.RestartChild(ctx, rt, in.Parent, c.ID)
			if err != nil {
				return nil, codedErr(CodeConflict, "restart %q: %v", c.ID, err)
			}
			return RestartResult{OldPID: r.PID, NewPID: pid, Supervisor: in.Parent, ChildID: c.ID}, nil
		}
	}
	return nil, codedErr(CodeConflict, "%s is not a child of its parent %s any more", r.PID, in.Parent)
}

// Restart restarts a process through its supervisor.
func Restart(ctx context.Context, n *node.Node, pid process.PID) (RestartResult, error) {
	// A restart waits for the old child to stop (its shutdown timeout),
	// which can take longer than a node request: it gets the time left to
	// the caller, carried to the process's node.
	wait := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	ctx = node.WithRequestTimeout(ctx, wait)
	return ask[RestartResult](ctx, n, pid, reqRestart, restartReq{PID: pid, Timeout: wait})
}

// Distribution returns, for every up node, its process count and the
// first `samples` PIDs, asked of all nodes in parallel.
func Distribution(ctx context.Context, n *node.Node, samples int) (map[string]Page, map[string]string) {
	return Fanout[Page](ctx, n, UpNodes(n), reqProcesses, Filter{Limit: samples})
}
