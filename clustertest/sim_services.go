package clustertest

import (
	"fmt"
	"time"

	"github.com/arsenal-go/arsenal"
	"github.com/arsenal-go/arsenal/codec"
	"github.com/arsenal-go/arsenal/control"
	"github.com/arsenal-go/arsenal/placement"
	"github.com/arsenal-go/arsenal/process"
)

// The user's own kinds, typed messages and cluster services on the
// simulator: the same calls as on the real backend, in this process. A
// message to another node still goes through the codec, on the simulated
// network.

// SpawnKind starts a process of kind on node i (see Cluster.SpawnKind).
func (s *SimCluster) SpawnKind(i int, kind string, args []byte) process.PID {
	s.t.Helper()
	switch kind {
	case "", "echo", "sink":
		return mustPID(s.t, s.Spawn(i, kind))
	}
	n := s.mustNode(i)
	f, ok := arsenal.LookupKind(kind)
	if !ok {
		s.t.Fatalf("clustertest: spawn on %s: unknown kind %q (built in: echo, sink; this App's: %v)", n.Name(), kind, placement.Kinds())
	}
	b, err := f(args)
	if err != nil {
		s.t.Fatalf("clustertest: spawn %q on %s: %v", kind, n.Name(), err)
	}
	pid, err := n.Runtime().Spawn(b)
	if err != nil {
		s.t.Fatalf("clustertest: spawn %q on %s: %v", kind, n.Name(), err)
	}
	return pid
}

// SendTo sends msg to pid from node i; a value the codec cannot encode
// for another node fails the test, as on the real backend.
func (s *SimCluster) SendTo(i int, to process.PID, msg any) {
	s.t.Helper()
	n := s.mustNode(i)
	if to.Node != n.Name() {
		if err := codec.Encodable(msg); err != nil {
			s.t.Fatalf("clustertest: send %T to %s: %v", msg, to, err)
		}
	}
	n.Runtime().Send(to, msg)
}

// CallTo calls pid from node i with req.
func (s *SimCluster) CallTo(i int, to process.PID, req any) (any, error) {
	n, err := s.node(i)
	if err != nil {
		return nil, err
	}
	ctx, cancel := callCtx()
	defer cancel()
	return n.Runtime().Call(ctx, to, req)
}

// MonitorPID starts a watcher on node i that monitors pid.
func (s *SimCluster) MonitorPID(i int, pid process.PID) process.PID {
	s.t.Helper()
	return mustPID(s.t, s.watcher(i, pid.String(), false))
}

// LinkPID starts a watcher on node i linked to pid.
func (s *SimCluster) LinkPID(i int, pid process.PID) process.PID {
	s.t.Helper()
	return mustPID(s.t, s.watcher(i, pid.String(), true))
}

// Place starts a child of the distributed supervisor from node i.
func (s *SimCluster) Place(i int, spec placement.ChildSpec) (placement.Child, error) {
	an, err := s.composed(i)
	if err != nil {
		return placement.Child{}, err
	}
	ctx, cancel := callCtx()
	defer cancel()
	return an.Placement().StartChild(ctx, spec)
}

// Unplace stops the distributed child id, from node i.
func (s *SimCluster) Unplace(i int, id string) error {
	an, err := s.composed(i)
	if err != nil {
		return err
	}
	ctx, cancel := callCtx()
	defer cancel()
	return an.Placement().StopChild(ctx, id)
}

// Lookup returns the PID registered under name, as node i sees it.
func (s *SimCluster) Lookup(i int, name string) (process.PID, bool) {
	an, err := s.composed(i)
	if err != nil {
		return process.PID{}, false
	}
	return an.Registry().Whereis(name)
}

// CallName calls the process registered under name, from node i.
func (s *SimCluster) CallName(i int, name string, req any) (any, error) {
	an, err := s.composed(i)
	if err != nil {
		return nil, err
	}
	ctx, cancel := callCtx()
	defer cancel()
	return an.Registry().Call(ctx, name, req)
}

// SendName sends msg to the process registered under name, from node i.
func (s *SimCluster) SendName(i int, name string, msg any) error {
	an, err := s.composed(i)
	if err != nil {
		return err
	}
	if pid, ok := an.Registry().Whereis(name); ok && pid.Node != an.Name() {
		if err := codec.Encodable(msg); err != nil {
			return fmt.Errorf("send %T to %q: %w", msg, name, err)
		}
	}
	return an.Registry().Send(name, msg)
}

// Services returns the state of node i's cluster services.
func (s *SimCluster) Services(i int) (control.ServicesState, error) {
	an, err := s.composed(i)
	if err != nil {
		return control.ServicesState{}, err
	}
	return control.Services(an.Registry(), an.Placement()), nil
}

// Placement returns node i's placement: status, children, local PIDs.
func (s *SimCluster) Placement(i int) (control.PlacementState, error) {
	an, err := s.composed(i)
	if err != nil {
		return control.PlacementState{}, err
	}
	pl := an.Placement()
	return control.PlacementState{Status: pl.Status(), Children: pl.Children(), Local: pl.LocalPIDs()}, nil
}

// WaitServicesReady waits until the cluster has converged and its
// services are ready: see Harness.
func (s *SimCluster) WaitServicesReady(within time.Duration) {
	s.t.Helper()
	waitServicesReady(s, singletonsOf(s.opts), within)
}
