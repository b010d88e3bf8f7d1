package supervisor

import (
	"fmt"
	"strconv"
	"time"

	"github.com/arsenal-go/arsenal/process"
)

type child struct {
	spec     ChildSpec
	pid      process.PID
	restarts int
	state    string
}

type sup struct {
	spec     Spec
	children []*child
	history  []time.Time // restart times within the intensity period
	total    int
	nextID   int
}

func (s *sup) BehaviourName() string { return "supervisor" }
func (s *sup) IsSupervisor() bool    { return true }

func (s *sup) Init(p *process.Proc) error {
	if err := s.spec.Validate(); err != nil {
		return err
	}
	p.TrapExits(true)
	for _, cs := range s.spec.Children {
		c := &child{spec: cs.withDefaults()}
		s.children = append(s.children, c)
		if err := s.startChild(p, c); err != nil {
			s.stopAll(p)
			return fmt.Errorf("starting child %q: %w", cs.ID, err)
		}
	}
	return nil
}

func (s *sup) startChild(p *process.Proc, c *child) error {
	opts := []process.SpawnOption{process.WithRestarts(c.restarts)}
	if c.spec.Name != "" {
		opts = append(opts, process.WithName(c.spec.Name))
	}
	var (
		pid process.PID
		err error
	)
	if c.spec.Start != nil {
		b := c.spec.Start()
		if b == nil {
			return process.ErrNilBehaviour
		}
		pid, err = p.SpawnLink(b, opts...)
	} else {
		pid, err = p.SpawnFuncLink(c.spec.StartFunc, opts...)
	}
	if err != nil {
		c.state = "restarting"
		return err
	}
	c.pid, c.state = pid, "running"
	return nil
}

// stopChild stops one child: unlink, Shutdown, wait up to its timeout,
// then Kill. It returns once the child is gone.
func (s *sup) stopChild(p *process.Proc, c *child) {
	if c.pid.IsZero() {
		return
	}
	pid := c.pid
	c.pid, c.state = process.PID{}, "stopped"
	rt := p.Runtime()
	p.Unlink(pid)
	gone := make(chan struct{})
	cancel := rt.Watch(pid, func(process.DownMsg) { close(gone) })
	defer cancel()
	if c.spec.Shutdown == BrutalKill {
		rt.Exit(pid, process.Kill)
		<-gone
		return
	}
	p.Exit(pid, process.Shutdown)
	if c.spec.Shutdown == Infinity {
		<-gone
		return
	}
	t := time.NewTimer(c.spec.Shutdown)
	defer t.Stop()
	select {
	case <-gone:
	case <-t.C:
		rt.Exit(pid, process.Kill)
		<-gone
	}
}

// stopAll stops the running children in reverse start order.
func (s *sup) stopAll(p *process.Proc) {
	for i := len(s.children) - 1; i >= 0; i-- {
		s.stopChild(p, s.children[i])
	}
}

func (s *sup) Terminate(p *process.Proc, _ process.Reason) { s.stopAll(p) }

func (s *sup) find(pid process.PID) int {
	for i, c := range s.children {
		if c.pid == pid {
			return i
		}
	}
	return -1
}

func (s *sup) findID(id string) int {
	for i, c := range s.children {
		if c.spec.ID == id {
			return i
		}
	}
	return -1
}

func (s *sup) HandleInfo(p *process.Proc, msg any) error {
	switch m := msg.(type) {
	case process.ExitMsg:
		if m.From.IsZero() || m.From == p.Parent() {
			// An order to stop from the runtime, an operator or the parent.
			return m.Reason
		}
		i := s.find(m.From)
		if i < 0 {
			return nil // a child we already stopped, or a stray link
		}
		return s.childExited(p, i, m.Reason)
	case retryStart:
		if i := s.findID(m.id); i >= 0 && s.children[i].pid.IsZero() && s.children[i].state == "restarting" {
			return s.restartFrom(p, i, process.NoProc)
		}
	}
	return nil
}

func (s *sup) childExited(p *process.Proc, i int, reason process.Reason) error {
	c := s.children[i]
	c.pid = process.PID{}
	restart := false
	switch c.spec.Restart {
	case Permanent:
		restart = true
	case Transient:
		restart = !process.IsShutdown(reason)
	}
	if !restart {
		c.state = "stopped"
		if c.spec.Restart == Temporary || s.spec.Strategy == Dynamic {
			s.children = append(s.children[:i], s.children[i+1:]...)
		}
		return nil
	}
	return s.restartFrom(p, i, reason)
}

