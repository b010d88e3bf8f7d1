package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxFrameSize      = 8 << 20
	DefaultHandshakeTimeout  = 5 * time.Second
	DefaultKeepaliveInterval = 2 * time.Second
	DefaultKeepaliveMisses   = 4
	DefaultWriteTimeout      = 10 * time.Second
	DefaultSendQueueBytes    = 16 << 20
)

// Config configures a Network. Zero values take the defaults above.
type Config struct {
	// ClusterName must be equal on both sides of a link, else the link is
	// refused with ErrClusterMismatch. Also use it as memberlist's Label.
	ClusterName string
	// NodeName is this node's name, "name@host". Use the same name for
	// memberlist's Config.Name so fault rules by name cover gossip too.
	NodeName string
	// Incarnation changes on every node start; peers see it in PeerInfo.
	Incarnation uint64
	// Secret is the cluster secret. It is never sent: links prove it with
	// an HMAC, gossip uses a key derived from it (GossipKey).
	Secret []byte

	// BindAddr is host:port for both TCP and UDP. Port 0 picks a free port,
	// the same for both protocols.
	BindAddr string
	// AdvertiseAddr is the address peers should use, "ip" or "ip:port", when
	// it differs from the bound one (NAT, containers, 0.0.0.0). A missing or
	// zero port means the bound port. Without it, a specific bound IP is
	// advertised as is, and an unspecified one (0.0.0.0, ::) is replaced by
	// the first private address of this host.
	AdvertiseAddr string

	// TLS, when set, wraps every link in TLS with this config (used for both
	// the client and the server side; see LoadTLS). Both peers must agree.
	// Gossip is not wrapped: memberlist encrypts it with its SecretKey.
	TLS *tls.Config

	// MaxFrameSize is the largest frame payload accepted or sent. A peer
	// that sends a larger frame loses its link (default 8 MiB).
	MaxFrameSize int
	// HandshakeTimeout bounds connection set-up, from TCP connect to the
	// last handshake byte (default 5s). A peer that stalls is dropped.
	HandshakeTimeout time.Duration
	// KeepaliveInterval is how often a link pings its peer (default 2s).
	KeepaliveInterval time.Duration
	// KeepaliveMisses is how many intervals may pass with nothing received
	// before the link closes with ErrKeepalive (default 4).
	KeepaliveMisses int
	// WriteTimeout bounds one blocked socket write; a peer that stops
	// reading for that long loses its link (default 10s).
	WriteTimeout time.Duration
	// SendQueueBytes bounds the frames queued on one link but not yet
	// written (default 16 MiB). Send never waits for room: a frame that
	// would pass the bound closes the link with ErrOverload.
	SendQueueBytes int

	// Faults is the fault-injection rule set; nil creates an empty one
	// (see Network.Faults).
	Faults *Faults
	// Net is where the Network binds and dials; nil means the operating
	// system's network. Package sim provides an in-memory one.
	Net Net
	// Logger receives the transport's logs; nil uses slog.Default().
	Logger *slog.Logger
	// AcceptPeer, if set, vets an inbound peer after it has proved the
	// secret; an error refuses the link, and the peer's Dial fails with it
	// (wrap ErrNameTaken for a name already in use in the cluster).
	AcceptPeer func(PeerInfo) error
	// OnLink is called for every established link, inbound or outbound,
	// after the handshake and before any frame is delivered, so it is the
	// place to call Link.SetHandler. For outbound links it runs inside Dial.
	// It must not block for long or call Network.Close.
	OnLink func(*Link)
}

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	if err := checkText(c.ClusterName, maxClusterLen); err != nil {
		return fmt.Errorf("transport: ClusterName: %v", err)
	}
	if err := checkText(c.NodeName, maxNameLen); err != nil {
		return fmt.Errorf("transport: NodeName: %v", err)
	}
	if len(c.Secret) == 0 {
		return errors.New("transport: Secret is empty: links would be unauthenticated")
	}
	if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
		return fmt.Errorf("transport: BindAddr %q: %v", c.BindAddr, err)
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := parseAdvertise(c.AdvertiseAddr); err != nil {
			return err
		}
	}
	if c.MaxFrameSize < 0 || c.MaxFrameSize > 1<<30 {
		return fmt.Errorf("transport: MaxFrameSize %d out of range [0, 1 GiB]", c.MaxFrameSize)
	}
	for name, d := range map[string]time.Duration{
		"HandshakeTimeout": c.HandshakeTimeout, "KeepaliveInterval": c.KeepaliveInterval, "WriteTimeout": c.WriteTimeout,
	} {
		if d < 0 {
			return fmt.Errorf("transport: %s is negative", name)
		}
	}
	if c.KeepaliveMisses < 0 || c.SendQueueBytes < 0 {
		return errors.New("transport: KeepaliveMisses and SendQueueBytes must not be negative")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.KeepaliveInterval == 0 {
		c.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if c.KeepaliveMisses == 0 {
		c.KeepaliveMisses = DefaultKeepaliveMisses
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.SendQueueBytes == 0 {
		c.SendQueueBytes = DefaultSendQueueBytes
	}
	if c.Faults == nil {
		c.Faults = NewFaults()
	}
	if c.Net == nil {
		c.Net = osNet{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// parseAdvertise splits "ip" or "ip:port"; port 0 means "the bound port".
func parseAdvertise(s string) (netip.Addr, int, error) {
	host, port := s, "0"
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("transport: AdvertiseAddr %q: host must be an IP address (memberlist needs one)", s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("transport: AdvertiseAddr %q: bad port", s)
	}
	return ip.Unmap(), int(p), nil
}

// privateIP finds an address to advertise when bound to 0.0.0.0 or ::.
func privateIP() (netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("transport: listing interface addresses: %w", err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().IsPrivate() {
			return p.Addr().Unmap(), nil
		}
	}
	return netip.Addr{}, errors.New("transport: bound to an unspecified address and no private IP found: set AdvertiseAddr")
}

// LoadTLS builds a mutual-TLS config from PEM files: our certificate and key,
// and the CA that must have signed every peer's certificate. Both sides of a
// link present and verify certificates (TLS 1.3). Certificates must carry the
// addresses nodes dial (IP SANs for IP addresses) since the client verifies
// the server name.
func LoadTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("transport: loading certificate: %w", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("transport: reading CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("transport: no certificates found in CA file %s", caFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}, nil
}
