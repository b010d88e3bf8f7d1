package sim

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

func (c *Cluster) record(format string, args ...any) {
	line := fmt.Sprintf("+%8.3fs  ", time.Since(c.started).Seconds()) + fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.timeline = append(c.timeline, line)
	c.mu.Unlock()
}

// Timeline returns what was done to the cluster, in order, each line with
// the time since New: starts, faults, heals, kills, restarts.
func (c *Cluster) Timeline() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.timeline...)
}

func (c *Cluster) timelineText() string {
	return "-- timeline --\n" + strings.Join(c.Timeline(), "\n")
}

// Matrix returns the membership matrix: row i is how node i sees every
// node (alive, suspect, dead, left, "-" for unknown), with its state and
// partition status; down nodes show their state instead.
func (c *Cluster) Matrix() string {
	var w strings.Builder
	nodes := c.list()
	w.WriteString("-- membership matrix (row sees column) --\n")
	fmt.Fprintf(&w, "%-16s", "")
	for _, sn := range nodes {
		fmt.Fprintf(&w, "%-16s", sn.name)
	}
	w.WriteString("partition\n")
	for i, sn := range nodes {
		fmt.Fprintf(&w, "%-16s", sn.name)
		n := c.Node(i)
		if n == nil {
			fmt.Fprintf(&w, "(%s)\n", c.State(i))
			continue
		}
		st := map[string]string{}
		for _, m := range n.Cluster().Members() {
			st[m.Name] = string(m.Status)
		}
		for _, o := range nodes {
			s := st[o.name]
			if s == "" {
				s = "-"
			}
			fmt.Fprintf(&w, "%-16s", s)
		}
		p := n.Cluster().Partition()
		fmt.Fprintf(&w, "%s %d/%d", p.State, p.Up, p.Expected)
		if c.State(i) == Paused {
			w.WriteString(" (paused)")
		}
		w.WriteByte('\n')
	}
	if rules := c.nw.Paths(); len(rules) > 0 {
		w.WriteString("-- network faults --\n")
		for _, r := range rules {
			fmt.Fprintf(&w, "%s -> %s: %s\n", r.From, r.To, r.PathFaults)
		}
	}
	return strings.TrimRight(w.String(), "\n")
}

// Diagnostics returns the matrix, the timeline, the network's counters and
// every node's recent logs, prefixed with the node's name: what a failed
// test should print.
func (c *Cluster) Diagnostics() string {
	var w strings.Builder
	fmt.Fprintf(&w, "==== sim diagnostics (seed %d) ====\n", c.opts.Seed)
	w.WriteString(c.Matrix())
	w.WriteString("\n")
	w.WriteString(c.timelineText())
	fmt.Fprintf(&w, "\n-- network counters --\n%+v\n", c.nw.Stats())
	for i, sn := range c.list() {
		fmt.Fprintf(&w, "-- %s logs --\n", sn.name)
		for _, l := range strings.Split(strings.TrimRight(c.Logs(i), "\n"), "\n") {
			fmt.Fprintf(&w, "[%s] %s\n", sn.name, l)
		}
	}
	return w.String()
}

// logRing keeps the last lines written to it.
type logRing struct {
	mu    sync.Mutex
	max   int
	lines []string
	start int
	drop  int
}

func newLogRing(max int) *logRing { return &logRing{max: max} }

func (r *logRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if len(r.lines) < r.max {
			r.lines = append(r.lines, l)
			continue
		}
		r.lines[r.start] = l
		r.start = (r.start + 1) % r.max
		r.drop++
	}
	return len(p), nil
}

func (r *logRing) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var w strings.Builder
	if r.drop > 0 {
		fmt.Fprintf(&w, "… %d earlier lines …\n", r.drop)
	}
	for _, l := range r.lines[r.start:] {
		w.WriteString(l + "\n")
	}
	for _, l := range r.lines[:r.start] {
		w.WriteString(l + "\n")
	}
	return w.String()
}

// fanout sends records to two handlers.
type fanout [2]slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	return f[0].Enabled(ctx, l) || f[1].Enabled(ctx, l)
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			_ = h.Handle(ctx, r.Clone())
		}
	}
	return nil
}

func (f fanout) WithAttrs(as []slog.Attr) slog.Handler {
	return fanout{f[0].WithAttrs(as), f[1].WithAttrs(as)}
}

func (f fanout) WithGroup(name string) slog.Handler {
	return fanout{f[0].WithGroup(name), f[1].WithGroup(name)}
}
