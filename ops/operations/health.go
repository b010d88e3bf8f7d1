package operations

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/inspect"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/ops"
)

// Health scoring. Each alive node starts at 100 and loses points for what
// its measured facts show; the reasons are listed with every deduction.
// Nothing is estimated: a node whose facts are missing or stale says so.
const (
	gib = 1 << 30
)

// NodeHealth is one node's score and the reasons for it.
type NodeHealth struct {
	Node       string   `json:"node"`
	Status     string   `json:"status" enum:"alive,suspect,dead"`
	Score      int      `json:"score"`
	Issues     []string `json:"issues"`
	CPUPercent *float64 `json:"cpu_percent,omitempty"` // of GOMAXPROCS cores, between the last two samples
}

// HealthSnapshot is one entry of the history.
type HealthSnapshot struct {
	Time      time.Time `json:"time"`
	Overall   string    `json:"overall_status" enum:"healthy,warning,degraded,critical"`
	NodesUp   int       `json:"nodes_up"`
	Nodes     int       `json:"nodes_total"`
	Partition string    `json:"partition"`
	MinScore  int       `json:"min_score"`
	// Scores is every scored node's score in this snapshot (the answering
	// node's view, as in nodes[].score; a node that left is not scored).
	Scores map[string]int `json:"node_scores"`
}

// HealthMonitor samples the cluster's health on an interval and keeps a
// bounded history, so the health operation can show a real one.
type HealthMonitor struct {
	n        *node.Node
	interval time.Duration
	size     int

	mu      sync.Mutex
	history []HealthSnapshot
	prevCPU map[string]cpuSample
	cpu     map[string]float64
}

type cpuSample struct {
	at  time.Time
	cpu int64
	inc uint64
}

// NewHealthMonitor makes a monitor that keeps size snapshots taken every
// interval.
func NewHealthMonitor(n *node.Node, interval time.Duration, size int) *HealthMonitor {
	return &HealthMonitor{n: n, interval: interval, size: size, prevCPU: map[string]cpuSample{}, cpu: map[string]float64{}}
}

// Run samples until ctx ends.
func (h *HealthMonitor) Run(ctx context.Context) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	h.sample()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.sample()
		}
	}
}

func (h *HealthMonitor) sample() {
	facts := h.n.Facts()
	h.mu.Lock()
	for name, e := range facts {
		if e.Facts == nil {
			continue
		}
		cur := cpuSample{at: e.Facts.MeasuredAt, cpu: e.Facts.CPUUser + e.Facts.CPUSystem, inc: e.Facts.Incarnation}
		if prev, ok := h.prevCPU[name]; ok && prev.inc == cur.inc && cur.at.After(prev.at) {
			wall := cur.at.Sub(prev.at).Nanoseconds()
			procs := max(e.Facts.GOMAXPROCS, 1)
			h.cpu[name] = 100 * float64(cur.cpu-prev.cpu) / float64(wall) / float64(procs)
		}
		h.prevCPU[name] = cur
	}
	h.mu.Unlock()
	rep := h.Report()
	scores := make(map[string]int, len(rep.Nodes))
	for _, nh := range rep.Nodes {
		scores[nh.Node] = nh.Score
	}
	h.mu.Lock()
	h.history = append(h.history, HealthSnapshot{Time: time.Now(), Overall: rep.Overall, NodesUp: rep.NodesUp,
		Nodes: rep.NodesTotal, Partition: string(rep.Partition.State), MinScore: rep.minScore(), Scores: scores})
	if len(h.history) > h.size {
		h.history = h.history[len(h.history)-h.size:]
	}
	h.mu.Unlock()
}

// History returns the snapshots, oldest first.
func (h *HealthMonitor) History() []HealthSnapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]HealthSnapshot(nil), h.history...)
}

// HealthReport is the cluster's health as this node sees it.
type HealthReport struct {
	Overall         string                  `json:"overall_status" enum:"healthy,warning,degraded,critical"`
	Partition       cluster.PartitionStatus `json:"partition_status"`
	NodesTotal      int                     `json:"nodes_total"`
	NodesUp         int                     `json:"nodes_up"`
	NodesHealthy    int                     `json:"nodes_healthy"` // score ≥ 80
	Nodes           []NodeHealth            `json:"nodes"`
	Recommendations []string                `json:"recommendations"`
	FormedAt        time.Time               `json:"formed_at"`
	UptimeMS        float64                 `json:"cluster_uptime_ms"`
	Metrics         *HealthMetrics          `json:"metrics,omitempty"`
	History         []HealthSnapshot        `json:"history,omitempty"`
}

func (r HealthReport) minScore() int {
	m := 100
	for _, n := range r.Nodes {
		m = min(m, n.Score)
	}
	return m
}

// HealthMetrics are the measured numbers behind the scores.
type HealthMetrics struct {
	TotalProcesses int                    `json:"total_processes"`
	MailboxTotal   int                    `json:"mailbox_backlog_total"`
	MailboxMax     int                    `json:"mailbox_backlog_max"`
	PerNode        map[string]NodeMetrics `json:"per_node"`
}

