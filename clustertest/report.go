package clustertest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Failure reports: when a test fails, the harness writes one report per
// cluster under ReportDir — a JSON file and a text timeline that merge
// the History (faults, undos, waits, membership changes, signals) and
// every node's log lines on one time axis — and logs their paths.

// ReportDir is where failure reports go: $ARSENAL_TEST_REPORTS, else
// <temp dir>/arsenal-test-reports. CI can collect the directory.
func ReportDir() string {
	if d := os.Getenv("ARSENAL_TEST_REPORTS"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "arsenal-test-reports")
}

// ReportLine is one line of a report's timeline.
type ReportLine struct {
	At   time.Duration `json:"at_ns"` // since the cluster's start
	Kind string        `json:"kind"`  // a History kind, or "log"
	Node string        `json:"node,omitempty"`
	Text string        `json:"text"`
}

// Report is what a failure report file holds.
type Report struct {
	Test     string       `json:"test"`
	Cluster  string       `json:"cluster"`
	Backend  string       `json:"backend"`
	Started  time.Time    `json:"started"`
	Written  time.Time    `json:"written"`
	Faults   []Fault      `json:"faults"`
	Timeline []ReportLine `json:"timeline"`
}

var slogTime = regexp.MustCompile(`(?:^|\s)time=(\S+)`)

// logLines turns a node's log (slog text or JSON lines) into timeline
// lines; a line without a time takes the time of the line before it.
func logLines(node, logs string, start time.Time) []ReportLine {
	var out []ReportLine
	var last time.Duration
	for _, l := range strings.Split(strings.TrimRight(logs, "\n"), "\n") {
		if l == "" {
			continue
		}
		var ts string
		if m := slogTime.FindStringSubmatch(l); m != nil {
			ts = m[1]
		} else if strings.HasPrefix(l, "{") {
			var j struct {
				Time string `json:"time"`
			}
			if json.Unmarshal([]byte(l), &j) == nil {
				ts = j.Time
			}
		}
		if t, err := time.Parse(time.RFC3339Nano, strings.Trim(ts, `"`)); err == nil {
			last = t.Sub(start)
		}
		out = append(out, ReportLine{At: last, Kind: "log", Node: node, Text: l})
	}
	return out
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// writeReport writes the JSON and text reports and returns their paths.
func writeReport(test, clusterName, backend string, h *History, logs map[string]string) (string, string, error) {
	r := Report{Test: test, Cluster: clusterName, Backend: backend, Started: h.start, Written: time.Now(), Faults: h.Faults()}
	for _, e := range h.Entries() {
		text := e.Text
		switch e.Kind {
		case KindMember, KindDown, KindExit, KindMessage:
			// String without its time and node prefix
			text = e.String()
			if _, rest, ok := strings.Cut(text, "s  "); ok {
				text = rest
			}
			text = strings.TrimPrefix(text, "["+e.Node+"] ")
		}
		r.Timeline = append(r.Timeline, ReportLine{At: e.At, Kind: string(e.Kind), Node: e.Node, Text: text})
	}
	nodes := make([]string, 0, len(logs))
	for n := range logs {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		r.Timeline = append(r.Timeline, logLines(n, logs[n], h.start)...)
	}
	sort.SliceStable(r.Timeline, func(i, j int) bool { return r.Timeline[i].At < r.Timeline[j].At })
	dir := ReportDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%s-%s", unsafeName.ReplaceAllString(test, "_"), clusterName, time.Now().Format("20060102T150405")))
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(base+".json", b, 0o644); err != nil {
		return "", "", err
	}
	var w strings.Builder
	fmt.Fprintf(&w, "%s: cluster %s (%s), started %s\n\n", test, clusterName, backend, h.start.Format(time.RFC3339Nano))
	fmt.Fprintf(&w, "-- fault life cycles --\n%s\n-- timeline: harness, membership, signals and node logs --\n", h.Summary())
	for _, l := range r.Timeline {
		who := "harness"
		if l.Node != "" {
			who = l.Node
		}
		fmt.Fprintf(&w, "%9.3fs  %-10s [%s] %s\n", l.At.Seconds(), l.Kind, who, l.Text)
	}
	if err := os.WriteFile(base+".txt", []byte(w.String()), 0o644); err != nil {
		return "", "", err
	}
	return base + ".json", base + ".txt", nil
}
