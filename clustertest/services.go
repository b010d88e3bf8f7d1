package clustertest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/arsenal-go/arsenal/codec"
	"github.com/arsenal-go/arsenal/control"
	"github.com/arsenal-go/arsenal/internal/testutil"
	"github.com/arsenal-go/arsenal/placement"
	"github.com/arsenal-go/arsenal/process"
)

// The user's own kinds, typed messages and cluster services, on the real
// backend: every value goes through the codec (package codec), so the test
// process must know the types too (Options.App registers them).

func encode(v any) ([]byte, error) {
	b, err := codec.Append(nil, v)
	if err != nil {
		return nil, fmt.Errorf("clustertest: encode %T: %w (register the type: Options.App, or codec.Register)", v, err)
	}
	return b, nil
}

func decode(b []byte) (any, error) {
	v, n, err := codec.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("clustertest: decode the reply: %w", err)
	}
	if n != len(b) {
		return nil, errors.New("clustertest: decode the reply: trailing bytes")
	}
	return v, nil
}

func mustPID(t interface{ Fatalf(string, ...any) }, s string) process.PID {
	pid, err := process.ParsePID(s)
	if err != nil {
		t.Fatalf("clustertest: the node answered a bad PID %q: %v", s, err)
	}
	return pid
}

// SpawnKind starts a process of kind on node i: a kind of the App the
// node runs (made from args), or a built-in helper (echo, sink,
// supervisor).
func (c *Cluster) SpawnKind(i int, kind string, args []byte) process.PID {
	c.t.Helper()
	var pid string
	c.at(i).MustDo("spawn", control.Spawn{Kind: kind, KindArgs: args}, &pid)
	return mustPID(c.t, pid)
}

