package arsenal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/arsenal-go/arsenal/control"
	"github.com/arsenal-go/arsenal/inspect"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/ops"
	"github.com/arsenal-go/arsenal/ops/operations"
	"github.com/arsenal-go/arsenal/placement"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/registry"
	"github.com/arsenal-go/arsenal/supervisor"
	"github.com/arsenal-go/arsenal/transport"
	"github.com/arsenal-go/arsenal/web"
	"github.com/prometheus/client_golang/prometheus"
)

// Node is a composed Arsenal node: a node (its runtime, links and
// membership; the embedded *node.Node), the cluster-wide registry, the
// distributed supervisor, the operations API with health and metrics, the
// control channel, and the App's trees, singletons and hooks.
type Node struct {
	*node.Node
	cfg    Config
	log    *slog.Logger
	reg    *registry.Registry
	pl     *placement.Placement
	ctl    *control.Server
	faults *transport.Faults
	trees  []process.PID

	// steps are what started, in order; Stop undoes them in reverse.
	steps []step
	bg    context.CancelFunc // background loops (health, singletons)
	bgCtx context.Context
	bgWG  sync.WaitGroup

	stopOnce sync.Once
	stopErr  error
	stopped  chan struct{}
}

// step is one started part of the node: stop undoes it at a graceful
// stop; crash (nil: stop) at a crash, after the network is gone.
type step struct {
	name  string
	stop  func(ctx context.Context) error
	crash func()
}

var nodes sync.Map // *process.Runtime → *Node

// From returns the composed node that runs the process p (nil if p's
// runtime is not one): behaviours find the registry and the placement
// through it.
func From(p *process.Proc) *Node {
	if v, ok := nodes.Load(p.Runtime()); ok {
		return v.(*Node)
	}
	return nil
}

// Registry returns the node's part of the cluster-wide registry.
func (n *Node) Registry() *registry.Registry { return n.reg }

// Placement returns the node's part of the distributed supervisor.
func (n *Node) Placement() *placement.Placement { return n.pl }

// Logger returns the node's logger.
func (n *Node) Logger() *slog.Logger { return n.log }

// HTTPAddr returns the address the node serves HTTP on ("" if none).
func (n *Node) HTTPAddr() string { return n.cfg.HTTPAddr }

// Trees returns the top supervisors of the App's trees, in order.
func (n *Node) Trees() []process.PID { return append([]process.PID(nil), n.trees...) }

// Faults returns the network fault hooks (nil unless Config.Faults).
func (n *Node) Faults() *transport.Faults { return n.faults }

// Done is closed when the node has stopped (Stop or Crash).
func (n *Node) Done() <-chan struct{} { return n.stopped }

// StopRequested receives why a control client asked the node to stop
// (the "stop" command, or the end of the stdio channel); nil without a
// control channel. Main stops the node when it does.
func (n *Node) StopRequested() <-chan string {
	if n.ctl == nil {
		return nil
	}
	return n.ctl.Done()
}

// Start starts a composed node, in this order: the App is checked and its
// message types and kinds registered; the HTTP address is bound; the
// node (links and membership) starts and joins; then the registry, the
// distributed supervisor, the operations API, the App's trees, its
// singletons, its Start hook and the control channel. If any step fails,
// the steps before it are undone and the error names the step. Stop
// undoes them in reverse.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Node.Logger == nil {
		cfg.Node.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("node", cfg.Node.Name)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.App.register(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Node.Logger, stopped: make(chan struct{})}
	ln := cfg.HTTPListener
	if ln == nil && cfg.HTTPAddr != "" {
		var err error
		if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("HTTP address %s: %w (pick another port, or 0 for any free one)", cfg.HTTPAddr, err)
		}
	}
	if ln != nil {
		n.cfg.HTTPAddr = ln.Addr().String()
		cfg.Node.HTTPAddr = n.cfg.HTTPAddr
		n.steps = append(n.steps, step{name: "http listener", stop: func(context.Context) error { ln.Close(); return nil }})
	}
	if cfg.Faults {
		n.faults = transport.NewFaults()
		cfg.Node.Faults = n.faults
	}
	nn, err := node.Start(ctx, cfg.Node)
	if err != nil {
		n.undo(context.Background())
		return nil, err
	}
	return n.compose(ctx, nn, ln)
}

