package control

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/arsenal-go/arsenal/placement"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/registry"
)

// The commands of the cluster services: the cluster-wide registry and the
// distributed supervisor (placement).

// history is a bounded record of a node's registry and placement events,
// for the "service_history" command: a test can read what happened on a
// node whose network is cut, or just before it is killed.
type history struct {
	mu        sync.Mutex
	registry  []registry.Event
	placement []placement.Event
}

// maxHistory bounds each history; older events are dropped.
const maxHistory = 20000

func record(reg *registry.Registry, pl *placement.Placement) (*history, func()) {
	h := &history{}
	regEvents, stopReg := reg.Subscribe(4096)
	plEvents, stopPl := pl.Subscribe(4096)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for e := range regEvents {
			h.mu.Lock()
			h.registry = append(h.registry, e)
			if len(h.registry) > maxHistory {
				h.registry = h.registry[len(h.registry)-maxHistory:]
			}
			h.mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for e := range plEvents {
			h.mu.Lock()
			h.placement = append(h.placement, e)
			if len(h.placement) > maxHistory {
				h.placement = h.placement[len(h.placement)-maxHistory:]
			}
			h.mu.Unlock()
		}
	}()
	return h, func() { stopReg(); stopPl(); wg.Wait() }
}

// ServiceHistory is the result of the "service_history" command.
type ServiceHistory struct {
	Registry  []registry.Event  `json:"registry"`
	Placement []placement.Event `json:"placement"`
}

func (h *history) get() ServiceHistory {
	h.mu.Lock()
	defer h.mu.Unlock()
	return ServiceHistory{Registry: append([]registry.Event{}, h.registry...), Placement: append([]placement.Event{}, h.placement...)}
}

// PlacementState is the result of the "placement" command.
type PlacementState struct {
	// Status is the node's placement status (its split-brain side).
	Status placement.Status `json:"status"`
	// Children are the distributed children the node knows of, sorted
	// by ID, wherever they run.
	Children []placement.Child `json:"children"`
	// Local are the children running on this node: child ID → PID.
	Local map[string]process.PID `json:"local"`
}

// ServicesState is the result of the "services" command: whether the
// node's cluster services are ready (see docs/CONTROL.md).
type ServicesState struct {
	// Placement is this node's split-brain decision, with no other
	// decision pending.
	PlacementUp      bool   `json:"placement_up"`
	PlacementPending bool   `json:"placement_pending"`
	PlacementReason  string `json:"placement_reason"`
	// Registry is the node's view of the cluster-wide names, name → PID.
	Registry map[string]string `json:"registry"`
	// Children are the distributed children this node knows of, id →
	// node that runs it ("" while it is not running anywhere).
	Children map[string]string `json:"children"`
}

type registerArgs struct {
	Name string            `json:"name"`
	PID  string            `json:"pid"`
	Meta map[string]string `json:"meta"`
	ID   string            `json:"id"`
}

// execService runs the services' commands; ok is false for commands it
// does not know.
func (c *session) execService(cmd Command) (res any, ok bool, err error) {
	switch cmd.Cmd {
	case "register", "unregister", "whereis_global", "registry", "registry_call", "registry_send",
		"place", "unplace", "placement", "service_history", "services":
	default:
		return nil, false, nil
	}
	reg, pl, rt := c.s.t.Registry, c.s.t.Placement, c.n.Runtime()
	if reg == nil || pl == nil {
		return nil, true, errors.New("this node runs without the registry and placement")
	}
	switch cmd.Cmd {
	case "register":
		var a registerArgs
		if err := decodeArgs(cmd, &a); err != nil {
			return nil, true, err
		}
		// Register an existing local process (pid), or a new echo server.
		var pid process.PID
		if a.PID != "" {
			if pid, err = process.ParsePID(a.PID); err != nil {
				return nil, true, err
			}
		} else if pid, err = rt.Spawn(Echo{}); err != nil {
			return nil, true, err
		}
		if err := reg.Register(a.Name, pid, a.Meta); err != nil {
			if a.PID == "" {
				_ = rt.Kill(pid)
			}
			return nil, true, err
		}
		return pid.String(), true, nil
	case "unregister":
		var a registerArgs
		if err := decodeArgs(cmd, &a); err != nil {
			return nil, true, err
		}
		return nil, true, reg.Unregister(a.Name)
	case "whereis_global":
		var a registerArgs
		if err := decodeArgs(cmd, &a); err != nil {
			return nil, true, err
		}
		pid, found := reg.Whereis(a.Name)
		if !found {
			return nil, true, fmt.Errorf("%q is not registered", a.Name)
		}
		return pid.String(), true, nil
	case "registry":
		out := map[string]string{}
		for name, pid := range reg.Digest() {
			out[name] = pid.String()
		}
		return out, true, nil
	case "registry_call", "registry_send":
		var a Message
		if err := decodeArgs(cmd, &a); err != nil {
			return nil, true, err
		}
		msg, err := a.message()
		if err != nil {
			return nil, true, err
		}
		if cmd.Cmd == "registry_send" {
			if pid, ok := reg.Whereis(a.Name); ok {
				if err := sendable(pid, rt, msg); err != nil {
					return nil, true, err
				}
			}
			return nil, true, reg.Send(a.Name, msg)
		}
		d, err := a.timeout()
		if err != nil {
			return nil, true, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		v, err := reg.Call(ctx, a.Name, msg)
		if err != nil {
			return nil, true, err
		}
		res, err := a.reply(v)
		return res, true, err
	case "place":
		var a Place
		if err := decodeArgs(cmd, &a); err != nil {
			return nil, true, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		kind := a.Kind
		if kind == "" {
			kind = "echo"
		}
		args := a.KindArgs
		if args == nil && a.Args != "" {
			args = []byte(a.Args)
		}
		ch, err := pl.StartChild(ctx, placement.ChildSpec{ID: a.ID, Kind: kind, Args: args, Name: a.Name,
			Restart: a.Restart, Strategy: placement.Strategy(a.Strategy)})
		return ch, true, err
	case "unplace":
		var a registerArgs
		if err := decodeArgs(cmd, &a); err != nil {
			return nil, true, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return nil, true, pl.StopChild(ctx, a.ID)
	case "placement":
		return PlacementState{Status: pl.Status(), Children: pl.Children(), Local: pl.LocalPIDs()}, true, nil
	case "service_history":
		if c.s.hist == nil {
			return ServiceHistory{}, true, nil
		}
		return c.s.hist.get(), true, nil
	case "services":
		return Services(reg, pl), true, nil
	}
	return nil, false, nil
}

// Services is the state of a node's cluster services, as the "services"
// command answers it.
func Services(reg *registry.Registry, pl *placement.Placement) ServicesState {
	st := pl.Status()
	out := ServicesState{PlacementUp: st.Up, PlacementPending: st.Pending != nil, PlacementReason: st.Reason,
		Registry: map[string]string{}, Children: map[string]string{}}
	for name, pid := range reg.Digest() {
		out.Registry[name] = pid.String()
	}
	for _, ch := range pl.Children() {
		if ch.Status == "running" {
			out.Children[ch.ID] = ch.Node
		} else {
			out.Children[ch.ID] = ""
		}
	}
	return out
}