// SendTo sends msg, a value of any registered type, to pid from a fresh
// process on node i. A value the codec cannot encode fails the test.
func (c *Cluster) SendTo(i int, to process.PID, msg any) {
	c.t.Helper()
	b, err := encode(msg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.at(i).MustDo("send", control.Message{To: to.String(), Value: b}, nil)
}

// CallTo calls pid from node i with req and returns the reply, decoded.
func (c *Cluster) CallTo(i int, to process.PID, req any) (any, error) {
	b, err := encode(req)
	if err != nil {
		return nil, err
	}
	var v control.Value
	if err := c.at(i).Do("call", control.Message{To: to.String(), Value: b, Timeout: callTimeout()}, &v); err != nil {
		return nil, err
	}
	return decode(v.Value)
}

// MonitorPID starts a watcher on node i that monitors pid; the DOWN goes
// to the History. It returns the watcher.
func (c *Cluster) MonitorPID(i int, pid process.PID) process.PID {
	c.t.Helper()
	return mustPID(c.t, c.Monitor(i, pid.String()))
}

// LinkPID starts a watcher on node i linked to pid (trapping exits); the
// EXIT goes to the History.
func (c *Cluster) LinkPID(i int, pid process.PID) process.PID {
	c.t.Helper()
	return mustPID(c.t, c.Link(i, pid.String()))
}

// Place starts a child of the distributed supervisor from node i.
func (c *Cluster) Place(i int, spec placement.ChildSpec) (placement.Child, error) {
	var ch placement.Child
	err := c.at(i).Do("place", control.Place{ID: spec.ID, Kind: spec.Kind, KindArgs: spec.Args, Name: spec.Name,
		Restart: spec.Restart, Strategy: string(spec.Strategy)}, &ch)
	if err == nil {
		c.placedByTest(spec.ID, true)
	}
	return ch, err
}

// Unplace stops the distributed child id, from node i.
func (c *Cluster) Unplace(i int, id string) error {
	err := c.at(i).Do("unplace", map[string]string{"id": id}, nil)
	if err == nil {
		c.placedByTest(id, false)
	}
	return err
}

// Lookup returns the PID registered cluster-wide under name, as node i
// sees it.
func (c *Cluster) Lookup(i int, name string) (process.PID, bool) {
	var s string
	if err := c.at(i).Do("whereis_global", map[string]string{"name": name}, &s); err != nil {
		return process.PID{}, false
	}
	pid, err := process.ParsePID(s)
	return pid, err == nil
}

// CallName calls the process registered cluster-wide under name, from
// node i, and returns its reply, decoded.
func (c *Cluster) CallName(i int, name string, req any) (any, error) {
	b, err := encode(req)
	if err != nil {
		return nil, err
	}
	var v control.Value
	if err := c.at(i).Do("registry_call", control.Message{Name: name, Value: b, Timeout: callTimeout()}, &v); err != nil {
		return nil, err
	}
	return decode(v.Value)
}

// SendName sends msg to the process registered cluster-wide under name,
// from node i.
func (c *Cluster) SendName(i int, name string, msg any) error {
	b, err := encode(msg)
	if err != nil {
		return err
	}
	return c.at(i).Do("registry_send", control.Message{Name: name, Value: b}, nil)
}

// Services returns the state of node i's cluster services.
func (c *Cluster) Services(i int) (control.ServicesState, error) {
	var s control.ServicesState
	err := c.at(i).Do("services", nil, &s)
	return s, err
}

// Placement returns node i's placement: status, children, local PIDs.
func (c *Cluster) Placement(i int) (control.PlacementState, error) {
	var s control.PlacementState
	err := c.at(i).Do("placement", nil, &s)
	return s, err
}

// WaitServicesReady waits until the cluster has converged and its
// services are ready: see Harness.
func (c *Cluster) WaitServicesReady(within time.Duration) {
	c.t.Helper()
	waitServicesReady(c, c.singletons(), within)
}

func callTimeout() string { return testutil.Scale(5 * time.Second).String() }

// singletons are the App's singletons, which must run before the
// services count as ready.
func singletonsOf(o Options) []placement.ChildSpec {
	if o.App == nil {
		return nil
	}
	return o.App.Singletons
}

func (c *Cluster) singletons() []placement.ChildSpec { return singletonsOf(c.opts) }

// servicesReady: every observer has converged; its placement is up, with
// no decision pending; every observer sees the same registry and the same
// distributed children, each running; and each singleton runs, with its
// name registered.
func servicesReady(h Harness, singletons []placement.ChildSpec) (bool, string) {
	if ok, why := converged(h); !ok {
		return false, why
	}
	var first *control.ServicesState
	var firstName string
	for _, i := range observers(h) {
		s, err := h.Services(i)
		if err != nil {
			return false, fmt.Sprintf("%s: %v", h.NodeName(i), err)
		}
		switch {
		case !s.PlacementUp:
			return false, fmt.Sprintf("%s: placement down: %s", h.NodeName(i), s.PlacementReason)
		case s.PlacementPending:
			return false, fmt.Sprintf("%s: a split-brain decision is pending", h.NodeName(i))
		}
		for id, node := range s.Children {
			if node == "" {
				return false, fmt.Sprintf("%s: child %q is not running", h.NodeName(i), id)
			}
		}
		for _, sp := range singletons {
			if s.Children[sp.ID] == "" {
				return false, fmt.Sprintf("%s: singleton %q is not running", h.NodeName(i), sp.ID)
			}
			if sp.Name != "" && s.Registry[sp.Name] == "" {
				return false, fmt.Sprintf("%s: singleton name %q is not registered", h.NodeName(i), sp.Name)
			}
		}
		if first == nil {
			first, firstName = &s, h.NodeName(i)
			continue
		}
		if !maps.Equal(first.Registry, s.Registry) {
			return false, fmt.Sprintf("registry of %s %s differs from %s's %s", h.NodeName(i), digest(s.Registry), firstName, digest(first.Registry))
		}
		if !maps.Equal(first.Children, s.Children) {
			return false, fmt.Sprintf("children of %s %s differ from %s's %s", h.NodeName(i), digest(s.Children), firstName, digest(first.Children))
		}
	}
	return true, ""
}

func digest(m map[string]string) string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return "{" + strings.Join(out, " ") + "}"
}

func waitServicesReady(h Harness, singletons []placement.ChildSpec, within time.Duration) {
	h.T().Helper()
	d := poll(h, within, "cluster services ready", func() (bool, string) { return servicesReady(h, singletons) })
	h.History().Note("cluster services ready (waited %s)", d.Round(time.Millisecond))
}

// callCtx is the context of a call made in this process (simulator).
func callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), testutil.Scale(5*time.Second))
}
