package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/inspect"
	"github.com/arsenal-go/arsenal/internal/demo"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/ops"
	"github.com/arsenal-go/arsenal/ops/operations"
	"github.com/arsenal-go/arsenal/placement"
	"github.com/arsenal-go/arsenal/transport"
	"github.com/arsenal-go/arsenal/web"
)

func init() {
	register(command{name: "node", summary: "run one node of a cluster", run: runNode})
}

const nodeDescription = `
Run one Arsenal node: a process runtime that joins its cluster by itself.

Every setting comes from a flag, else its environment variable, else the
JSON config file given with --config (keys are the flag names), else the
default. The cluster secret is read from --secret-file or ARSENAL_SECRET,
never from a flag value (which would show in 'ps').

The node serves /healthz, /readyz, /metrics and the operations API
(/api/v1/..., catalogue at /api/v1/arsenal/operations, OpenAPI at
/api/v1/arsenal/docs) on --http-addr, and leaves the cluster gracefully on
SIGTERM or SIGINT (peers see it as left). On a loopback --http-addr, read
operations are open; elsewhere every operation needs a bearer token from
--tokens-file, and dangerous ones always need the operator role.

Examples:
  ARSENAL_SECRET=$(cat /etc/arsenal/secret) arsenal node --name a@10.0.0.5 \
      --node-addr 10.0.0.5:7946 --seeds 10.0.0.6:7946,10.0.0.7:7946
  arsenal node --config /etc/arsenal/node.json
  arsenal node --name web@$POD_IP --node-addr $POD_IP:7946 \
      --dns-srv _arsenal._tcp.arsenal-headless.default.svc.cluster.local
`

type nodeFlags struct {
	name, clusterName, secretFile, nodeAddr, advertise, httpAddr *string
	seeds, dnsName, dnsSRV, profile, expected                    *string
	tlsCert, tlsKey, tlsCA, logFormat, logLevel, control, demo   *string
	tokensFile, openReads, auditFile, httpHosts                  *string
	config, controlSocket                                        *string
	services                                                     serviceFlags // services.go
}