// NodeMetrics are one node's measured numbers.
type NodeMetrics struct {
	Processes      int       `json:"processes"`
	Goroutines     int       `json:"goroutines"`
	HeapAlloc      uint64    `json:"heap_alloc_bytes" arsenal:"count"`
	HeapSys        uint64    `json:"heap_sys_bytes" arsenal:"count"`
	MailboxTotal   int       `json:"mailbox_backlog_total"`
	MailboxMax     int       `json:"mailbox_backlog_max"`
	GCCycles       uint32    `json:"gc_cycles"`
	GCPauseTotalMS float64   `json:"gc_pause_total_ms"`
	GCLastPauseMS  float64   `json:"gc_last_pause_ms"`
	MeasuredAt     time.Time `json:"measured_at"`
	UptimeMS       float64   `json:"uptime_ms"`
}

// Report scores every node now from the facts collected in the background.
func (h *HealthMonitor) Report() HealthReport {
	n := h.n
	top := n.Cluster().Topology()
	facts := n.Facts()
	h.mu.Lock()
	cpu := make(map[string]float64, len(h.cpu))
	for k, v := range h.cpu {
		cpu[k] = v
	}
	h.mu.Unlock()
	stale := 3 * n.Config().FactsInterval
	rep := HealthReport{Partition: top.Partition, FormedAt: top.FormedAt, UptimeMS: inspect.Millis(time.Since(top.FormedAt)),
		Nodes: []NodeHealth{}, Recommendations: []string{}}
	for _, m := range top.Nodes {
		if m.Status == cluster.StatusLeft {
			continue // left on purpose: not part of the cluster's health
		}
		rep.NodesTotal++
		nh := NodeHealth{Node: m.Name, Status: string(m.Status), Issues: []string{}}
		switch m.Status {
		case cluster.StatusDead:
			nh.Score = 0
			nh.Issues = append(nh.Issues, fmt.Sprintf("down since %s", m.Since.Format(time.RFC3339)))
		case cluster.StatusSuspect:
			rep.NodesUp++
			nh.Score = 10
			nh.Issues = append(nh.Issues, "unreachable: failed probes, suspected")
		default:
			rep.NodesUp++
			nh.Score = 100
			e, ok := facts[m.Name]
			if c, ok := cpu[m.Name]; ok {
				nh.CPUPercent = &c
			}
			nh.Score, nh.Issues = score(e, ok, stale, nh.CPUPercent)
		}
		if nh.Score >= 80 {
			rep.NodesHealthy++
		}
		rep.Nodes = append(rep.Nodes, nh)
	}
	sort.Slice(rep.Nodes, func(i, j int) bool { return rep.Nodes[i].Node < rep.Nodes[j].Node })
	switch {
	case top.Partition.State == cluster.Minority || top.Partition.State == cluster.Partial:
		rep.Overall = "degraded"
	case rep.NodesTotal == 0 || rep.NodesUp == rep.NodesTotal:
		rep.Overall = "healthy"
	case float64(rep.NodesUp) >= 0.8*float64(rep.NodesTotal):
		rep.Overall = "warning"
	case float64(rep.NodesUp) >= 0.5*float64(rep.NodesTotal):
		rep.Overall = "degraded"
	default:
		rep.Overall = "critical"
	}
	if rep.Overall == "healthy" && rep.NodesHealthy < rep.NodesTotal {
		rep.Overall = "warning"
	}
	rep.Recommendations = recommend(rep)
	return rep
}

func score(e node.FactsEntry, ok bool, stale time.Duration, cpu *float64) (int, []string) {
	s := 100
	issues := []string{}
	if !ok || e.Facts == nil {
		why := "no facts collected yet"
		if ok && e.Error != "" {
			why = "facts unavailable: " + e.Error
		}
		return 50, append(issues, why+" (-50)")
	}
	if age := time.Since(e.CollectedAt); age > stale {
		s -= 20
		issues = append(issues, fmt.Sprintf("facts stale: last answer %s ago (-20)", age.Round(time.Second)))
	}
	f := e.Facts
	switch {
	case f.HeapAlloc > 4*gib:
		s -= 30
		issues = append(issues, fmt.Sprintf("high memory: heap %.1f GiB (-30)", float64(f.HeapAlloc)/gib))
	case f.HeapAlloc > gib:
		s -= 10
		issues = append(issues, fmt.Sprintf("moderate memory: heap %.1f GiB (-10)", float64(f.HeapAlloc)/gib))
	}
	if cpu != nil {
		switch c := *cpu; {
		case c > 90:
			s -= 40
			issues = append(issues, fmt.Sprintf("CPU %.0f%% (-40)", c))
		case c > 70:
			s -= 20
			issues = append(issues, fmt.Sprintf("CPU %.0f%% (-20)", c))
		case c > 50:
			s -= 5
			issues = append(issues, fmt.Sprintf("CPU %.0f%% (-5)", c))
		}
	}
	switch {
	case f.Processes > 10000:
		s -= 15
		issues = append(issues, fmt.Sprintf("%d processes (-15)", f.Processes))
	case f.Processes > 5000:
		s -= 5
		issues = append(issues, fmt.Sprintf("%d processes (-5)", f.Processes))
	}
	switch {
	case f.MailboxMax > 10000:
		s -= 20
		issues = append(issues, fmt.Sprintf("a mailbox holds %d messages (-20)", f.MailboxMax))
	case f.MailboxMax > 1000:
		s -= 10
		issues = append(issues, fmt.Sprintf("a mailbox holds %d messages (-10)", f.MailboxMax))
	}
	return max(s, 0), issues
}