// Attach composes a node on nn, a node started by its caller (the
// simulator, or a program that configures its node itself): everything
// Start does after the node starts. cfg.Node is not used but for its
// Logger; the node's own fault hooks are nn's (cfg.Faults is ignored:
// pass the *transport.Faults of nn's config as faults, or nil). Stop and
// Crash stop nn too.
func Attach(ctx context.Context, nn *node.Node, faults *transport.Faults, cfg Config) (*Node, error) {
	if cfg.Node.Logger == nil {
		cfg.Node.Logger = nn.Config().Logger
	}
	if err := cfg.validateServices(); err != nil {
		return nil, err
	}
	if err := cfg.App.register(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Node.Logger, stopped: make(chan struct{}), faults: faults}
	ln := cfg.HTTPListener
	if ln == nil && cfg.HTTPAddr != "" {
		var err error
		if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("HTTP address %s: %w", cfg.HTTPAddr, err)
		}
	}
	if ln != nil {
		n.cfg.HTTPAddr = ln.Addr().String()
		n.steps = append(n.steps, step{name: "http listener", stop: func(context.Context) error { ln.Close(); return nil }})
	}
	return n.compose(ctx, nn, ln)
}

// compose starts everything after the node, in order.
func (n *Node) compose(ctx context.Context, nn *node.Node, ln net.Listener) (*Node, error) {
	cfg := n.cfg
	fail := func(what string, err error) (*Node, error) {
		n.undo(context.Background())
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var err error
	n.Node = nn
	n.steps = append(n.steps, step{name: "node", stop: nn.Stop, crash: func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = nn.Close(cctx)
	}})
	nodes.Store(nn.Runtime(), n)
	n.steps = append(n.steps, step{name: "lookup", stop: func(context.Context) error { nodes.Delete(nn.Runtime()); return nil }})
	inspect.Install(nn)

	if n.reg, err = registry.Start(nn.Runtime(), nn.Cluster(), registry.Config{Logger: n.log}); err != nil {
		return fail("registry", err)
	}
	n.steps = append(n.steps, step{name: "registry", stop: func(context.Context) error { n.reg.Stop(); return nil }})
	pcfg := cfg.Placement
	pcfg.Registry, pcfg.Logger = n.reg, n.log
	if n.pl, err = placement.Start(nn, pcfg); err != nil {
		return fail("placement", err)
	}
	n.steps = append(n.steps, step{name: "placement", stop: n.pl.Stop, crash: n.pl.Close})

	bctx, cancel := context.WithCancel(context.Background())
	n.bg = cancel
	n.steps = append(n.steps, step{name: "background", stop: func(context.Context) error { cancel(); n.bgWG.Wait(); return nil }})
	health := operations.NewHealthMonitor(nn, 10*time.Second, 360)
	n.bgWG.Add(1)
	go func() { defer n.bgWG.Done(); health.Run(bctx) }()
	if ln != nil {
		if err := n.serveHTTP(ln, health); err != nil {
			return fail("operations API", err)
		}
	}

	for i, t := range cfg.App.Trees {
		var opts []process.SpawnOption
		if t.Name != "" {
			opts = append(opts, process.WithName(t.Name))
		}
		pid, err := supervisor.Start(nn.Runtime(), t.Spec(n), opts...)
		if err != nil {
			return fail(fmt.Sprintf("app tree %d (%q)", i, t.Name), err)
		}
		n.trees = append(n.trees, pid)
		n.steps = append(n.steps, step{name: "tree " + t.Name, stop: func(ctx context.Context) error {
			nn.Runtime().Exit(pid, process.Shutdown)
			_, err := nn.Runtime().WaitExit(ctx, pid)
			return err
		}})
	}
	n.bgCtx = bctx
	n.EnsureChildren(cfg.App.Singletons...)
	if cfg.App.Start != nil {
		if err := cfg.App.Start(ctx, n); err != nil {
			return fail("app start", err)
		}
	}
	if cfg.App.Stop != nil {
		n.steps = append(n.steps, step{name: "app stop", stop: func(ctx context.Context) error { cfg.App.Stop(ctx, n); return nil }})
	}

	n.ctl = control.NewServer(control.Target{
		Node: nn, Faults: n.faults, Registry: n.reg, Placement: n.pl, Kind: LookupKind,
		App: cfg.App.name(), Kinds: cfg.App.kindNames(), HTTPAddr: n.cfg.HTTPAddr,
	})
	n.steps = append(n.steps, step{name: "control", stop: func(context.Context) error { n.ctl.Close(); return nil }})
	if cfg.Control.Socket != "" {
		cs, err := n.ctl.ServeSocket(cfg.Control.Socket)
		if err != nil {
			return fail("control socket", err)
		}
		n.steps = append(n.steps, step{name: "control socket", stop: func(context.Context) error { return cs.Close() }})
	}
	if cfg.Control.Stdio {
		in, out := cfg.Control.In, cfg.Control.Out
		if in == nil {
			in = os.Stdin
		}
		if out == nil {
			out = os.Stdout
		}
		go n.ctl.ServeStdio(in, out)
	}
	n.log.Info("arsenal node started", "app", cfg.App.name(), "http", n.cfg.HTTPAddr, "kinds", cfg.App.kindNames())
	return n, nil
}