func runNode(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("node", "arsenal node [flags]", nodeDescription, stderr)
	o := &optionSet{fs: fs}
	f := nodeFlags{
		name:        o.add("name", "ARSENAL_NAME", "arsenal@127.0.0.1", "node name, name@host, unique in the cluster"),
		clusterName: o.add("cluster", "ARSENAL_CLUSTER", "arsenal", "cluster name; nodes of other clusters are refused"),
		secretFile:  o.add("secret-file", "ARSENAL_SECRET_FILE", "", "file holding the cluster secret (or set ARSENAL_SECRET)"),
		nodeAddr:    o.add("node-addr", "ARSENAL_NODE_ADDR", "127.0.0.1:7946", "address for node traffic, TCP and UDP on one port (port 0: any free port)"),
		advertise:   o.add("advertise-addr", "ARSENAL_ADVERTISE_ADDR", "", "address peers should dial, if not --node-addr"),
		httpAddr:    o.add("http-addr", "ARSENAL_HTTP_ADDR", "127.0.0.1:4100", "HTTP address for health, metrics and the operations API; 'off' disables"),
		seeds:       o.add("seeds", "ARSENAL_SEEDS", "", "comma-separated node addresses to join (static discovery)"),
		dnsName:     o.add("dns", "ARSENAL_DNS", "", "DNS name whose A/AAAA records are the peers, as host:port"),
		dnsSRV:      o.add("dns-srv", "ARSENAL_DNS_SRV", "", "DNS SRV name of the peers, e.g. _arsenal._tcp.svc.ns.svc.cluster.local"),
		profile:     o.add("profile", "ARSENAL_PROFILE", "lan", "failure-detection profile: local, lan, wan or fast (tests)"),
		expected:    o.add("expected-size", "ARSENAL_EXPECTED_SIZE", "0", "expected cluster size for the partition status (0: largest seen)"),
		tlsCert:     o.add("tls-cert", "ARSENAL_TLS_CERT", "", "TLS certificate file for node links"),
		tlsKey:      o.add("tls-key", "ARSENAL_TLS_KEY", "", "TLS key file for node links"),
		tlsCA:       o.add("tls-ca", "ARSENAL_TLS_CA", "", "CA file that signs every node's certificate"),
		logFormat:   o.add("log-format", "ARSENAL_LOG_FORMAT", "text", "log format: text or json"),
		logLevel:    o.add("log-level", "ARSENAL_LOG_LEVEL", "info", "log level: debug, info, warn or error"),
		control:     o.add("control", "", "", "'stdio': take commands from stdin, report on stdout, exit on stdin EOF (for harnesses)"),
		demo:        o.add("demo", "ARSENAL_DEMO", "false", "start the demo workload (what 'arsenal dev' runs)"),
		tokensFile:  o.add("tokens-file", "ARSENAL_TOKENS_FILE", "", "bearer tokens of the operations API, one 'TOKEN ROLE NAME' per line (roles: viewer, operator)"),
		openReads:   o.add("open-reads", "ARSENAL_OPEN_READS", "auto", "let read operations run without a token: auto (only on a loopback --http-addr), true or false"),
		auditFile:   o.add("audit-file", "ARSENAL_AUDIT_FILE", "", "append the audit log of the operations API (JSON lines) to this file, whatever --log-level; empty: stderr"),
		httpHosts:   o.add("http-hosts", "ARSENAL_HTTP_HOSTS", "", "comma-separated DNS names of this node that HTTP requests without a token may use in Host (IP addresses and localhost always can; * for any)"),
	}
	f.services = addServiceFlags(o)
	f.config = fs.String("config", os.Getenv("ARSENAL_CONFIG"), "JSON config file (env ARSENAL_CONFIG)")
	f.controlSocket = fs.String("control-socket", "", "unix socket (made mode 0600) serving the control protocol, for 'arsenal cluster'; unlike stdio, closing it does not stop the node")
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "arsenal node: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := o.resolve(*f.config); err != nil {
		fmt.Fprintf(stderr, "arsenal node: %v\n", err)
		return 2
	}
	cfg, httpAddr, logger, err := f.build(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "arsenal node: %v\n", err)
		return 2
	}
	api, err := f.apiConfig(httpAddr)
	if err != nil {
		fmt.Fprintf(stderr, "arsenal node: %v\n", err)
		return 2
	}
	pcfg, err := f.services.placementConfig()
	if err != nil {
		fmt.Fprintf(stderr, "arsenal node: %v\n", err)
		return 2
	}
	if err := serveNode(cfg, httpAddr, api, logger, *f.control == "stdio", *f.controlSocket, *f.demo == "true", pcfg, stdout); err != nil {
		logger.Error("node failed", "err", err)
		fmt.Fprintf(stderr, "arsenal node: %v\n", err)
		return 1
	}
	return 0
}

