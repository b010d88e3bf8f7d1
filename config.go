package arsenal

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/ops"
	"github.com/arsenal-go/arsenal/placement"
	"github.com/arsenal-go/arsenal/transport"
)

// Config is everything a composed node needs. Main and Run fill it from
// flags, ARSENAL_* environment variables and a config file (ParseConfig);
// an embedding program fills it itself and calls Start.
type Config struct {
	// Node configures the node: name, cluster, secret, addresses,
	// discovery, TLS, failure-detection profile, logger. Node.HTTPAddr
	// and Node.Faults are set by Start from HTTPAddr and Faults.
	Node node.Config
	// HTTPAddr is where the node serves /healthz, /readyz, /metrics and
	// the operations API ("": no HTTP server; port 0: any free port).
	HTTPAddr string
	// HTTPListener, if set, is used instead of binding HTTPAddr.
	HTTPListener net.Listener
	// API are the access settings of the operations API (tokens, open
	// reads). Node, Logger and Audit are set by Start.
	API ops.ServerConfig
	// Placement configures the distributed supervisor: split-brain
	// policy, quorum, stable-after, removal margin, strategy. Registry and
	// Logger are set by Start.
	Placement placement.Config
	// Faults installs the network fault hooks that harnesses use through
	// the control channel. Off unless a control channel is on.
	Faults bool
	// Control is the control channel a harness speaks (package control).
	Control ControlConfig
	// App is the user's part: kinds, message types, supervision trees,
	// singletons, operations, start and stop hooks.
	App App
}

// ControlConfig configures the control channels (package control).
type ControlConfig struct {
	// Stdio serves the protocol on In and Out (default os.Stdin and
	// os.Stdout): "ready" is written to Out once the node has started,
	// and the end of In stops the node. For harnesses that start the node
	// as a child process.
	Stdio bool
	In    io.Reader
	Out   io.Writer
	// Socket, if set, serves the protocol on a unix socket at this path
	// (mode 0600); the end of a session does not stop the node.
	Socket string
}

// Validate checks the configuration and the application, and names every
// problem it finds.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Node.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateServices(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *Config) validateServices() error {
	var errs []error
	if err := c.Placement.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.HTTPAddr != "" || c.HTTPListener != nil {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); c.HTTPListener == nil && err != nil {
			errs = append(errs, fmt.Errorf("HTTP address %q: want host:port", c.HTTPAddr))
		}
		if !c.API.OpenReads && len(c.API.Tokens) == 0 {
			if c.HTTPListener == nil && !ops.DefaultOpenReads(c.HTTPAddr) {
				errs = append(errs, fmt.Errorf("HTTP address %s is not loopback and no tokens are given: nobody could use the operations API (give tokens, or open reads on purpose)", c.HTTPAddr))
			} else {
				errs = append(errs, errors.New("the operations API has neither tokens nor open reads: nobody could use it (set API.Tokens, or API.OpenReads)"))
			}
		}
	}
	if err := c.App.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Flags are the application's own settings, declared in App.Flags: like
// the built-in ones, each comes from a flag, else its environment
// variable, else the config file (keyed by the flag name), else its
// default.
type Flags struct{ o *optionSet }

// String declares a setting and returns where its value will be once the
// configuration is parsed. env may be "" (no environment variable).
func (f *Flags) String(name, env, def, help string) *string { return f.o.add(name, env, def, help) }

type nodeFlags struct {
	name, clusterName, secretFile, nodeAddr, advertise, httpAddr *string
	seeds, dnsName, dnsSRV, profile, expected                    *string
	tlsCert, tlsKey, tlsCA, logFormat, logLevel, control         *string
	tokensFile, openReads, auditFile, httpHosts                  *string
	splitBrain, quorum, stableAfter, removalMargin, strategy     *string
	config, controlSocket, faults                                *string
}