// restartFrom applies the strategy after child i exited with reason.
func (s *sup) restartFrom(p *process.Proc, i int, reason process.Reason) error {
	c := s.children[i]
	now := time.Now()
	keep := s.history[:0]
	for _, t := range s.history {
		if now.Sub(t) < s.spec.Intensity.Period {
			keep = append(keep, t)
		}
	}
	s.history = append(keep, now)
	if len(s.history) > s.spec.Intensity.MaxRestarts {
		return &IntensityError{Intensity: s.spec.Intensity, Child: c.spec.ID, Reason: reason}
	}
	s.total++
	var group []*child
	switch s.spec.Strategy {
	case OneForAll:
		group = s.children
	case RestForOne:
		group = s.children[i:]
	default:
		group = []*child{c}
	}
	for j := len(group) - 1; j >= 0; j-- {
		if group[j] != c {
			s.stopChild(p, group[j])
		}
	}
	for _, g := range group {
		if !g.pid.IsZero() {
			continue
		}
		if g.spec.Restart == Temporary && g != c {
			continue
		}
		g.restarts++
		if err := s.startChild(p, g); err != nil {
			// Try again through the mailbox, so the failures count toward
			// the intensity and other messages are not starved.
			p.Send(p.Self(), retryStart{g.spec.ID})
			return nil
		}
	}
	return nil
}

func (s *sup) HandleCall(p *process.Proc, _ process.From, req any) (any, error) {
	switch r := req.(type) {
	case reqWhich:
		return s.which(), nil
	case reqCount:
		var n Counts
		for _, c := range s.children {
			n.Specs++
			if !c.pid.IsZero() {
				n.Active++
			}
			if c.spec.Type == SupervisorType {
				n.Supervisors++
			} else {
				n.Workers++
			}
		}
		return n, nil
	case reqDescribe:
		return Description{
			Strategy: s.spec.Strategy, MaxRestarts: s.spec.Intensity.MaxRestarts,
			Period: s.spec.Intensity.Period.String(), MaxChildren: s.spec.MaxChildren,
			TotalRestarts: s.total, Children: s.which(),
		}, nil
	case reqStart:
		return s.add(p, r.spec), nil
	case reqTerminate:
		i := -1
		if r.id != "" {
			i = s.findID(r.id)
		} else {
			i = s.find(r.pid)
		}
		if i < 0 {
			return fmt.Errorf("%w: %s%s", ErrNotFound, r.id, pidText(r.pid)), nil
		}
		c := s.children[i]
		s.stopChild(p, c)
		if c.spec.Restart == Temporary || s.spec.Strategy == Dynamic {
			s.children = append(s.children[:i], s.children[i+1:]...)
		}
		return true, nil
	case reqRestart:
		i := s.findID(r.id)
		if i < 0 {
			return fmt.Errorf("%w: %q", ErrNotFound, r.id), nil
		}
		c := s.children[i]
		s.stopChild(p, c)
		c.restarts++
		if err := s.startChild(p, c); err != nil {
			return err, nil
		}
		return c.pid, nil
	case reqDelete:
		i := s.findID(r.id)
		if i < 0 {
			return fmt.Errorf("%w: %q", ErrNotFound, r.id), nil
		}
		if !s.children[i].pid.IsZero() {
			return fmt.Errorf("%w: %q; terminate it first", ErrRunning, r.id), nil
		}
		s.children = append(s.children[:i], s.children[i+1:]...)
		return true, nil
	}
	return fmt.Errorf("supervisor: unknown request %T", req), nil
}

func pidText(p process.PID) string {
	if p.IsZero() {
		return ""
	}
	return p.String()
}

func (s *sup) add(p *process.Proc, cs ChildSpec) any {
	dynamic := s.spec.Strategy == Dynamic
	if dynamic && cs.ID == "" {
		s.nextID++
		cs.ID = "child-" + strconv.Itoa(s.nextID)
	}
	if err := cs.Validate(dynamic); err != nil {
		return err
	}
	if s.findID(cs.ID) >= 0 {
		return fmt.Errorf("%w: child ID %q already exists", ErrBadSpec, cs.ID)
	}
	if dynamic && s.spec.MaxChildren > 0 && len(s.children) >= s.spec.MaxChildren {
		return fmt.Errorf("%w (%d)", ErrMaxChildren, s.spec.MaxChildren)
	}
	c := &child{spec: cs.withDefaults()}
	if err := s.startChild(p, c); err != nil {
		return err
	}
	s.children = append(s.children, c)
	return c.pid
}

func (s *sup) which() []ChildInfo {
	out := make([]ChildInfo, 0, len(s.children))
	for _, c := range s.children {
		out = append(out, ChildInfo{
			ID: c.spec.ID, PID: c.pid, Type: c.spec.Type, Restart: c.spec.Restart,
			Shutdown: c.spec.Shutdown, State: c.state, Restarts: c.restarts,
		})
	}
	return out
}

func (s *sup) HandleCast(*process.Proc, any) error { return nil }