func (f nodeFlags) build(stderr io.Writer) (node.Config, string, *slog.Logger, error) {
	var errs []error
	level := new(slog.LevelVar)
	if err := level.UnmarshalText([]byte(*f.logLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", *f.logLevel))
	}
	var h slog.Handler
	switch *f.logFormat {
	case "text":
		h = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	case "json":
		h = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	default:
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", *f.logFormat))
		h = slog.NewTextHandler(stderr, nil)
	}
	logger := slog.New(h).With("node", *f.name)
	cfg := node.Config{
		Name: *f.name, Cluster: *f.clusterName, BindAddr: *f.nodeAddr, AdvertiseAddr: *f.advertise,
		Version: buildVersion(), Logger: logger,
	}
	switch {
	case *f.secretFile != "":
		b, err := os.ReadFile(*f.secretFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--secret-file: %w", err))
		}
		cfg.Secret = []byte(strings.TrimSpace(string(b)))
	case os.Getenv("ARSENAL_SECRET") != "":
		cfg.Secret = []byte(os.Getenv("ARSENAL_SECRET"))
	default:
		errs = append(errs, errors.New("no cluster secret: set ARSENAL_SECRET or --secret-file (at least 16 bytes; 'openssl rand -hex 32' makes one)"))
	}
	p, err := cluster.ParseProfile(*f.profile)
	if err != nil {
		errs = append(errs, fmt.Errorf("--profile: %w", err))
	}
	cfg.Profile = p
	if n, err := strconv.Atoi(*f.expected); err != nil || n < 0 {
		errs = append(errs, fmt.Errorf("--expected-size %q: want a whole number ≥ 0", *f.expected))
	} else {
		cfg.ExpectedSize = n
	}
	var providers []cluster.Provider
	if *f.seeds != "" {
		var seeds []string
		for _, s := range strings.Split(*f.seeds, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			if _, _, err := net.SplitHostPort(s); err != nil {
				errs = append(errs, fmt.Errorf("--seeds: %q is not host:port", s))
			}
			seeds = append(seeds, s)
		}
		providers = append(providers, cluster.StaticSeeds(seeds...))
	}
	if *f.dnsName != "" {
		host, port, err := net.SplitHostPort(*f.dnsName)
		pn, perr := strconv.Atoi(port)
		if err != nil || perr != nil {
			errs = append(errs, fmt.Errorf("--dns %q: want name:port", *f.dnsName))
		} else {
			providers = append(providers, cluster.DNS(host, pn))
		}
	}
	if *f.dnsSRV != "" {
		providers = append(providers, cluster.DNSSRV("", "", *f.dnsSRV))
	}
	switch len(providers) {
	case 0:
	case 1:
		cfg.Discovery = providers[0]
	default:
		cfg.Discovery = multiProvider(providers)
	}
	if *f.tlsCert != "" || *f.tlsKey != "" || *f.tlsCA != "" {
		t, err := transport.LoadTLS(*f.tlsCert, *f.tlsKey, *f.tlsCA)
		if err != nil {
			errs = append(errs, fmt.Errorf("TLS: %w", err))
		}
		cfg.TLS = t
	}
	switch *f.demo {
	case "true", "false":
	default:
		errs = append(errs, fmt.Errorf("--demo %q: want true or false", *f.demo))
	}
	switch *f.control {
	case "", "stdio":
	default:
		errs = append(errs, fmt.Errorf("--control %q: the only channel is stdio", *f.control))
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	httpAddr := *f.httpAddr
	if httpAddr == "off" {
		httpAddr = ""
	}
	return cfg, httpAddr, logger, errors.Join(errs...)
}

// apiConfig reads the access settings of the operations API.
func (f nodeFlags) apiConfig(httpAddr string) (ops.ServerConfig, error) {
	var c ops.ServerConfig
	if *f.tokensFile != "" {
		t, err := ops.LoadTokens(*f.tokensFile)
		if err != nil {
			return c, fmt.Errorf("--tokens-file: %w", err)
		}
		c.Tokens = t
	}
	c.AuditOutput = os.Stderr
	if *f.auditFile != "" {
		af, err := os.OpenFile(*f.auditFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return c, fmt.Errorf("--audit-file: %w", err)
		}
		c.AuditOutput = af // open for the life of the process
	}
	for h := range strings.SplitSeq(*f.httpHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			c.AllowedHosts = append(c.AllowedHosts, h)
		}
	}
	switch *f.openReads {
	case "auto":
		c.OpenReads = ops.DefaultOpenReads(httpAddr)
	case "true":
		c.OpenReads = true
	case "false":
	default:
		return c, fmt.Errorf("--open-reads %q: want auto, true or false", *f.openReads)
	}
	if httpAddr != "" && !c.OpenReads && len(c.Tokens) == 0 {
		return c, fmt.Errorf("--http-addr %s is not loopback and no --tokens-file is given: nobody could use the operations API (give tokens, or --open-reads true to open reads on purpose)", httpAddr)
	}
	return c, nil
}

type multiProvider []cluster.Provider

func (m multiProvider) Name() string { return "multi" }
func (m multiProvider) Discover(ctx context.Context) ([]string, error) {
	var out []string
	var errs []error
	for _, p := range m {
		a, err := p.Discover(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.Name(), err))
		}
		out = append(out, a...)
	}
	if len(out) > 0 {
		return out, nil
	}
	return nil, errors.Join(errs...)
}

