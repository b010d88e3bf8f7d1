package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/arsenal-go/arsenal/internal/clusterstate"
)

// clusterHTTP talks to the nodes' HTTP endpoints on loopback: never
// through a proxy, never for long.
var clusterHTTP = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	Timeout:   2 * time.Second,
}

// readyzBody is the body of GET /readyz (see node/http.go).
type readyzBody struct {
	ready     bool
	Status    string `json:"status"`
	MembersUp int    `json:"members_up"`
	Partition string `json:"partition"`
	Mode      string `json:"mode"`
	Reason    string `json:"reason"`
}

func fetchReadyz(ctx context.Context, httpAddr string) (readyzBody, error) {
	var r readyzBody
	if httpAddr == "" {
		return r, fmt.Errorf("no HTTP address recorded")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/readyz", nil)
	if err != nil {
		return r, err
	}
	resp, err := clusterHTTP.Do(req)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r); err != nil {
		return r, fmt.Errorf("/readyz: %w", err)
	}
	r.ready = resp.StatusCode == http.StatusOK
	return r, nil
}

// getMembers reads how many members the node sees in each status from
// its /metrics (arsenal_cluster_members{status="…"}).
func fetchMemberCounts(ctx context.Context, httpAddr string) (map[string]int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := clusterHTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	return parseMemberMetrics(io.LimitReader(resp.Body, 16<<20))
}

func parseMemberMetrics(r io.Reader) (map[string]int, error) {
	out := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "arsenal_cluster_members{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		_, status, ok := strings.Cut(labels, `status="`)
		if !ok {
			continue
		}
		status, _, _ = strings.Cut(status, `"`)
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			continue
		}
		if v > 0 {
			out[status] = int(v)
		}
	}
	return out, sc.Err()
}

// clusterNodeStatus is one row of 'arsenal cluster status'.
type clusterNodeStatus struct {
	Name        string         `json:"name"`
	PID         int            `json:"pid"`
	Alive       bool           `json:"alive"`
	Ready       bool           `json:"ready"`
	MembersUp   int            `json:"members_up"`
	Members     map[string]int `json:"members,omitempty"`
	Partition   string         `json:"partition,omitempty"`
	Mode        string         `json:"mode,omitempty"`
	NodeAddr    string         `json:"node_addr"`
	HTTPAddr    string         `json:"http_addr"`
	Incarnation uint64         `json:"incarnation"`
	Restarts    int            `json:"restarts"`
	StartedAt   time.Time      `json:"started_at"`
	StoppedAt   *time.Time     `json:"stopped_at,omitempty"`
	Log         string         `json:"log"`
	// Error says why ready and members are unknown for a live node.
	Error string `json:"error,omitempty"`
}

type clusterStatus struct {
	Cluster   string              `json:"cluster"`
	Dir       string              `json:"dir"`
	Profile   string              `json:"profile"`
	Partition [][]string          `json:"partition,omitempty"`
	Alive     int                 `json:"alive"`
	Ready     int                 `json:"ready"`
	Nodes     []clusterNodeStatus `json:"nodes"`
}

// probe asks every live node, in parallel, with a deadline per node.
func probeCluster(dir string, st *clusterstate.State) clusterStatus {
	cs := clusterStatus{Cluster: st.Name, Dir: dir, Profile: st.Profile, Partition: st.Partition, Nodes: make([]clusterNodeStatus, len(st.Nodes))}
	var wg sync.WaitGroup
	for i, n := range st.Nodes {
		s := clusterNodeStatus{Name: n.Name, PID: n.PID, NodeAddr: n.NodeAddr, HTTPAddr: n.HTTPAddr, Incarnation: n.Incarnation,
			Restarts: n.Restarts, StartedAt: n.StartedAt, StoppedAt: n.StoppedAt, Log: n.Log, Alive: nodeRunning(n)}
		cs.Nodes[i] = s
		if !s.Alive {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			s := &cs.Nodes[i]
			r, err := fetchReadyz(ctx, n.HTTPAddr)
			if err != nil {
				s.Error = err.Error()
				return
			}
			s.Ready, s.MembersUp, s.Partition, s.Mode = r.ready, r.MembersUp, r.Partition, r.Mode
			if m, err := fetchMemberCounts(ctx, n.HTTPAddr); err == nil {
				s.Members = m
			}
		}()
	}
	wg.Wait()
	for _, s := range cs.Nodes {
		if s.Alive {
			cs.Alive++
		}
		if s.Ready {
			cs.Ready++
		}
	}
	return cs
}

const clusterStatusDescription = `
Show every node of the cluster: its OS pid; whether it is alive (the pid
runs, and still runs the exact command line this cluster started, so a
pid the system reused does not count); whether it is ready (GET /readyz);
how many members it sees up, and in each status (from its /metrics); its
node and HTTP addresses and its incarnation.

Examples:
  arsenal cluster status
  arsenal cluster status --name chaos --format json
  watch -n1 arsenal cluster status
`

func runClusterStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cluster status", "arsenal cluster status [flags]", clusterStatusDescription, stderr)
	ref := addClusterFlags(fs)
	format := addClusterFormatFlag(fs)
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	const cmd = "status"
	if fs.NArg() > 0 {
		return clusterUsageErr(stderr, cmd, "unexpected arguments %q", fs.Args())
	}
	if err := format.check(); err != nil {
		return clusterUsageErr(stderr, cmd, "%v", err)
	}
	dir, st, err := ref.load()
	if err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	cs := probeCluster(dir, st)
	if format.json() {
		return clusterJSON(stdout, stderr, cs)
	}
	fmt.Fprintf(stdout, "Cluster %q: %d of %d nodes alive, %d ready (profile %s, state %s)\n", cs.Cluster, cs.Alive, len(cs.Nodes), cs.Ready, cs.Profile, dir)
	if len(cs.Partition) > 0 {
		fmt.Fprintf(stdout, "Partition injected: %s\n", partitionString(cs.Partition))
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPID\tALIVE\tREADY\tMEMBERS SEEN\tPARTITION\tNODE ADDR\tHTTP\tINCARNATION\tSTARTED")
	for _, s := range cs.Nodes {
		ready, members, part := "-", "-", "-"
		if s.Alive {
			ready = yesNoString(s.Ready)
			if s.Error != "" {
				ready = "? (" + s.Error + ")"
			} else {
				members = membersSeenString(s.MembersUp, s.Members)
				part = s.Partition
			}
		}
		started := agoString(s.StartedAt)
		if s.StoppedAt != nil && !s.Alive {
			started = "stopped " + agoString(*s.StoppedAt)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, s.PID, yesNoString(s.Alive), ready, members, part,
			dashIfEmpty(s.NodeAddr), dashIfEmpty(s.HTTPAddr), s.Incarnation, started)
	}
	tw.Flush()
	return 0
}

// membersString reads "3 up (alive 3)" or "2 up (alive 2, dead 1)".
func membersSeenString(up int, by map[string]int) string {
	if len(by) == 0 {
		return fmt.Sprintf("%d up", up)
	}
	order := map[string]int{"alive": 0, "suspect": 1, "dead": 2, "left": 3}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		oi, iok := order[keys[i]]
		oj, jok := order[keys[j]]
		if iok != jok {
			return iok
		}
		if oi != oj {
			return oi < oj
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, by[k])
	}
	return fmt.Sprintf("%d up (%s)", up, strings.Join(parts, ", "))
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func partitionString(groups [][]string) string {
	parts := make([]string, len(groups))
	for i, g := range groups {
		short := make([]string, len(g))
		for j, n := range g {
			short[j] = clusterstate.ShortName(n)
		}
		parts[i] = strings.Join(short, ",")
	}
	return strings.Join(parts, " | ")
}

const clusterListDescription = `
List the clusters in the state directory, with how many of their nodes
are alive.

Examples:
  arsenal cluster list
  arsenal cluster list --dir ./.arsenal --format json
`

func runClusterList(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cluster list", "arsenal cluster list [flags]", clusterListDescription, stderr)
	dir := fs.String("dir", "", "directory holding the clusters' state directories (default $XDG_STATE_HOME/arsenal/clusters)")
	format := addClusterFormatFlag(fs)
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	const cmd = "list"
	if fs.NArg() > 0 {
		return clusterUsageErr(stderr, cmd, "unexpected arguments %q", fs.Args())
	}
	if err := format.check(); err != nil {
		return clusterUsageErr(stderr, cmd, "%v", err)
	}
	name := defaultClusterName
	ref := clusterRef{name: &name, dir: dir}
	root, err := ref.root()
	if err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	names, err := clusterstate.List(root)
	if err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	type row struct {
		Name  string `json:"name"`
		Dir   string `json:"dir"`
		Nodes int    `json:"nodes"`
		Alive int    `json:"alive"`
	}
	rows := []row{}
	for _, n := range names {
		d := filepath.Join(root, n)
		st, err := clusterstate.Load(d)
		if err != nil {
			continue
		}
		r := row{Name: n, Dir: d, Nodes: len(st.Nodes)}
		for _, node := range st.Nodes {
			if nodeRunning(node) {
				r.Alive++
			}
		}
		rows = append(rows, r)
	}
	if format.json() {
		return clusterJSON(stdout, stderr, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(stdout, "no clusters in %s\n", root)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tNODES\tALIVE\tSTATE DIR")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", r.Name, r.Nodes, r.Alive, r.Dir)
	}
	tw.Flush()
	return 0
}
