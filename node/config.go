package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/process"
	"github.com/arsenal-go/arsenal/transport"
)

// Config configures a node.
type Config struct {
	// Name is "name@host", unique in the cluster. Required.
	Name string
	// Cluster is the cluster's name; nodes of other clusters are refused.
	// Default "arsenal".
	Cluster string
	// Secret is the cluster secret (at least 16 bytes). Required.
	Secret []byte
	// BindAddr is the node-traffic address (TCP and UDP on one port).
	// Default "127.0.0.1:0": a free port on loopback.
	BindAddr string
	// AdvertiseAddr is the address peers dial, when it differs from the
	// bound one (NAT, containers).
	AdvertiseAddr string
	// HTTPAddr is published to peers so that tools can find each node's
	// API; the node itself does not serve HTTP (see Node.Handler).
	HTTPAddr string
	// Discovery finds peers; nil means no peers (a single node until
	// others join it).
	Discovery cluster.Provider
	// Profile tunes failure detection; default cluster.ProfileLAN.
	Profile cluster.Profile
	// ExpectedSize is the cluster size for the partition status (0: the
	// largest membership seen).
	ExpectedSize int
	// TLS, if set, wraps node links in TLS.
	TLS *tls.Config
	// Faults, if set, lets tests cut, delay or refuse traffic.
	Faults *transport.Faults
	// Net is the network the node binds and dials on. nil: the OS network;
	// package sim provides an in-memory one.
	Net transport.Net
	// FactsInterval is how often per-node facts are refreshed (default 5 s).
	FactsInterval time.Duration
	// RequestTimeout bounds one node-to-node request (default 2 s).
	RequestTimeout time.Duration
	// LinkTimeout bounds how long a node link may go without receiving
	// anything (links ping every LinkTimeout/4) and how long one write may
	// stall, before its connection is lost (default 8 s; doc.go, rule 2).
	// A link that cannot carry traffic one way is so noticed within
	// 1.25 × LinkTimeout.
	LinkTimeout time.Duration
	// SendQueueBytes bounds the frames waiting for one peer, while its
	// connection is dialled and on its link (default 16 MiB). A frame past
	// the bound loses the connection (doc.go, Overload).
	SendQueueBytes int
	// Version is reported in the node's facts.
	Version string
	Logger  *slog.Logger
}

// Defaults of Config.LinkTimeout and Config.SendQueueBytes.
const (
	DefaultLinkTimeout    = 8 * time.Second
	DefaultSendQueueBytes = 16 << 20
)

// linkPings is how many pings a link sends per LinkTimeout.
const linkPings = 4

// MinSecretLen is the shortest accepted cluster secret.
const MinSecretLen = 16

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name is required (name@host)"))
	} else if err := process.ValidateNodeName(c.Name); err != nil {
		errs = append(errs, fmt.Errorf("name: %w", err))
	} else if !strings.Contains(c.Name, "@") {
		errs = append(errs, fmt.Errorf("name %q: want name@host", c.Name))
	}
	if len(c.Secret) < MinSecretLen {
		errs = append(errs, fmt.Errorf("secret: %d bytes; at least %d are required", len(c.Secret), MinSecretLen))
	}
	if c.Profile != "" {
		if _, err := cluster.ParseProfile(string(c.Profile)); err != nil {
			errs = append(errs, err)
		}
	}
	if c.LinkTimeout < 0 || (c.LinkTimeout > 0 && c.LinkTimeout < 100*time.Millisecond) {
		errs = append(errs, fmt.Errorf("link timeout %s: want at least 100ms", c.LinkTimeout))
	}
	if c.SendQueueBytes < 0 {
		errs = append(errs, errors.New("send queue bytes is negative"))
	}
	if c.ExpectedSize < 0 {
		errs = append(errs, errors.New("expected size is negative"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("node config: %w", errors.Join(errs...))
	}
	return nil
}

func (c *Config) withDefaults() {
	if c.Cluster == "" {
		c.Cluster = "arsenal"
	}
	if c.BindAddr == "" {
		c.BindAddr = "127.0.0.1:0"
	}
	if c.Profile == "" {
		c.Profile = cluster.ProfileLAN
	}
	if c.FactsInterval <= 0 {
		c.FactsInterval = 5 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 2 * time.Second
	}
	if c.LinkTimeout <= 0 {
		c.LinkTimeout = DefaultLinkTimeout
	}
	if c.SendQueueBytes <= 0 {
		c.SendQueueBytes = DefaultSendQueueBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Version == "" {
		c.Version = "dev"
	}
}