// serveNode runs a node until a signal, a stop command or (with control)
// the end of stdin.
func serveNode(cfg node.Config, httpAddr string, api ops.ServerConfig, log *slog.Logger, control bool, controlSocket string, withDemo bool, pcfg placement.Config, stdout io.Writer) error {
	var ln net.Listener
	if httpAddr != "" {
		var err error
		ln, err = net.Listen("tcp", httpAddr)
		if err != nil {
			return fmt.Errorf("--http-addr %s: %w (pick another port, or 0 for any free one)", httpAddr, err)
		}
		cfg.HTTPAddr = ln.Addr().String()
	}
	faults := transport.NewFaults()
	cfg.Faults = faults
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	inspect.Install(n)
	svc, err := startServices(n, pcfg, log)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		_ = n.Stop(context.Background())
		return err
	}
	done := make(chan string, 1)
	if controlSocket != "" {
		sc := newController(n, faults, io.Discard, done)
		sc.attach(svc)
		cs, err := serveControlSocket(controlSocket, sc)
		if err != nil {
			if ln != nil {
				ln.Close()
			}
			_ = n.Stop(context.Background())
			return err
		}
		defer cs.Close()
	}
	stopAPI, err := startAPI(n, svc, api, log, ln)
	if err != nil {
		_ = n.Stop(context.Background())
		return err
	}
	if withDemo {
		if _, err := demo.Start(n); err != nil {
			log.Error("demo workload", "err", err)
		}
	}
	if control {
		c := newController(n, faults, stdout, done)
		c.attach(svc)
		c.ready(cfg.HTTPAddr)
		go c.serve(os.Stdin)
	}
	var why string
	select {
	case <-ctx.Done():
		why = "signal"
	case why = <-done:
	}
	log.Info("stopping", "why", why)
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	stopAPI(sctx)
	svc.stop(sctx, log)
	return n.Stop(sctx)
}

// startAPI serves the health endpoints and the operations API of n on ln
// (if any), with the health monitor behind cluster.health. The returned
// function stops both.
func startAPI(n *node.Node, svc *services, api ops.ServerConfig, log *slog.Logger, ln net.Listener) (func(context.Context), error) {
	health := operations.NewHealthMonitor(n, 10*time.Second, 360)
	hctx, stopHealth := context.WithCancel(context.Background())
	go health.Run(hctx)
	if ln == nil {
		return func(context.Context) { stopHealth() }, nil
	}
	reg := ops.NewRegistry()
	if err := operations.Register(reg, &operations.Env{Node: n, Health: health, Registry: svc.reg, Placement: svc.pl}); err != nil {
		stopHealth()
		ln.Close()
		return nil, fmt.Errorf("operations: %w", err)
	}
	api.Node = n.Name()
	metrics := prometheus.NewRegistry()
	api.Metrics = metrics
	if err := bridgeMemberlistMetrics(metrics); err != nil {
		log.Warn("memberlist metrics are not bridged to /metrics", "err", err)
	}
	api.Logger = log.With("component", "api")
	if api.AuditOutput == nil {
		api.Audit = log.With("component", "audit")
	}
	mux := http.NewServeMux()
	n.Mount(mux, metrics)
	mux.Handle("/api/", reg.Handler(api))
	mux.Handle("/", web.Handler()) // the dashboard at /ui/; / redirects there
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	log.Info("serving HTTP", "addr", ln.Addr().String())
	return func(ctx context.Context) {
		_ = srv.Shutdown(ctx)
		stopHealth()
	}, nil
}
