package supervisor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/arsenal-go/arsenal/process"
)

// Strategy decides which children restart when one exits.
type Strategy string

const (
	OneForOne  Strategy = "one_for_one"
	OneForAll  Strategy = "one_for_all"
	RestForOne Strategy = "rest_for_one"
	Dynamic    Strategy = "dynamic"
)

// RestartType decides whether a child is restarted after it exits.
type RestartType string

const (
	Permanent RestartType = "permanent"
	Transient RestartType = "transient"
	Temporary RestartType = "temporary"
)

// ChildType tells workers from supervisors.
type ChildType string

const (
	Worker         ChildType = "worker"
	SupervisorType ChildType = "supervisor"
)

// Shutdown timeouts with a special meaning.
const (
	BrutalKill time.Duration = -1
	Infinity   time.Duration = -2
	// DefaultShutdown is a worker's default shutdown timeout.
	DefaultShutdown = 5 * time.Second
)

// ChildSpec describes one child.
type ChildSpec struct {
	// ID names the child within its supervisor. Required, except for
	// Dynamic supervisors, which number children without one.
	ID string
	// Start returns a fresh behaviour for each (re)start. Exactly one of
	// Start and StartFunc is set.
	Start func() process.Behaviour
	// StartFunc is the function form of a child.
	StartFunc func(p *process.Proc) error
	// Restart is Permanent when empty.
	Restart RestartType
	// Shutdown is how long the child gets to stop; zero means
	// DefaultShutdown for workers and Infinity for supervisors.
	Shutdown time.Duration
	// Type is Worker when empty.
	Type ChildType
	// Name, if set, registers the child under this local name.
	Name string
}

// Intensity bounds restarts: more than MaxRestarts within Period and the
// supervisor exits. The zero value means the default, 3 in 5 s; to allow
// no restart at all, set Period and leave MaxRestarts 0.
type Intensity struct {
	MaxRestarts int
	Period      time.Duration
}

// DefaultIntensity is 3 restarts in 5 seconds (Elixir's default).
var DefaultIntensity = Intensity{MaxRestarts: 3, Period: 5 * time.Second}

// Spec describes a supervisor.
type Spec struct {
	Strategy  Strategy // OneForOne when empty
	Intensity Intensity
	Children  []ChildSpec
	// MaxChildren bounds a Dynamic supervisor (0: no bound).
	MaxChildren int
}

// Errors returned by the supervisor API.
var (
	ErrBadSpec      = errors.New("invalid supervisor spec")
	ErrNotFound     = errors.New("no such child")
	ErrRunning      = errors.New("child is running")
	ErrMaxChildren  = errors.New("max children reached")
	ErrNotSupported = errors.New("not supported by this strategy")
)

// IntensityError is the exit reason of a supervisor that reached its
// restart intensity. It unwraps to process.Shutdown, as OTP's reason is
// shutdown, so a transient parent does not restart it.
type IntensityError struct {
	Intensity Intensity
	Child     string
	Reason    process.Reason
}

func (e *IntensityError) Error() string {
	return fmt.Sprintf("shutdown: reached max restart intensity (%d restarts in %s); last child %q exited with: %v",
		e.Intensity.MaxRestarts, e.Intensity.Period, e.Child, e.Reason)
}
func (e *IntensityError) Unwrap() error { return process.Shutdown }

// Validate checks a child spec.
func (c ChildSpec) Validate(dynamic bool) error {
	if c.ID == "" && !dynamic {
		return fmt.Errorf("%w: child has no ID", ErrBadSpec)
	}
	if (c.Start == nil) == (c.StartFunc == nil) {
		return fmt.Errorf("%w: child %q needs exactly one of Start and StartFunc", ErrBadSpec, c.ID)
	}
	switch c.Restart {
	case "", Permanent, Transient, Temporary:
	default:
		return fmt.Errorf("%w: child %q: restart type %q (want permanent, transient or temporary)", ErrBadSpec, c.ID, c.Restart)
	}
	switch c.Type {
	case "", Worker, SupervisorType:
	default:
		return fmt.Errorf("%w: child %q: type %q (want worker or supervisor)", ErrBadSpec, c.ID, c.Type)
	}
	if c.Shutdown < Infinity {
		return fmt.Errorf("%w: child %q: shutdown %s", ErrBadSpec, c.ID, c.Shutdown)
	}
	return nil
}

// Validate checks a supervisor spec.
func (s Spec) Validate() error {
	switch s.Strategy {
	case "", OneForOne, OneForAll, RestForOne, Dynamic:
	default:
		return fmt.Errorf("%w: strategy %q (want one_for_one, one_for_all, rest_for_one or dynamic)", ErrBadSpec, s.Strategy)
	}
	if s.Intensity.MaxRestarts < 0 || s.Intensity.Period < 0 {
		return fmt.Errorf("%w: negative intensity", ErrBadSpec)
	}
	if s.Strategy == Dynamic && len(s.Children) > 0 {
		return fmt.Errorf("%w: a dynamic supervisor starts with no children; add them with StartChild", ErrBadSpec)
	}
	seen := map[string]bool{}
	for _, c := range s.Children {
		if err := c.Validate(false); err != nil {
			return err
		}
		if seen[c.ID] {
			return fmt.Errorf("%w: duplicate child ID %q", ErrBadSpec, c.ID)
		}
		seen[c.ID] = true
	}
	return nil
}

