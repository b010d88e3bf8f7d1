package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/arsenal-go/arsenal/internal/control"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/placement"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/registry"
)

// The cluster services every node runs: the cluster-wide registry and the
// distributed supervisor (placement), their flags, and their control
// commands for harnesses.

func init() {
	// "echo" is the child kind the control protocol, the CLI examples and
	// the tests start: an echo server whose argument is ignored.
	placement.RegisterKind("echo", func([]byte) (process.Behaviour, error) { return echoServer{}, nil })
}

type serviceFlags struct {
	splitBrain, quorum, stableAfter, removalMargin, strategy *string
}

func addServiceFlags(o *optionSet) serviceFlags {
	return serviceFlags{
		splitBrain:    o.add("split-brain", "ARSENAL_SPLIT_BRAIN", "keep-majority", "which side of a partition keeps running distributed children: keep-majority, static-quorum, keep-oldest or down-all"),
		quorum:        o.add("quorum", "ARSENAL_QUORUM", "0", "minimum side size for --split-brain static-quorum"),
		stableAfter:   o.add("stable-after", "ARSENAL_STABLE_AFTER", "", "membership must be stable this long before a split-brain decision (default by profile: fast 1s, local 3s, lan 7s, wan 20s)"),
		removalMargin: o.add("removal-margin", "ARSENAL_REMOVAL_MARGIN", "", "extra wait before a lost node's children restart elsewhere (default: the profile's detection spread, at least --stable-after)"),
		strategy:      o.add("placement", "ARSENAL_PLACEMENT", "rendezvous", "where new distributed children start: rendezvous, round-robin, least-loaded or local"),
	}
}

