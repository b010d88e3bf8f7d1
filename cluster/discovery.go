package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Provider tells a node where its peers may be: libcluster's strategies.
// Discover returns memberlist addresses (host:port). It runs at Start and
// again on every rejoin round, so it should be cheap and honour ctx. An
// empty list with a nil error means "no peers (yet)": the node runs alone
// and keeps asking.
type Provider interface {
	Name() string
	Discover(ctx context.Context) ([]string, error)
}

// Resolver is the part of *net.Resolver the DNS providers use; tests pass a
// fake.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

// StaticSeeds is a fixed list of addresses (libcluster's Epmd strategy).
// The list may include this node's own address; it is skipped.
func StaticSeeds(addrs ...string) Provider {
	return staticSeeds(slices.Clone(addrs))
}

type staticSeeds []string

func (s staticSeeds) Name() string { return "static" }

func (s staticSeeds) Discover(context.Context) ([]string, error) { return slices.Clone(s), nil }

// DNSProvider resolves a name to A/AAAA records and pairs every address with
// one port (libcluster's DNSPoll and Kubernetes.DNS).
type DNSProvider struct {
	Host     string
	Port     int
	Resolver Resolver // nil means net.DefaultResolver
}

// DNS returns a provider for the A/AAAA records of name, all on port.
func DNS(name string, port int) *DNSProvider {
	return &DNSProvider{Host: name, Port: port}
}

// Name implements Provider.
func (p *DNSProvider) Name() string { return "dns:" + p.Host }

// Discover implements Provider. A name that does not exist (yet) is no
// peers, not an error: a headless service has no records until a pod is
// ready.
func (p *DNSProvider) Discover(ctx context.Context) ([]string, error) {
	if p.Port <= 0 || p.Port > 65535 {
		return nil, fmt.Errorf("cluster: dns provider %q: port %d out of range", p.Host, p.Port)
	}
	ips, err := resolverOr(p.Resolver).LookupHost(ctx, p.Host)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("cluster: dns lookup %q: %w", p.Host, err)
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, normalizeAddr(net.JoinHostPort(ip, strconv.Itoa(p.Port))))
	}
	return sortedUnique(out), nil
}

// DNSSRVProvider looks up SRV records (a Kubernetes headless service's named
// port) and takes each target's port from its record. Targets are resolved
// to IP addresses so they compare equal to the addresses members gossip.
type DNSSRVProvider struct {
	Service, Proto, Host string
	Resolver             Resolver // nil means net.DefaultResolver
}

// DNSSRV returns a provider for _service._proto.name SRV records. With empty
// service and proto, name is looked up directly (net.Resolver.LookupSRV).
func DNSSRV(service, proto, name string) *DNSSRVProvider {
	return &DNSSRVProvider{Service: service, Proto: proto, Host: name}
}

// Name implements Provider.
func (p *DNSSRVProvider) Name() string {
	if p.Service == "" && p.Proto == "" {
		return "dnssrv:" + p.Host
	}
	return fmt.Sprintf("dnssrv:_%s._%s.%s", p.Service, p.Proto, p.Host)
}

// Discover implements Provider. A target whose own lookup fails is returned
// as host:port, so memberlist's join can still try to resolve it.
func (p *DNSSRVProvider) Discover(ctx context.Context) ([]string, error) {
	r := resolverOr(p.Resolver)
	_, srvs, err := r.LookupSRV(ctx, p.Service, p.Proto, p.Host)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("cluster: srv lookup %s: %w", p.Name(), err)
	}
	var out []string
	for _, s := range srvs {
		target := strings.TrimSuffix(s.Target, ".")
		if target == "" {
			continue
		}
		port := strconv.Itoa(int(s.Port))
		if net.ParseIP(target) != nil {
			out = append(out, normalizeAddr(net.JoinHostPort(target, port)))
			continue
		}
		ips, err := r.LookupHost(ctx, target)
		if err != nil || len(ips) == 0 {
			out = append(out, net.JoinHostPort(target, port))
			continue
		}
		for _, ip := range ips {
			out = append(out, normalizeAddr(net.JoinHostPort(ip, port)))
		}
	}
	return sortedUnique(out), nil
}

func resolverOr(r Resolver) Resolver {
	if r == nil {
		return net.DefaultResolver
	}
	return r
}

func isNotFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
