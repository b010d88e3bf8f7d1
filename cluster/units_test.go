package cluster

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := Config{ClusterName: "c", NodeName: "n@h"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no cluster", func(c *Config) { c.ClusterName = "" }, "ClusterName is required"},
		{"space in cluster", func(c *Config) { c.ClusterName = "a b" }, "ClusterName"},
		{"long cluster", func(c *Config) { c.ClusterName = strings.Repeat("x", 256) }, "limit is 255"},
		{"no name", func(c *Config) { c.NodeName = "" }, "NodeName is required"},
		{"control char", func(c *Config) { c.NodeName = "a\nb" }, "NodeName"},
		{"node addr", func(c *Config) { c.NodeAddr = "nohost" }, "NodeAddr"},
		{"http addr", func(c *Config) { c.HTTPAddr = "x" }, "HTTPAddr"},
		{"empty meta key", func(c *Config) { c.Meta = map[string]string{"": "v"} }, "empty key"},
		{"big meta", func(c *Config) { c.Meta = map[string]string{"k": strings.Repeat("v", 500)} }, "512"},
		{"key size", func(c *Config) { c.GossipKey = []byte("short") }, "GossipKey is 5 bytes"},
		{"bind host", func(c *Config) { c.BindAddr = "localhost:1" }, "must be an IP"},
		{"bind port", func(c *Config) { c.BindAddr = "127.0.0.1:x" }, "bad port"},
		{"advertise port 0", func(c *Config) { c.AdvertiseAddr = "10.0.0.1:0" }, "cannot be advertised"},
		{"profile", func(c *Config) { c.Profile = "LAN" }, "unknown Profile"},
		{"rejoin", func(c *Config) { c.RejoinInterval = -time.Second }, "RejoinInterval"},
		{"expected", func(c *Config) { c.ExpectedSize = -1 }, "ExpectedSize"},
		{"reconnect", func(c *Config) { c.ReconnectTimeout = -1 }, "ReconnectTimeout"},
	}
	for _, tc := range cases {
		cfg := ok
		tc.mod(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	// Every problem at once.
	err := (&Config{}).Validate()
	if err == nil || !strings.Contains(err.Error(), "ClusterName") || !strings.Contains(err.Error(), "NodeName") {
		t.Errorf("empty config: %v", err)
	}
	if _, err := Start(context.Background(), Config{NodeName: "x"}); err == nil {
		t.Error("Start accepted an invalid config")
	}
}

func TestProfiles(t *testing.T) {
	for _, in := range []string{"fast", "Local", " lan ", "WAN", ""} {
		if _, err := ParseProfile(in); err != nil {
			t.Errorf("ParseProfile(%q): %v", in, err)
		}
	}
	if _, err := ParseProfile("galactic"); err == nil {
		t.Error("unknown profile accepted")
	}
	lan := ProfileLAN.Settings()
	// memberlist's documented numbers: N ≤ 10 → 4 s / 24 s; N = 100 → 8 s / 48 s.
	for _, tc := range []struct {
		n        int
		min, max time.Duration
	}{{5, 4 * time.Second, 24 * time.Second}, {100, 8 * time.Second, 48 * time.Second}} {
		if mn, mx := lan.SuspicionTimeout(tc.n); mn != tc.min || mx != tc.max {
			t.Errorf("LAN suspicion(%d) = %v/%v, want %v/%v", tc.n, mn, mx, tc.min, tc.max)
		}
	}
	// The estimates bracket what testing-anchors §4.3 measured: LAN N=5
	// 5.8–8.0 s, fast N=5 0.70–0.82 s.
	if typ, up := lan.CrashDetection(5); typ < 5*time.Second || typ > 7*time.Second || up < typ {
		t.Errorf("LAN crash detection %v / %v", typ, up)
	}
	if typ, _ := ProfileFast.Settings().CrashDetection(5); typ < 500*time.Millisecond || typ > time.Second {
		t.Errorf("fast crash detection %v", typ)
	}
	prev := time.Duration(0)
	for _, p := range Profiles() {
		s := p.Settings()
		if s.Profile != p || s.RejoinInterval <= 0 || s.HealBound() <= prev {
			t.Errorf("%s: %+v", p, s)
		}
		prev = s.HealBound()
	}
}

func TestStaticSeeds(t *testing.T) {
	in := []string{"10.0.0.1:7946", "10.0.0.2:7946"}
	p := StaticSeeds(in...)
	in[0] = "changed"
	got, err := p.Discover(context.Background())
	if err != nil || !slices.Equal(got, []string{"10.0.0.1:7946", "10.0.0.2:7946"}) || p.Name() != "static" {
		t.Errorf("static: %v %v", got, err)
	}
}

func TestDNSProvider(t *testing.T) {
	res := &fakeResolver{hosts: map[string][]string{
		"svc.local": {"10.0.0.2", "10.0.0.1", "::ffff:10.0.0.3", "10.0.0.1"},
	}}
	p := DNS("svc.local", 7946)
	p.Resolver = res
	got, err := p.Discover(context.Background())
	want := []string{"10.0.0.1:7946", "10.0.0.2:7946", "10.0.0.3:7946"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("dns: %v %v, want %v", got, err, want)
	}
	p.Host = "missing.local"
	if got, err := p.Discover(context.Background()); err != nil || len(got) != 0 {
		t.Errorf("missing name: %v %v, want no peers and no error", got, err)
	}
	p.Resolver = failingResolver{}
	if _, err := p.Discover(context.Background()); err == nil {
		t.Error("resolver failure not reported")
	}
	p.Port = 0
	if _, err := p.Discover(context.Background()); err == nil {
		t.Error("port 0 accepted")
	}
}

func TestDNSSRVProvider(t *testing.T) {
	res := &fakeResolver{
		hosts: map[string][]string{"pod-a.svc.local": {"10.0.0.1"}, "pod-b.svc.local": {"10.0.0.2", "fd00::2"}},
		srv: map[string][]*net.SRV{"_gossip._tcp.svc.local": {
			{Target: "pod-b.svc.local.", Port: 7001},
			{Target: "pod-a.svc.local.", Port: 7000},
			{Target: "pod-c.svc.local.", Port: 7002}, // not resolvable: kept as a name
			{Target: "10.0.0.9", Port: 7009},
		}},
	}
	p := DNSSRV("gossip", "tcp", "svc.local")
	p.Resolver = res
	got, err := p.Discover(context.Background())
	want := []string{"10.0.0.1:7000", "10.0.0.2:7001", "10.0.0.9:7009", "[fd00::2]:7001", "pod-c.svc.local:7002"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("srv: %v %v\nwant %v", got, err, want)
	}
	if p.Name() != "dnssrv:_gossip._tcp.svc.local" {
		t.Errorf("name %s", p.Name())
	}
	p.Host = "none.local"
	if got, err := p.Discover(context.Background()); err != nil || len(got) != 0 {
		t.Errorf("missing: %v %v", got, err)
	}
	p.Resolver = failingResolver{}
	if _, err := p.Discover(context.Background()); err == nil {
		t.Error("resolver failure not reported")
	}
}

type failingResolver struct{}

var errResolver = errors.New("server misbehaving")

func (failingResolver) LookupHost(context.Context, string) ([]string, error) { return nil, errResolver }
func (failingResolver) LookupSRV(context.Context, string, string, string) (string, []*net.SRV, error) {
	return "", nil, errResolver
}

func TestLogBridge(t *testing.T) {
	h := &captureHandler{}
	var suspects []string
	l := newMemberlistLogger(slogWith(h), func(n string) { suspects = append(suspects, n) })
	l.Printf("[DEBUG] memberlist: Stream connection from=127.0.0.1:1")
	l.Printf("[INFO] memberlist: Suspect n2@127.0.0.1 has failed, no acks received")
	l.Printf("[WARN] memberlist: Refuting a suspect message (from: x)")
	if !slices.Equal(suspects, []string{"n2@127.0.0.1"}) {
		t.Errorf("suspects %v", suspects)
	}
	if h.contains("Stream connection") || !h.contains("Refuting") {
		t.Errorf("records %v", h.records)
	}
}

func TestMetaRoundTrip(t *testing.T) {
	in := wireMeta{Cluster: "c", Incarnation: 42, NodeAddr: "10.0.0.1:1", Tags: map[string]string{"zone": "a"}}
	out, err := decodeMeta(encodeMeta(in))
	if err != nil || out.Cluster != "c" || out.Incarnation != 42 || out.Tags["zone"] != "a" {
		t.Errorf("%+v %v", out, err)
	}
	if _, err := decodeMeta([]byte{9, '{', '}'}); err == nil {
		t.Error("unknown version accepted")
	}
	if _, err := decodeMeta(nil); !errors.Is(err, errNoMeta) {
		t.Errorf("empty: %v", err)
	}
}
