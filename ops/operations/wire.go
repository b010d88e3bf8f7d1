package operations

import (
	"strconv"
	"time"

	"github.com/arsenal-go/arsenal/inspect"
	"github.com/arsenal-go/arsenal/node"
)

// The answer types shared by several operations. Each operation's own
// answer type is in its file. They follow the rules of ops' answer
// schemas: incarnations and other 64-bit identifiers are strings,
// durations are milliseconds in …_ms fields, lists are never null.

// NodeFacts is node.Facts for the wire.
type NodeFacts struct {
	Node           string    `json:"node"`
	Incarnation    uint64    `json:"incarnation,string"`
	Version        string    `json:"version"`
	GoVersion      string    `json:"go_version"`
	GOMAXPROCS     int       `json:"gomaxprocs"`
	NumCPU         int       `json:"num_cpu"`
	Processes      int       `json:"processes"`
	Spawned        uint64    `json:"spawned_total" arsenal:"count"`
	Crashed        uint64    `json:"crashed_total" arsenal:"count"`
	Goroutines     int       `json:"goroutines"`
	HeapAlloc      uint64    `json:"heap_alloc_bytes" arsenal:"count"`
	HeapSys        uint64    `json:"heap_sys_bytes" arsenal:"count"`
	NumGC          uint32    `json:"gc_cycles"`
	GCPauseTotalMS float64   `json:"gc_pause_total_ms"`
	LastGCPauseMS  float64   `json:"gc_last_pause_ms"`
	CPUUserMS      float64   `json:"cpu_user_ms"`
	CPUSystemMS    float64   `json:"cpu_system_ms"`
	StartedAt      time.Time `json:"started_at"`
	UptimeMS       float64   `json:"uptime_ms"`
	MeasuredAt     time.Time `json:"measured_at"`
	MailboxTotal   int       `json:"mailbox_total"`
	MailboxMax     int       `json:"mailbox_max"`
}

func wireFacts(f node.Facts) NodeFacts {
	return NodeFacts{Node: f.Node, Incarnation: f.Incarnation, Version: f.Version, GoVersion: f.GoVersion,
		GOMAXPROCS: f.GOMAXPROCS, NumCPU: f.NumCPU, Processes: f.Processes, Spawned: f.Spawned, Crashed: f.Crashed,
		Goroutines: f.Goroutines, HeapAlloc: f.HeapAlloc, HeapSys: f.HeapSys, NumGC: f.NumGC,
		GCPauseTotalMS: inspect.Millis(time.Duration(f.GCPauseTotal)), LastGCPauseMS: inspect.Millis(time.Duration(f.LastGCPause)),
		CPUUserMS: inspect.Millis(time.Duration(f.CPUUser)), CPUSystemMS: inspect.Millis(time.Duration(f.CPUSystem)),
		StartedAt: f.StartedAt, UptimeMS: f.UptimeSeconds * 1000, MeasuredAt: f.MeasuredAt,
		MailboxTotal: f.MailboxTotal, MailboxMax: f.MailboxMax}
}

// FactsEntry is what this node last collected from one node.
type FactsEntry struct {
	Facts       *NodeFacts `json:"facts,omitempty"`
	Error       string     `json:"error,omitempty" doc:"why the last collection failed"`
	CollectedAt time.Time  `json:"collected_at" doc:"when the facts were received"`
	AttemptAt   time.Time  `json:"attempt_at" doc:"the last attempt, which may have failed"`
	LatencyMS   float64    `json:"latency_ms"`
}

func wireFactsMap(m map[string]node.FactsEntry) map[string]FactsEntry {
	out := make(map[string]FactsEntry, len(m))
	for k, e := range m {
		w := FactsEntry{Error: e.Error, CollectedAt: e.CollectedAt, AttemptAt: e.AttemptAt, LatencyMS: inspect.Millis(e.Latency)}
		if e.Facts != nil {
			f := wireFacts(*e.Facts)
			w.Facts = &f
		}
		out[k] = w
	}
	return out
}

// Link is a node link as this node sees it.
type Link struct {
	Node      string  `json:"node"`
	Connected bool    `json:"connected"`
	Addr      string  `json:"addr,omitempty"`
	RTTMS     float64 `json:"rtt_ms" doc:"the last measured round trip, 0 when not measured"`
}

func wireLink(l node.LinkInfo) Link {
	return Link{Node: l.Node, Connected: l.Connected, Addr: l.Addr, RTTMS: inspect.Millis(l.RTT)}
}

// u64 is a 64-bit identifier in its wire form.
func u64(v uint64) string { return strconv.FormatUint(v, 10) }
