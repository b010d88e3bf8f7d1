package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"strconv"
	"strings"
	"time"
)

// Status is a member's state as this node sees it.
type Status string

const (
	// StatusAlive: the member answers probes, or nothing says otherwise.
	StatusAlive Status = "alive"
	// StatusSuspect: a probe from this node failed; memberlist's suspicion
	// timer runs and the member may still refute it.
	StatusSuspect Status = "suspect"
	// StatusDead: memberlist declared the member failed (crash, partition).
	StatusDead Status = "dead"
	// StatusLeft: the member left on purpose (Leave), it is not missing.
	StatusLeft Status = "left"
)

// Up reports whether a member in this status still counts as part of the
// cluster: alive or suspect. Partition status and mode count Up members, so a
// single failed probe does not flip them.
func (s Status) Up() bool { return s == StatusAlive || s == StatusSuspect }

// Member is one node of the cluster as seen from this node.
type Member struct {
	Name        string            `json:"name"`
	Incarnation uint64            `json:"incarnation"`         // changes on every restart of the node
	GossipAddr  string            `json:"gossip_addr"`         // memberlist address (host:port); what joins dial
	NodeAddr    string            `json:"node_addr"`           // node-traffic address from the member's metadata
	HTTPAddr    string            `json:"http_addr,omitempty"` // may be empty
	Meta        map[string]string `json:"meta,omitempty"`
	Status      Status            `json:"status"`
	Since       time.Time         `json:"since"` // when Status last changed in this node's view
	// Removed and Joining come from the replicated membership records
	// (standing.go; doc.go, "Admission and removal"), not from this
	// node's view alone:
	//
	//   - Removed: the member does not count in any decision (out of the
	//     partition status's denominator and of the split-brain tie-break
	//     and keep-oldest candidates): a side that kept running removed
	//     it (dead past the removal margin), or it was never admitted.
	//     It stays listed and is retried by the rejoin loop; when it is
	//     back, an up member admits it again.
	//   - Joining: its incarnation is not admitted yet (it joined, or
	//     restarted): it is not up for any decision, and runs nothing.
	//     Joining and not Removed: an earlier incarnation is admitted and
	//     still counts, as a dead member, until the new one is admitted
	//     or the old one removed.
	Removed bool `json:"removed,omitempty"`
	Joining bool `json:"joining,omitempty"`
}

// Counted reports whether the member counts in the decisions: admitted
// at its incarnation, not removed, not left. (Dead members count too, as
// missing ones.)
func (m Member) Counted() bool { return m.counted() }

func (m Member) clone() Member {
	m.Meta = maps.Clone(m.Meta)
	return m
}

// metaVersion prefixes the encoded metadata so the format can evolve.
const metaVersion = 1

// wireMeta is what every node publishes in memberlist's node metadata.
// Short JSON keys because memberlist caps metadata at 512 bytes.
type wireMeta struct {
	Cluster     string            `json:"c"`
	Incarnation uint64            `json:"i"`
	NodeAddr    string            `json:"n,omitempty"`
	HTTPAddr    string            `json:"h,omitempty"`
	Tags        map[string]string `json:"t,omitempty"`
}

func encodeMeta(m wireMeta) []byte {
	b, err := json.Marshal(m)
	if err != nil { // a struct of strings and a map of strings always marshals
		panic(err)
	}
	return append([]byte{metaVersion}, b...)
}

var errNoMeta = errors.New("no arsenal metadata")

func decodeMeta(b []byte) (wireMeta, error) {
	var m wireMeta
	if len(b) == 0 {
		return m, errNoMeta
	}
	if b[0] != metaVersion {
		return m, fmt.Errorf("unknown metadata version %d", b[0])
	}
	if err := json.Unmarshal(b[1:], &m); err != nil {
		return m, fmt.Errorf("bad metadata: %w", err)
	}
	return m, nil
}

// normalizeAddr makes host:port strings comparable: IP literals are printed
// canonically (IPv4-mapped IPv6 becomes IPv4). Host names stay as they are.
func normalizeAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		host = ip.String()
	} else {
		host = strings.ToLower(host)
	}
	return net.JoinHostPort(host, port)
}

func joinHostPort(ip net.IP, port int) string {
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(port))
}