func (n *Node) serveHTTP(ln net.Listener, health *operations.HealthMonitor) error {
	reg := ops.NewRegistry()
	if err := operations.Register(reg, &operations.Env{Node: n.Node, Health: health, Registry: n.reg, Placement: n.pl}); err != nil {
		return err
	}
	if n.cfg.App.Operations != nil {
		if err := n.cfg.App.Operations(reg, n); err != nil {
			return fmt.Errorf("app operations: %w", err)
		}
	}
	api := n.cfg.API
	api.Node = n.Name()
	api.Logger = n.log.With("component", "api")
	if api.AuditOutput == nil {
		api.Audit = n.log.With("component", "audit")
	}
	metrics := prometheus.NewRegistry()
	api.Metrics = metrics
	if err := bridgeMemberlistMetrics(metrics); err != nil {
		n.log.Warn("memberlist metrics are not bridged to /metrics", "err", err)
	}
	mux := http.NewServeMux()
	n.Mount(mux, metrics)
	mux.Handle("/api/", reg.Handler(api))
	mux.Handle("/", web.Handler()) // the dashboard at /ui/; / redirects there
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server", "err", err)
		}
	}()
	n.log.Info("serving HTTP", "addr", ln.Addr().String())
	n.steps = append(n.steps, step{name: "http server", stop: srv.Shutdown, crash: func() { _ = srv.Close() }})
	return nil
}

// EnsureChildren makes sure, in the background, that each distributed
// child of specs runs somewhere in the cluster: it starts each one that no
// node runs, retrying with backoff while this side of the cluster may not
// start children (before its first split-brain decision, or in a
// minority), until each exists or the node stops. App.Singletons go
// through it at boot. Failures other than "not now" are logged and
// retried.
func (n *Node) EnsureChildren(specs ...placement.ChildSpec) {
	if len(specs) == 0 {
		return
	}
	n.bgWG.Add(1)
	go func() { defer n.bgWG.Done(); n.ensure(n.bgCtx, specs) }()
}

func (n *Node) ensure(ctx context.Context, specs []placement.ChildSpec) {
	pending := append([]placement.ChildSpec(nil), specs...)
	wait := 100 * time.Millisecond
	for len(pending) > 0 {
		var left []placement.ChildSpec
		for _, spec := range pending {
			if _, ok := n.pl.Whereis(spec.ID); ok {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := n.pl.StartChild(sctx, spec)
			cancel()
			var pe *placement.Error
			switch {
			case err == nil:
				n.log.Info("singleton started", "id", spec.ID, "kind", spec.Kind)
			case errors.As(err, &pe) && pe.Code() == placement.CodeConflict:
				// another node started it first
			case ctx.Err() != nil:
				return
			default:
				n.log.Debug("singleton not started yet", "id", spec.ID, "err", err)
				left = append(left, spec)
			}
		}
		pending = left
		if len(pending) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// Stop stops the node gracefully, in the reverse order of its start: the
// control channel, the App's Stop hook and trees, the operations API, the
// distributed supervisor (which hands its children off to the other
// nodes), the registry (which removes this node's names at once, cluster
// wide), and the node, which leaves the cluster: peers see it "left", not
// failed. It is safe to call more than once.
func (n *Node) Stop(ctx context.Context) error {
	n.stopOnce.Do(func() {
		n.log.Info("stopping gracefully")
		n.stopErr = n.undo(ctx)
		close(n.stopped)
	})
	return n.stopErr
}

// Crash stops the node as a crash would, for tests of an embedded node:
// the network goes first, without a hand-off or a leave, so peers detect
// a failure; names and children are recovered by the cluster as after a
// kill -9.
func (n *Node) Crash() {
	n.stopOnce.Do(func() {
		n.log.Info("crashing on purpose")
		if n.bg != nil {
			n.bg()
		}
		// The network first: nothing below reaches the peers.
		for _, s := range n.steps {
			if s.name == "node" {
				s.crash()
			}
		}
		for i := len(n.steps) - 1; i >= 0; i-- {
			s := n.steps[i]
			switch {
			case s.name == "node":
			case s.crash != nil:
				s.crash()
			default:
				sctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = s.stop(sctx)
				cancel()
			}
		}
		n.steps = nil
		close(n.stopped)
	})
}

// undo stops the started steps in reverse order.
func (n *Node) undo(ctx context.Context) error {
	var errs []error
	for i := len(n.steps) - 1; i >= 0; i-- {
		s := n.steps[i]
		if err := s.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", s.name, err))
		}
	}
	n.steps = nil
	return errors.Join(errs...)
}

// Run is Main with its arguments and outputs: it parses the
// configuration of app from args, starts the node, and runs it until
// SIGTERM or SIGINT, a control "stop" command, or the end of the stdio
// control channel; then it stops it gracefully. It returns the exit code:
// 0 after a graceful stop, 1 if the node failed, 2 for bad settings.
func Run(app App, args []string, stdout, stderr io.Writer) int {
	return run(app, args, stdout, stderr)
}
