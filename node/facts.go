package node

import (
	"context"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// RequestFacts is the node request that answers a node's Facts.
const RequestFacts = "arsenal.facts"

// Facts are one node's measured runtime facts.
type Facts struct {
	Node          string    `json:"node" cbor:"1,keyasint"`
	Incarnation   uint64    `json:"incarnation" cbor:"2,keyasint"`
	Version       string    `json:"version" cbor:"3,keyasint"`
	GoVersion     string    `json:"go_version" cbor:"4,keyasint"`
	GOMAXPROCS    int       `json:"gomaxprocs" cbor:"5,keyasint"`
	NumCPU        int       `json:"num_cpu" cbor:"6,keyasint"`
	Processes     int       `json:"processes" cbor:"7,keyasint"`
	Spawned       uint64    `json:"spawned_total" cbor:"8,keyasint"`
	Crashed       uint64    `json:"crashed_total" cbor:"9,keyasint"`
	Goroutines    int       `json:"goroutines" cbor:"10,keyasint"`
	HeapAlloc     uint64    `json:"heap_alloc_bytes" cbor:"11,keyasint"`
	HeapSys       uint64    `json:"heap_sys_bytes" cbor:"12,keyasint"`
	NumGC         uint32    `json:"gc_cycles" cbor:"13,keyasint"`
	GCPauseTotal  uint64    `json:"gc_pause_total_ns" cbor:"14,keyasint"`
	LastGCPause   uint64    `json:"gc_last_pause_ns" cbor:"15,keyasint"`
	CPUUser       int64     `json:"cpu_user_ns" cbor:"16,keyasint"`
	CPUSystem     int64     `json:"cpu_system_ns" cbor:"17,keyasint"`
	StartedAt     time.Time `json:"started_at" cbor:"18,keyasint"`
	UptimeSeconds float64   `json:"uptime_seconds" cbor:"19,keyasint"`
	MeasuredAt    time.Time `json:"measured_at" cbor:"20,keyasint"`
	MailboxTotal  int       `json:"mailbox_total" cbor:"21,keyasint"`
	MailboxMax    int       `json:"mailbox_max" cbor:"22,keyasint"`
}

// LocalFacts measures this node now.
func (n *Node) LocalFacts() Facts {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := n.rt.Stats()
	f := Facts{
		Node: n.cfg.Name, Incarnation: n.Incarnation(), Version: n.cfg.Version,
		GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		Processes: st.Processes, Spawned: st.Spawned, Crashed: st.Crashed,
		Goroutines: runtime.NumGoroutine(), HeapAlloc: ms.HeapAlloc, HeapSys: ms.HeapSys,
		NumGC: ms.NumGC, GCPauseTotal: ms.PauseTotalNs,
		StartedAt: n.started, UptimeSeconds: time.Since(n.started).Seconds(), MeasuredAt: time.Now(),
	}
	if ms.NumGC > 0 {
		f.LastGCPause = ms.PauseNs[(ms.NumGC+255)%256]
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		f.CPUUser = ru.Utime.Nano()
		f.CPUSystem = ru.Stime.Nano()
	}
	f.MailboxTotal, f.MailboxMax = n.rt.MailboxTotals()
	return f
}

func (n *Node) localFactsHandler(context.Context, string, []byte) (any, error) {
	return n.LocalFacts(), nil
}

// FactsEntry is the last facts collected from one node.
type FactsEntry struct {
	Facts       *Facts        `json:"facts,omitempty"`
	Error       string        `json:"error,omitempty"`
	CollectedAt time.Time     `json:"collected_at"` // when Facts were received
	AttemptAt   time.Time     `json:"attempt_at"`   // the last attempt, which may have failed
	Latency     time.Duration `json:"latency_ns"`
}

type factsCollector struct {
	n    *Node
	kick chan struct{}

	mu      sync.Mutex
	entries map[string]FactsEntry
}

func newFactsCollector(n *Node) *factsCollector {
	return &factsCollector{n: n, kick: make(chan struct{}, 1), entries: map[string]FactsEntry{}}
}

func (c *factsCollector) trigger() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *factsCollector) forget(node string) {
	c.mu.Lock()
	if e, ok := c.entries[node]; ok {
		e.Error = "node is down"
		c.entries[node] = e
	}
	c.mu.Unlock()
}

// loop refreshes every node's facts on an interval and on membership
// changes, asking all nodes in parallel with a timeout each; requests never
// wait on it.
func (c *factsCollector) loop() {
	t := time.NewTicker(c.n.cfg.FactsInterval)
	defer t.Stop()
	c.round()
	for {
		select {
		case <-c.n.stopCh:
			return
		case <-t.C:
		case <-c.kick:
		}
		c.round()
	}
}

func (c *factsCollector) round() {
	n := c.n
	var wg sync.WaitGroup
	for _, m := range n.cl.Members() {
		if !m.Status.Up() {
			continue
		}
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			start := time.Now()
			var f Facts
			err := n.Request(context.Background(), name, RequestFacts, struct{}{}, &f)
			c.mu.Lock()
			e := c.entries[name]
			e.AttemptAt = start
			if err != nil {
				e.Error = err.Error()
			} else {
				e.Facts, e.Error, e.CollectedAt, e.Latency = &f, "", time.Now(), time.Since(start)
			}
			c.entries[name] = e
			c.mu.Unlock()
		}(m.Name)
	}
	wg.Wait()
}

// Facts returns the last collected facts of every node seen.
func (n *Node) Facts() map[string]FactsEntry {
	c := n.facts
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]FactsEntry, len(c.entries))
	for k, v := range c.entries {
		out[k] = v
	}
	return out
}
