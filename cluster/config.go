package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"
	"unicode"

	"github.com/hashicorp/memberlist"
)

// Config describes one node's membership. Zero values take the defaults
// noted on each field; Start applies them and then calls Validate.
type Config struct {
	// ClusterName becomes memberlist's Label (every packet and stream is
	// tagged with it) and is carried in the metadata, so two clusters never
	// merge, even when one node is pointed at the other. Required.
	ClusterName string
	// NodeName is unique in the cluster, conventionally "name@host". Required.
	NodeName string
	// Incarnation tells restarts apart: a restarted node must have a new
	// one. 0 means time.Now().UnixNano() at Start.
	Incarnation uint64
	// NodeAddr is the node-traffic address published in the metadata.
	// Empty means the gossip address (right when transport shares one port
	// for gossip and node links).
	NodeAddr string
	// HTTPAddr is published in the metadata too; may be empty.
	HTTPAddr string
	// Meta holds extra small tags. All metadata together must fit in
	// memberlist's 512 bytes; Validate checks.
	Meta map[string]string
	// GossipKey is memberlist's SecretKey (AES-GCM): 16, 24 or 32 bytes, or
	// nil for no encryption. Derive it from the cluster secret.
	GossipKey []byte

	// Transport carries gossip. Nil means memberlist's NetTransport (UDP
	// and TCP on one port) bound to BindAddr.
	Transport memberlist.Transport
	// BindAddr is "ip:port" for the default transport; port 0 picks a free
	// port, which Cluster.GossipAddr reports. Default "0.0.0.0:7946".
	BindAddr string
	// AdvertiseAddr is "ip:port" other nodes use to reach this one, when it
	// differs from what the transport reports (NAT). Usually empty.
	AdvertiseAddr string

	// Profile sets the membership timings. Default ProfileLAN.
	Profile Profile
	// Discovery says where peers are. Nil means none: the node starts
	// alone and only others can join it (or Cluster.Join).
	Discovery Provider
	// RejoinInterval is the healing loop period. 0 means the profile's.
	RejoinInterval time.Duration
	// ExpectedSize is the cluster size for the partition status. 0 means
	// the largest number of members seen up at once (see doc.go).
	ExpectedSize int
	// RemovalMargin is how long a member must be dead in this node's view
	// before a side that keeps running stops counting it (Member.Removed).
	// 0 means the profile's upper estimate of crash detection
	// (ProfileSettings.RemovalMargin): 1.5 s on fast, about 29 s on lan,
	// for 5 nodes.
	RemovalMargin time.Duration
	// DeathGrace is how long a death this node learned only from others
	// (it never suspected the member itself) is held before it is
	// applied, so that a refutation can cancel it (see nodeGone); during
	// the grace the node push-pulls with the member to check. 0 means two
	// probe intervals (0.4 s on fast, 2 s on lan); negative applies such
	// deaths at once, unchecked.
	DeathGrace time.Duration
	// ReconnectTimeout is how long a dead member is remembered and retried
	// by the rejoin loop; left members are forgotten after it too.
	// Default 24 h, as serf.
	ReconnectTimeout time.Duration

	// Logger receives this package's logs and, at debug level, memberlist's
	// own (its [DEBUG] lines are dropped). Default slog.Default().
	Logger *slog.Logger
}

const (
	defaultBindAddr         = "0.0.0.0:7946"
	defaultReconnectTimeout = 24 * time.Hour
)