func addNodeFlags(o *optionSet, fs *flag.FlagSet, appName string) nodeFlags {
	return nodeFlags{
		name:          o.add("name", "ARSENAL_NAME", appName+"@127.0.0.1", "node name, name@host, unique in the cluster"),
		clusterName:   o.add("cluster", "ARSENAL_CLUSTER", appName, "cluster name; nodes of other clusters are refused"),
		secretFile:    o.add("secret-file", "ARSENAL_SECRET_FILE", "", "file holding the cluster secret (or set ARSENAL_SECRET)"),
		nodeAddr:      o.add("node-addr", "ARSENAL_NODE_ADDR", "127.0.0.1:7946", "address for node traffic, TCP and UDP on one port (port 0: any free port)"),
		advertise:     o.add("advertise-addr", "ARSENAL_ADVERTISE_ADDR", "", "address peers should dial, if not --node-addr"),
		httpAddr:      o.add("http-addr", "ARSENAL_HTTP_ADDR", "127.0.0.1:4100", "HTTP address for health, metrics and the operations API; 'off' disables"),
		seeds:         o.add("seeds", "ARSENAL_SEEDS", "", "comma-separated node addresses to join (static discovery)"),
		dnsName:       o.add("dns", "ARSENAL_DNS", "", "DNS name whose A/AAAA records are the peers, as host:port"),
		dnsSRV:        o.add("dns-srv", "ARSENAL_DNS_SRV", "", "DNS SRV name of the peers, e.g. _arsenal._tcp.svc.ns.svc.cluster.local"),
		profile:       o.add("profile", "ARSENAL_PROFILE", "lan", "failure-detection profile: local, lan, wan or fast (tests)"),
		expected:      o.add("expected-size", "ARSENAL_EXPECTED_SIZE", "0", "expected cluster size for the partition status (0: largest seen)"),
		tlsCert:       o.add("tls-cert", "ARSENAL_TLS_CERT", "", "TLS certificate file for node links"),
		tlsKey:        o.add("tls-key", "ARSENAL_TLS_KEY", "", "TLS key file for node links"),
		tlsCA:         o.add("tls-ca", "ARSENAL_TLS_CA", "", "CA file that signs every node's certificate"),
		logFormat:     o.add("log-format", "ARSENAL_LOG_FORMAT", "text", "log format: text or json"),
		logLevel:      o.add("log-level", "ARSENAL_LOG_LEVEL", "info", "log level: debug, info, warn or error"),
		control:       o.add("control", "", "", "'stdio': take commands from stdin, report on stdout, exit on stdin EOF (for harnesses)"),
		tokensFile:    o.add("tokens-file", "ARSENAL_TOKENS_FILE", "", "bearer tokens of the operations API, one 'TOKEN ROLE NAME' per line (roles: viewer, operator)"),
		openReads:     o.add("open-reads", "ARSENAL_OPEN_READS", "auto", "let read operations run without a token: auto (only on a loopback --http-addr), true or false"),
		auditFile:     o.add("audit-file", "ARSENAL_AUDIT_FILE", "", "append the audit log of the operations API (JSON lines) to this file, whatever --log-level; empty: stderr"),
		httpHosts:     o.add("http-hosts", "ARSENAL_HTTP_HOSTS", "", "comma-separated DNS names of this node that HTTP requests without a token may use in Host (IP addresses and localhost always can; * for any)"),
		splitBrain:    o.add("split-brain", "ARSENAL_SPLIT_BRAIN", "keep-majority", "which side of a partition keeps running distributed children: keep-majority, static-quorum, keep-oldest or down-all"),
		quorum:        o.add("quorum", "ARSENAL_QUORUM", "0", "minimum side size for --split-brain static-quorum"),
		stableAfter:   o.add("stable-after", "ARSENAL_STABLE_AFTER", "", "membership must be stable this long before a split-brain decision (default by profile: fast 1s, local 3s, lan 7s, wan 20s)"),
		removalMargin: o.add("removal-margin", "ARSENAL_REMOVAL_MARGIN", "", "extra wait before a lost node's children restart elsewhere (default: the profile's detection spread, at least --stable-after)"),
		strategy:      o.add("placement", "ARSENAL_PLACEMENT", "rendezvous", "where new distributed children start: rendezvous, round-robin, least-loaded or local"),
		faults:        o.add("faults", "ARSENAL_FAULTS", "auto", "install the network fault hooks harnesses use: auto (only with a control channel), true or false"),
		config:        ptr(fs.String("config", os.Getenv("ARSENAL_CONFIG"), "JSON config file (env ARSENAL_CONFIG)")),
		controlSocket: ptr(fs.String("control-socket", "", "unix socket (made mode 0600) serving the control protocol, for 'arsenal cluster'; unlike stdio, closing it does not stop the node")),
	}
}

func ptr(s *string) *string { return s }

// ParseConfig fills a Config for app from args (flags, without the
// program name), the ARSENAL_* environment and the config file named by
// --config, in that order of precedence. With --help it prints the usage
// to stdout and returns flag.ErrHelp. Every invalid setting is named in
// the error.
func ParseConfig(app App, args []string, stdout, stderr io.Writer) (Config, error) {
	name := app.name()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &optionSet{fs: fs}
	f := addNodeFlags(o, fs, name)
	if app.Flags != nil {
		app.Flags(&Flags{o: o})
	}
	fs.Usage = func() {
		usage := app.Usage
		if usage == "" {
			usage = name + " [flags]"
		}
		fmt.Fprintf(fs.Output(), "Usage: %s\n\n%s\n\nFlags:\n", usage, strings.TrimSpace(app.description()))
		fs.PrintDefaults()
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "--help" || a == "-help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return Config{}, flag.ErrHelp
		}
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := o.resolve(*f.config); err != nil {
		return Config{}, err
	}
	cfg, err := f.build(stderr)
	cfg.App = app
	return cfg, err
}