func (s Spec) withDefaults() Spec {
	if s.Strategy == "" {
		s.Strategy = OneForOne
	}
	if s.Intensity == (Intensity{}) {
		s.Intensity = DefaultIntensity
	}
	return s
}

func (c ChildSpec) withDefaults() ChildSpec {
	if c.Restart == "" {
		c.Restart = Permanent
	}
	if c.Type == "" {
		c.Type = Worker
	}
	if c.Shutdown == 0 {
		if c.Type == SupervisorType {
			c.Shutdown = Infinity
		} else {
			c.Shutdown = DefaultShutdown
		}
	}
	return c
}

// Start starts a top-level supervisor on rt.
func Start(rt *process.Runtime, spec Spec, opts ...process.SpawnOption) (process.PID, error) {
	if err := spec.Validate(); err != nil {
		return process.PID{}, err
	}
	return rt.Spawn(New(spec), opts...)
}

// StartLink starts a supervisor linked to the calling process.
func StartLink(p *process.Proc, spec Spec, opts ...process.SpawnOption) (process.PID, error) {
	if err := spec.Validate(); err != nil {
		return process.PID{}, err
	}
	return p.SpawnLink(New(spec), opts...)
}

// Child makes a child spec for a nested supervisor.
func Child(id string, spec Spec) ChildSpec {
	return ChildSpec{ID: id, Type: SupervisorType, Start: func() process.Behaviour { return New(spec) }}
}

// New returns the supervisor behaviour for spec, for use as a child's
// Start or with Runtime.Spawn. Validate spec first: New panics on a spec
// that does not validate, which Spawn turns into an error.
func New(spec Spec) process.Behaviour { return &sup{spec: spec.withDefaults()} }

// ChildInfo describes a child, as WhichChildren returns it.
type ChildInfo struct {
	ID       string        `json:"id"`
	PID      process.PID   `json:"pid,omitzero"`
	Type     ChildType     `json:"type"`
	Restart  RestartType   `json:"restart"`
	Shutdown time.Duration `json:"shutdown_ns"`
	State    string        `json:"state"` // running, restarting, stopped
	Restarts int           `json:"restarts"`
}

// Counts is what CountChildren returns.
type Counts struct {
	Specs       int `json:"specs"`
	Active      int `json:"active"`
	Supervisors int `json:"supervisors"`
	Workers     int `json:"workers"`
}

// Description is a supervisor's configuration and state.
type Description struct {
	Strategy      Strategy    `json:"strategy"`
	MaxRestarts   int         `json:"max_restarts"`
	Period        string      `json:"period"`
	MaxChildren   int         `json:"max_children,omitempty"`
	TotalRestarts int         `json:"total_restarts"`
	Children      []ChildInfo `json:"children"`
}

type (
	reqWhich     struct{}
	reqCount     struct{}
	reqDescribe  struct{}
	reqStart     struct{ spec ChildSpec }
	reqTerminate struct {
		id  string
		pid process.PID
	}
	reqRestart struct{ id string }
	reqDelete  struct{ id string }
	retryStart struct{ id string }
)

func call[T any](ctx context.Context, rt *process.Runtime, sup process.PID, req any) (T, error) {
	var zero T
	v, err := rt.Call(ctx, sup, req)
	if err != nil {
		return zero, err
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("%s is not a supervisor (answered %T)", sup, v)
	}
	return t, nil
}

// WhichChildren lists a supervisor's children in start order.
func WhichChildren(ctx context.Context, rt *process.Runtime, sup process.PID) ([]ChildInfo, error) {
	return call[[]ChildInfo](ctx, rt, sup, reqWhich{})
}

// CountChildren counts a supervisor's children.
func CountChildren(ctx context.Context, rt *process.Runtime, sup process.PID) (Counts, error) {
	return call[Counts](ctx, rt, sup, reqCount{})
}

// Describe returns a supervisor's strategy, intensity and children.
func Describe(ctx context.Context, rt *process.Runtime, sup process.PID) (Description, error) {
	return call[Description](ctx, rt, sup, reqDescribe{})
}

// StartChild adds a child at run time and starts it.
func StartChild(ctx context.Context, rt *process.Runtime, sup process.PID, spec ChildSpec) (process.PID, error) {
	return call[process.PID](ctx, rt, sup, reqStart{spec})
}

// TerminateChild stops a child by ID (its spec stays, except in Dynamic
// supervisors and for temporary children).
func TerminateChild(ctx context.Context, rt *process.Runtime, sup process.PID, id string) error {
	_, err := call[bool](ctx, rt, sup, reqTerminate{id: id})
	return err
}

// TerminateChildPID stops a child by PID.
func TerminateChildPID(ctx context.Context, rt *process.Runtime, sup, child process.PID) error {
	_, err := call[bool](ctx, rt, sup, reqTerminate{pid: child})
	return err
}

// RestartChild starts a stopped child again; with a running child it stops
// it first (a restart on request does not count toward the intensity).
func RestartChild(ctx context.Context, rt *process.Runtime, sup process.PID, id string) (process.PID, error) {
	return call[process.PID](ctx, rt, sup, reqRestart{id})
}

// DeleteChild removes the spec of a stopped child.
func DeleteChild(ctx context.Context, rt *process.Runtime, sup process.PID, id string) error {
	_, err := call[bool](ctx, rt, sup, reqDelete{id})
	return err
}