// withDefaults returns a copy with zero values replaced by defaults.
func (c Config) withDefaults() Config {
	if c.Incarnation == 0 {
		c.Incarnation = uint64(time.Now().UnixNano())
	}
	if c.Transport == nil && c.BindAddr == "" {
		c.BindAddr = defaultBindAddr
	}
	if c.Profile == "" {
		c.Profile = ProfileLAN
	}
	if c.RejoinInterval == 0 {
		c.RejoinInterval = c.Profile.Settings().RejoinInterval
	}
	if c.ReconnectTimeout == 0 {
		c.ReconnectTimeout = defaultReconnectTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every problem in the config at once. Zero values that
// have a default are accepted.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("cluster: config: "+format, args...))
	}

	switch {
	case c.ClusterName == "":
		bad("ClusterName is required")
	case len(c.ClusterName) > memberlist.LabelMaxSize:
		bad("ClusterName is %d bytes, the limit is %d", len(c.ClusterName), memberlist.LabelMaxSize)
	case !printable(c.ClusterName):
		bad("ClusterName %q must not contain spaces or control characters", c.ClusterName)
	}
	switch {
	case c.NodeName == "":
		bad("NodeName is required")
	case len(c.NodeName) > 255:
		bad("NodeName is %d bytes, the limit is 255", len(c.NodeName))
	case !printable(c.NodeName):
		bad("NodeName %q must not contain spaces or control characters", c.NodeName)
	}
	if c.NodeAddr != "" {
		if _, _, err := net.SplitHostPort(c.NodeAddr); err != nil {
			bad("NodeAddr %q is not host:port: %v", c.NodeAddr, err)
		}
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			bad("HTTPAddr %q is not host:port: %v", c.HTTPAddr, err)
		}
	}
	for k := range c.Meta {
		if k == "" {
			bad("Meta has an empty key")
		}
	}
	// The gossip address is filled in later; count a worst-case one now so
	// a config that validates also fits at Start.
	nodeAddr := c.NodeAddr
	if nodeAddr == "" {
		nodeAddr = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
	}
	meta := encodeMeta(wireMeta{Cluster: c.ClusterName, Incarnation: ^uint64(0), NodeAddr: nodeAddr, HTTPAddr: c.HTTPAddr, Tags: c.Meta})
	if len(meta) > memberlist.MetaMaxSize {
		bad("metadata is %d bytes encoded, memberlist's limit is %d: shorten Meta, the addresses or ClusterName", len(meta), memberlist.MetaMaxSize)
	}
	switch len(c.GossipKey) {
	case 0, 16, 24, 32:
	default:
		bad("GossipKey is %d bytes, want 16, 24 or 32 (AES-128/192/256)", len(c.GossipKey))
	}
	if c.Transport == nil && c.BindAddr != "" {
		if _, _, err := splitIPPort(c.BindAddr, true); err != nil {
			bad("BindAddr: %v", err)
		}
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := splitIPPort(c.AdvertiseAddr, false); err != nil {
			bad("AdvertiseAddr: %v", err)
		}
	}
	if c.Profile != "" && !slices.Contains(Profiles(), c.Profile) {
		bad("unknown Profile %q (want fast, local, lan or wan)", c.Profile)
	}
	if c.RejoinInterval < 0 {
		bad("RejoinInterval %v is negative", c.RejoinInterval)
	} else if c.RejoinInterval > 0 && c.RejoinInterval < 10*time.Millisecond {
		bad("RejoinInterval %v is below 10ms", c.RejoinInterval)
	}
	if c.ExpectedSize < 0 {
		bad("ExpectedSize %d is negative", c.ExpectedSize)
	}
	if c.RemovalMargin < 0 {
		bad("RemovalMargin %v is negative", c.RemovalMargin)
	}
	if c.ReconnectTimeout < 0 {
		bad("ReconnectTimeout %v is negative", c.ReconnectTimeout)
	}
	return errors.Join(errs...)
}

// splitIPPort parses "ip:port". An empty host is allowed for bind addresses
// (all interfaces).
func splitIPPort(addr string, bind bool) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not ip:port: %v", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: bad port %q", addr, portStr)
	}
	if host == "" && bind {
		host = "0.0.0.0"
	}
	if net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("%q: host must be an IP address", addr)
	}
	if !bind && port == 0 {
		return "", 0, fmt.Errorf("%q: port 0 cannot be advertised", addr)
	}
	return host, port, nil
}

func printable(s string) bool {
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