func (s serviceFlags) placementConfig() (placement.Config, error) {
	var c placement.Config
	var errs []error
	var err error
	if c.SplitBrain, err = placement.ParsePolicy(*s.splitBrain); err != nil {
		errs = append(errs, fmt.Errorf("--split-brain: %w", err))
	}
	if c.Strategy, err = placement.ParseStrategy(*s.strategy); err != nil {
		errs = append(errs, fmt.Errorf("--placement: %w", err))
	}
	if c.Quorum, err = strconv.Atoi(*s.quorum); err != nil || c.Quorum < 0 {
		errs = append(errs, fmt.Errorf("--quorum %q: want a whole number", *s.quorum))
	}
	for _, d := range []struct {
		flag string
		v    *string
		to   *time.Duration
	}{{"--stable-after", s.stableAfter, &c.StableAfter}, {"--removal-margin", s.removalMargin, &c.RemovalMargin}} {
		if *d.v == "" {
			continue
		}
		if *d.to, err = time.ParseDuration(*d.v); err != nil || *d.to <= 0 {
			errs = append(errs, fmt.Errorf("%s %q: want a positive duration such as 5s", d.flag, *d.v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// services are a node's registry and placement, with a bounded history of
// their events for harnesses (the "service_history" command): a test can
// read what happened on a node whose network is cut, or just before it is
// killed.
type services struct {
	reg *registry.Registry
	pl  *placement.Placement

	mu      sync.Mutex
	regHist []registry.Event
	plHist  []placement.Event
}

// maxHistory bounds each history; older events are dropped.
const maxHistory = 20000

func (s *services) record() {
	regEvents, _ := s.reg.Subscribe(4096)
	plEvents, _ := s.pl.Subscribe(4096)
	go func() {
		for e := range regEvents {
			s.mu.Lock()
			s.regHist = append(s.regHist, e)
			if len(s.regHist) > maxHistory {
				s.regHist = s.regHist[len(s.regHist)-maxHistory:]
			}
			s.mu.Unlock()
		}
	}()
	go func() {
		for e := range plEvents {
			s.mu.Lock()
			s.plHist = append(s.plHist, e)
			if len(s.plHist) > maxHistory {
				s.plHist = s.plHist[len(s.plHist)-maxHistory:]
			}
			s.mu.Unlock()
		}
	}()
}

// serviceHistory is the result of the "service_history" command.
type serviceHistory struct {
	Registry  []registry.Event  `json:"registry"`
	Placement []placement.Event `json:"placement"`
}

func (s *services) history() serviceHistory {
	s.mu.Lock()
	defer s.mu.Unlock()
	return serviceHistory{Registry: append([]registry.Event{}, s.regHist...), Placement: append([]placement.Event{}, s.plHist...)}
}

func startServices(n *node.Node, pcfg placement.Config, log *slog.Logger) (*services, error) {
	reg, err := registry.Start(n.Runtime(), n.Cluster(), registry.Config{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	pcfg.Registry, pcfg.Logger = reg, log
	pl, err := placement.Start(n, pcfg)
	if err != nil {
		reg.Stop()
		return nil, fmt.Errorf("placement: %w", err)
	}
	s := &services{reg: reg, pl: pl}
	s.record()
	return s, nil
}

// stop hands the children off and deletes this node's names, before the
// node leaves.
func (s *services) stop(ctx context.Context, log *slog.Logger) {
	if err := s.pl.Stop(ctx); err != nil {
		log.Warn("placement: hand-off incomplete", "err", err)
	}
	s.reg.Stop()
}

// attach makes the controller serve the services' commands.
func (c *controller) attach(s *services) { c.svc = s }

type serviceArgs struct {
	Name     string            `json:"name"`
	PID      string            `json:"pid"`
	Meta     map[string]string `json:"meta"`
	Msg      string            `json:"msg"`
	ID       string            `json:"id"`
	Kind     string            `json:"kind"`
	Args     string            `json:"args"`
	Restart  string            `json:"restart"`
	Strategy string            `json:"strategy"`
	Timeout  string            `json:"timeout"`
}

// PlacementState is the result of the "placement" command.
type placementState struct {
	Status   placement.Status       `json:"status"`
	Children []placement.Child      `json:"children"`
	Local    map[string]process.PID `json:"local"`
}

// execService runs the services' control commands; ok is false for
// commands it does not know.
func (c *controller) execService(cmd control.Command) (res any, ok bool, err error) {
	switch cmd.Cmd {
	case "register", "unregister", "whereis_global", "registry", "registry_call", "place", "unplace", "placement", "service_history":
	default:
		return nil, false, nil
	}
	if c.svc == nil {
		return nil, true, errors.New("this node runs without the registry and placement")
	}
	var a serviceArgs
	if len(cmd.Args) > 0 {
		if err := json.Unmarshal(cmd.Args, &a); err != nil {
			return nil, true, fmt.Errorf("args: %w", err)
		}
	}
	reg, pl, rt := c.svc.reg, c.svc.pl, c.n.Runtime()
	switch cmd.Cmd {
	case "register":
		// Register an existing local process (pid), or a new echo server.
		var pid process.PID
		if a.PID != "" {
			if pid, err = process.ParsePID(a.PID); err != nil {
				return nil, true, err
			}
		} else if pid, err = rt.Spawn(echoServer{}); err != nil {
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
		return nil, true, reg.Unregister(a.Name)
	case "whereis_global":
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
	case "registry_call":
		d := 5 * time.Second
		if a.Timeout != "" {
			if d, err = time.ParseDuration(a.Timeout); err != nil {
				return nil, true, err
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		v, err := reg.Call(ctx, a.Name, a.Msg)
		if err != nil {
			return nil, true, err
		}
		return fmt.Sprint(v), true, nil
	case "place":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		kind := a.Kind
		if kind == "" {
			kind = "echo"
		}
		ch, err := pl.StartChild(ctx, placement.ChildSpec{ID: a.ID, Kind: kind, Args: []byte(a.Args), Name: a.Name,
			Restart: a.Restart, Strategy: placement.Strategy(a.Strategy)})
		return ch, true, err
	case "unplace":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return nil, true, pl.StopChild(ctx, a.ID)
	case "placement":
		return placementState{Status: pl.Status(), Children: pl.Children(), Local: pl.LocalPIDs()}, true, nil
	case "service_history":
		return c.svc.history(), true, nil
	}
	return nil, false, nil
}