func recommend(r HealthReport) []string {
	out := []string{}
	switch r.Partition.State {
	case cluster.Minority:
		out = append(out, fmt.Sprintf("This node is on the minority side of a partition (%d of %d expected nodes up): check the network between the nodes.", r.Partition.Up, r.Partition.Expected))
	case cluster.Partial:
		out = append(out, fmt.Sprintf("%d of %d expected nodes are up: find the missing nodes (crashed, or cut off).", r.Partition.Up, r.Partition.Expected))
	}
	if r.Partition.ProfileWarning != "" {
		out = append(out, "This node's failure detection does not fit the network: "+r.Partition.ProfileWarning+".")
	}
	for _, nh := range r.Nodes {
		if len(nh.Issues) > 0 {
			out = append(out, fmt.Sprintf("%s (score %d): %s", nh.Node, nh.Score, joinIssues(nh.Issues)))
		}
	}
	return out
}

func joinIssues(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += "; "
		}
		out += x
	}
	return out
}

func (h *HealthMonitor) metrics() *HealthMetrics {
	m := &HealthMetrics{PerNode: map[string]NodeMetrics{}}
	for name, e := range h.n.Facts() {
		if e.Facts == nil || e.Error != "" {
			continue
		}
		f := e.Facts
		m.TotalProcesses += f.Processes
		m.MailboxTotal += f.MailboxTotal
		m.MailboxMax = max(m.MailboxMax, f.MailboxMax)
		m.PerNode[name] = NodeMetrics{Processes: f.Processes, Goroutines: f.Goroutines, HeapAlloc: f.HeapAlloc,
			HeapSys: f.HeapSys, MailboxTotal: f.MailboxTotal, MailboxMax: f.MailboxMax, GCCycles: f.NumGC,
			GCPauseTotalMS: inspect.Millis(time.Duration(f.GCPauseTotal)), GCLastPauseMS: inspect.Millis(time.Duration(f.LastGCPause)),
			MeasuredAt: f.MeasuredAt, UptimeMS: f.UptimeSeconds * 1000}
	}
	return m
}

func health(env *Env) ops.Operation {
	return ops.Operation{
		Name: "cluster.health", Category: "cluster",
		Summary: "Cluster health: overall status, a score per node with the reason for every deduction, partition status, recommendations, measured metrics and history",
		Description: "Each alive node starts at 100: heap over 1 GiB −10, over 4 GiB −30; CPU over 50/70/90 % of its cores −5/−20/−40; " +
			"over 5 000/10 000 processes −5/−15; a mailbox over 1 000/10 000 messages −10/−20; facts older than three collection intervals −20; " +
			"no facts −50. Suspect nodes score 10, dead nodes 0; nodes that left are not counted. Overall: degraded on a partition; " +
			"else by the share of nodes up: all healthy, ≥ 80 % warning, ≥ 50 % degraded, below critical (warning also when a node scores under 80). " +
			"History: one snapshot per sampling interval, bounded.",
		Method: "GET", Path: "/api/v1/cluster/health", Response: HealthReport{},
		Params: []ops.Param{
			{Name: "include_metrics", Type: ops.TypeBool, In: ops.InQuery, Default: true, Description: "add the measured numbers per node"},
			{Name: "include_history", Type: ops.TypeBool, In: ops.InQuery, Default: false, Description: "add the history: overall status and each node's score per snapshot"},
			{Name: "history_limit", Type: ops.TypeInt, In: ops.InQuery, Default: 0, Min: f(0), Description: "with include_history: only the last this many snapshots (0: all kept)"},
		},
		Run: func(ctx context.Context, req *ops.Request) (*ops.Result, error) {
			rep := env.Health.Report()
			if req.Params.Bool("include_metrics") {
				rep.Metrics = env.Health.metrics()
			}
			if req.Params.Bool("include_history") {
				rep.History = env.Health.History()
				if n := req.Params.Int("history_limit"); n > 0 && len(rep.History) > n {
					rep.History = rep.History[len(rep.History)-n:]
				}
			}
			return &ops.Result{Data: rep, Meta: map[string]any{"overall_status": rep.Overall, "nodes_healthy": rep.NodesHealthy, "nodes_total": rep.NodesTotal}}, nil
		},
	}
}