func (f nodeFlags) build(stderr io.Writer) (Config, error) {
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
	var cfg Config
	cfg.Node = node.Config{
		Name: *f.name, Cluster: *f.clusterName, BindAddr: *f.nodeAddr, AdvertiseAddr: *f.advertise,
		Logger: logger,
	}
	switch {
	case *f.secretFile != "":
		b, err := os.ReadFile(*f.secretFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--secret-file: %w", err))
		}
		cfg.Node.Secret = []byte(strings.TrimSpace(string(b)))
	case os.Getenv("ARSENAL_SECRET") != "":
		cfg.Node.Secret = []byte(os.Getenv("ARSENAL_SECRET"))
	default:
		errs = append(errs, errors.New("no cluster secret: set ARSENAL_SECRET or --secret-file (at least 16 bytes; 'openssl rand -hex 32' makes one)"))
	}
	p, err := cluster.ParseProfile(*f.profile)
	if err != nil {
		errs = append(errs, fmt.Errorf("--profile: %w", err))
	}
	cfg.Node.Profile = p
	if n, err := strconv.Atoi(*f.expected); err != nil || n < 0 {
		errs = append(errs, fmt.Errorf("--expected-size %q: want a whole number ≥ 0", *f.expected))
	} else {
		cfg.Node.ExpectedSize = n
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
		cfg.Node.Discovery = providers[0]
	default:
		cfg.Node.Discovery = multiProvider(providers)
	}
	if *f.tlsCert != "" || *f.tlsKey != "" || *f.tlsCA != "" {
		t, err := transport.LoadTLS(*f.tlsCert, *f.tlsKey, *f.tlsCA)
		if err != nil {
			errs = append(errs, fmt.Errorf("TLS: %w", err))
		}
		cfg.Node.TLS = t
	}
	switch *f.control {
	case "":
	case "stdio":
		cfg.Control.Stdio = true
	default:
		errs = append(errs, fmt.Errorf("--control %q: the only channel is stdio", *f.control))
	}
	cfg.Control.Socket = *f.controlSocket
	switch *f.faults {
	case "auto":
		cfg.Faults = cfg.Control.Stdio || cfg.Control.Socket != ""
	case "true":
		cfg.Faults = true
	case "false":
	default:
		errs = append(errs, fmt.Errorf("--faults %q: want auto, true or false", *f.faults))
	}
	if *f.httpAddr != "off" {
		cfg.HTTPAddr = *f.httpAddr
	}
	if *f.tokensFile != "" {
		t, err := ops.LoadTokens(*f.tokensFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--tokens-file: %w", err))
		}
		cfg.API.Tokens = t
	}
	cfg.API.AuditOutput = os.Stderr
	if *f.auditFile != "" {
		af, err := os.OpenFile(*f.auditFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			errs = append(errs, fmt.Errorf("--audit-file: %w", err))
		} else {
			cfg.API.AuditOutput = af // open for the life of the process
		}
	}
	for h := range strings.SplitSeq(*f.httpHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.API.AllowedHosts = append(cfg.API.AllowedHosts, h)
		}
	}
	switch *f.openReads {
	case "auto":
		cfg.API.OpenReads = ops.DefaultOpenReads(cfg.HTTPAddr)
	case "true":
		cfg.API.OpenReads = true
	case "false":
	default:
		errs = append(errs, fmt.Errorf("--open-reads %q: want auto, true or false", *f.openReads))
	}
	pc, err := f.placementConfig()
	if err != nil {
		errs = append(errs, err)
	}
	cfg.Placement = pc
	if err := cfg.Node.Validate(); err != nil {
		errs = append(errs, err)
	}
	return cfg, errors.Join(errs...)
}

func (f nodeFlags) placementConfig() (placement.Config, error) {
	var c placement.Config
	var errs []error
	var err error
	if c.SplitBrain, err = placement.ParsePolicy(*f.splitBrain); err != nil {
		errs = append(errs, fmt.Errorf("--split-brain: %w", err))
	}
	if c.Strategy, err = placement.ParseStrategy(*f.strategy); err != nil {
		errs = append(errs, fmt.Errorf("--placement: %w", err))
	}
	if c.Quorum, err = strconv.Atoi(*f.quorum); err != nil || c.Quorum < 0 {
		errs = append(errs, fmt.Errorf("--quorum %q: want a whole number", *f.quorum))
	}
	for _, d := range []struct {
		flag string
		v    *string
		to   *time.Duration
	}{{"--stable-after", f.stableAfter, &c.StableAfter}, {"--removal-margin", f.removalMargin, &c.RemovalMargin}} {
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
