package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/arsenal-go/arsenal/ops"
)

// The client verbs talk to any node's operations API.

const defaultAddr = "http://127.0.0.1:4100"

type clientFlags struct {
	addr, token, tokenFile, format *string
	timeout                        *time.Duration
}

func addClientFlags(fs *flag.FlagSet) *clientFlags {
	addr := os.Getenv("ARSENAL_ADDR")
	if addr == "" {
		addr = defaultAddr
	}
	return &clientFlags{
		addr:      fs.String("addr", addr, "a node's HTTP address (env ARSENAL_ADDR; the default is the first node of 'arsenal dev')"),
		token:     fs.String("token", "", "bearer token; prefer ARSENAL_TOKEN or --token-file, which do not show in 'ps'"),
		tokenFile: fs.String("token-file", os.Getenv("ARSENAL_TOKEN_FILE"), "file holding the bearer token (env ARSENAL_TOKEN_FILE)"),
		format:    fs.String("format", "table", "output: table (for people) or json (for scripts)"),
		timeout:   fs.Duration("timeout", 30*time.Second, "give up after this long"),
	}
}

func (c *clientFlags) client() (*ops.Client, error) {
	if *c.format != "table" && *c.format != "json" {
		return nil, fmt.Errorf("--format %q: want table or json", *c.format)
	}
	tok := *c.token
	if tok == "" {
		tok = os.Getenv("ARSENAL_TOKEN")
	}
	if tok == "" && *c.tokenFile != "" {
		b, err := os.ReadFile(*c.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	if tok == "" && isLoopbackURL(*c.addr) {
		// The operator token of a local 'arsenal dev' cluster, if one runs.
		if b, err := os.ReadFile(devTokenPath()); err == nil {
			tok = strings.TrimSpace(string(b))
		}
	}
	return &ops.Client{BaseURL: *c.addr, Token: tok}, nil
}

// clientVerb describes a verb that runs one operation.
type clientVerb struct {
	name, op, summary, usage, description string
	// positional names the argument taken from the command line (e.g. pid).
	positional string
	// flags are the operation's parameters offered as flags.
	flags []string
	// bools are the flags that are booleans.
	bools map[string]bool
	table func(w io.Writer, data json.RawMessage, meta map[string]any) error
}

func init() {
	for _, v := range []clientVerb{
		{name: "nodes", op: "cluster.topology", summary: "list the cluster's nodes (client)", usage: "arsenal nodes [flags]",
			description: "Show the nodes of the cluster as the node at --addr sees them.", table: tableNodes},
		{name: "health", op: "cluster.health", summary: "show the cluster's health (client)", usage: "arsenal health [flags]",
			description: "Show the overall status, each node's score with the reasons for every deduction, and recommendations.",
			flags:       []string{"include_history"}, bools: map[string]bool{"include_history": true}, table: tableHealth},
		{name: "ps", op: "cluster.processes", summary: "list processes on every node (client)", usage: "arsenal ps [flags]",
			description: "List the processes of every node (or --node), filtered, sorted and paged.",
			flags:       []string{"node", "behaviour", "name", "status", "min_mailbox", "sort", "limit", "offset"}, table: tablePS},
		{name: "tree", op: "cluster.supervision_trees", summary: "show supervision trees (client)", usage: "arsenal tree [flags]",
			description: "Show every supervision tree of every node (or --node), with strategies and restart counts.",
			flags:       []string{"node", "max_depth"}, table: tableTree},
		{name: "info", op: "process.info", summary: "describe one process on any node (client)", usage: "arsenal info PID [flags]",
			description: "Describe one process: status, mailbox, messages, links, monitors, parent, current call.", positional: "pid"},
		{name: "kill", op: "process.kill", summary: "stop a process on any node (client)", usage: "arsenal kill PID [flags]",
			description: "Send an exit signal and wait for the process to exit. Supervisors and system processes need --force.",
			positional:  "pid", flags: []string{"reason", "force", "wait"}, bools: map[string]bool{"force": true}},
		{name: "send", op: "process.send", summary: "send a message to a process on any node (client)", usage: "arsenal send PID --message JSON [flags]",
			description: "Send, cast or call a JSON object to a process; with --mode call, print its reply.",
			positional:  "pid", flags: []string{"message", "mode", "call_timeout"}},
		{name: "trace", op: "process.trace", summary: "trace a process's messages (client)", usage: "arsenal trace PID [flags]",
			description: "Start a trace and print its id; read it with 'arsenal ops call trace.get id=ID'.",
			positional:  "pid", flags: []string{"duration", "max_events", "filter"}},
	} {
		register(command{name: v.name, summary: v.summary, run: v.run})
	}
	register(command{name: "events", summary: "follow the cluster event feed (client)", run: runEvents})
	register(command{name: "ops", summary: "list operations, or call any operation by name (client)", run: runOps})
}

func (v clientVerb) run(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet(v.name, v.usage, v.description, stderr)
	cf := addClientFlags(fs)
	vals := map[string]*string{}
	bools := map[string]*bool{}
	for _, f := range v.flags {
		if v.bools[f] {
			bools[f] = fs.Bool(flagName(f), false, "see 'arsenal ops list' for "+v.op)
		} else {
			vals[f] = fs.String(flagName(f), "", "parameter "+f+" of "+v.op+" (see 'arsenal ops list')")
		}
	}
	// Allow the positional argument before the flags too.
	var pos string
	if v.positional != "" && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = args[0], args[1:]
	}
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if v.positional != "" {
		if pos == "" && fs.NArg() > 0 {
			pos = fs.Arg(0)
		}
		if pos == "" {
			fmt.Fprintf(stderr, "arsenal %s: missing %s\nUsage: %s\n", v.name, strings.ToUpper(v.positional), v.usage)
			return 2
		}
	}
	c, err := cf.client()
	if err != nil {
		fmt.Fprintf(stderr, "arsenal %s: %v\n", v.name, err)
		return 2
	}
	callArgs := map[string]string{}
	if pos != "" {
		callArgs[v.positional] = pos
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, p := range vals {
		if set[flagName(name)] {
			callArgs[name] = *p
		}
	}
	for name, p := range bools {
		if set[flagName(name)] {
			callArgs[name] = fmt.Sprint(*p)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *cf.timeout)
	defer cancel()
	resp, err := c.Call(ctx, v.op, callArgs)
	if err != nil {
		fmt.Fprintf(stderr, "arsenal %s: %v\n", v.name, err)
		return 1
	}
	if *cf.format == "json" || v.table == nil {
		return printJSON(stdout, stderr, resp.Data)
	}
	if err := v.table(stdout, resp.Data, resp.Meta); err != nil {
		fmt.Fprintf(stderr, "arsenal %s: %v\n", v.name, err)
		return 1
	}
	if u, ok := resp.Meta["unreachable_nodes"]; ok {
		fmt.Fprintf(stderr, "warning: some nodes did not answer: %v\n", u)
	}
	return 0
}

func isLoopbackURL(addr string) bool {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		u, err = url.Parse("http://" + addr)
		if err != nil {
			return false
		}
	}
	return ops.DefaultOpenReads(u.Host)
}

func flagName(param string) string { return strings.ReplaceAll(param, "_", "-") }

func printJSON(stdout, stderr io.Writer, data json.RawMessage) int {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		fmt.Fprintf(stderr, "arsenal: bad answer: %v\n", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	return 0
}

func tableNodes(w io.Writer, data json.RawMessage, _ map[string]any) error {
	var d struct {
		Cluster   string `json:"cluster_name"`
		Mode      string `json:"mode"`
		Partition struct {
			State    string `json:"state"`
			Expected int    `json:"expected"`
			Up       int    `json:"up"`
		} `json:"partition_status"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return err
	}
	var raw struct {
		Nodes []map[string]any `json:"nodes"`
	}
	_ = json.Unmarshal(data, &raw)
	fmt.Fprintf(w, "cluster %s, %s, partition %s (%d of %d up)\n\n", d.Cluster, d.Mode, d.Partition.State, d.Partition.Up, d.Partition.Expected)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATUS\tSINCE\tNODE ADDR\tHTTP")
	for _, n := range raw.Nodes {
		name := fmt.Sprint(n["name"])
		if n["self"] == true {
			name += " (this)"
		}
		since, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(n["since"]))
		fmt.Fprintf(tw, "%s\t%v\t%s ago\t%v\t%v\n", name, n["status"], time.Since(since).Round(time.Second), n["node_addr"], orDash(n["http_addr"]))
	}
	return tw.Flush()
}

func orDash(v any) any {
	if v == nil || v == "" {
		return "-"
	}
	return v
}

func tableHealth(w io.Writer, data json.RawMessage, _ map[string]any) error {
	var d struct {
		Overall string `json:"overall_status"`
		Nodes   []struct {
			Node, Status string
			Score        int
			Issues       []string
		} `json:"nodes"`
		Recommendations []string `json:"recommendations"`
		History         []struct {
			Time    time.Time `json:"time"`
			Overall string    `json:"overall_status"`
			Up      int       `json:"nodes_up"`
			Total   int       `json:"nodes_total"`
		} `json:"history"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return err
	}
	fmt.Fprintf(w, "overall: %s\n\n", d.Overall)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATUS\tSCORE\tISSUES")
	for _, n := range d.Nodes {
		issues := strings.Join(n.Issues, "; ")
		if issues == "" {
			issues = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", n.Node, n.Status, n.Score, issues)
	}
	tw.Flush()
	if len(d.Recommendations) > 0 {
		fmt.Fprintln(w, "\nrecommendations:")
		for _, r := range d.Recommendations {
			fmt.Fprintf(w, "  - %s\n", r)
		}
	}
	if len(d.History) > 0 {
		fmt.Fprintln(w, "\nhistory:")
		for _, h := range d.History {
			fmt.Fprintf(w, "  %s  %-8s %d/%d up\n", h.Time.Format(time.TimeOnly), h.Overall, h.Up, h.Total)
		}
	}
	return nil
}

func tablePS(w io.Writer, data json.RawMessage, meta map[string]any) error {
	var d struct {
		Total     int `json:"total"`
		Processes []struct {
			Node, PID, Name, Behaviour, Status string
			MailboxLen                         int    `json:"mailbox_len"`
			In                                 uint64 `json:"messages_in"`
			Out                                uint64 `json:"messages_out"`
			Restarts                           int
		} `json:"processes"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PID\tNAME\tBEHAVIOUR\tSTATUS\tMAILBOX\tIN\tOUT\tRESTARTS")
	for _, p := range d.Processes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", p.PID, orDash(p.Name), p.Behaviour, p.Status, p.MailboxLen, p.In, p.Out, p.Restarts)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d of %d processes (offset %v)\n", len(d.Processes), d.Total, meta["offset"])
	return nil
}

type treeJSON struct {
	PID           string `json:"pid"`
	Name          string `json:"name"`
	Strategy      string `json:"strategy"`
	TotalRestarts int    `json:"total_restarts"`
	Truncated     bool   `json:"truncated"`
	Children      []struct {
		ID       string    `json:"id"`
		PID      string    `json:"pid"`
		Type     string    `json:"type"`
		Restart  string    `json:"restart"`
		State    string    `json:"state"`
		Restarts int       `json:"restarts"`
		Name     string    `json:"name"`
		Tree     *treeJSON `json:"tree"`
	} `json:"children"`
}

func tableTree(w io.Writer, data json.RawMessage, _ map[string]any) error {
	var d struct {
		Nodes []struct {
			Node  string     `json:"node"`
			Trees []treeJSON `json:"trees"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return err
	}
	sort.Slice(d.Nodes, func(i, j int) bool { return d.Nodes[i].Node < d.Nodes[j].Node })
	for _, n := range d.Nodes {
		fmt.Fprintf(w, "%s\n", n.Node)
		for _, t := range n.Trees {
			name := t.Name
			if name == "" {
				name = "supervisor"
			}
			fmt.Fprintf(w, "  %s %s [%s, %d restarts]\n", name, t.PID, t.Strategy, t.TotalRestarts)
			printChildren(w, t, "  ")
		}
	}
	return nil
}

func printChildren(w io.Writer, t treeJSON, indent string) {
	for i, c := range t.Children {
		branch, next := "├─", "│  "
		if i == len(t.Children)-1 && !t.Truncated {
			branch, next = "└─", "   "
		}
		pid := c.PID
		if pid == "" {
			pid = "-"
		}
		kind := c.Type
		if c.Tree != nil {
			kind = "supervisor " + c.Tree.Strategy
		}
		fmt.Fprintf(w, "%s%s %s %s (%s, %s, %s, %d restarts)\n", indent, branch, c.ID, pid, kind, c.Restart, c.State, c.Restarts)
		if c.Tree != nil {
			printChildren(w, *c.Tree, indent+next)
		}
	}
	if t.Truncated {
		fmt.Fprintf(w, "%s└─ … (max depth reached)\n", indent)
	}
}

func runEvents(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("events", "arsenal events [flags]", "Follow the cluster event feed (node up, suspect, down, left, partition and mode changes) until Ctrl-C.", stderr)
	cf := addClientFlags(fs)
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	c, err := cf.client()
	if err != nil {
		fmt.Fprintf(stderr, "arsenal events: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err = c.Stream(ctx, "cluster.events", nil, func(e ops.Event) error {
		if *cf.format == "json" {
			fmt.Fprintf(stdout, "{\"event\":%q,\"data\":%s}\n", e.Name, e.Data)
			return nil
		}
		var ev map[string]any
		_ = json.Unmarshal(e.Data, &ev)
		switch e.Name {
		case "topology":
			fmt.Fprintf(stdout, "%s  connected to %v: %v members, mode %v\n", time.Now().Format(time.TimeOnly), ev["self"], ev["members"], ev["mode"])
		default:
			detail := fmt.Sprint(ev["node"])
			if p, ok := ev["partition"].(map[string]any); ok && e.Name == "partition_changed" {
				detail = fmt.Sprintf("%v → %v (%v of %v up)", ev["old_partition"], p["state"], p["up"], p["expected"])
			}
			if e.Name == "mode_changed" {
				detail = fmt.Sprintf("%v → %v", ev["old_mode"], ev["mode"])
			}
			fmt.Fprintf(stdout, "%s  %-17s %s\n", time.Now().Format(time.TimeOnly), e.Name, detail)
		}
		return nil
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "arsenal events: %v\n", err)
		return 1
	}
	return 0
}

func runOps(args []string, stdout, stderr io.Writer) int {
	const usage = "arsenal ops list [flags]\n       arsenal ops call NAME [key=value ...] [flags]"
	fs := newFlagSet("ops", usage, "List the operations a node offers, or call any of them by name: each key=value goes where the operation wants it (path, query or body).", stderr)
	cf := addClientFlags(fs)
	if len(args) == 0 || (args[0] != "list" && args[0] != "call") {
		if code, done := parse(fs, args, stdout); done {
			return code
		}
		fmt.Fprintf(stderr, "Usage: %s\n", usage)
		return 2
	}
	sub := args[0]
	var name string
	rest := args[1:]
	if sub == "call" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			fmt.Fprintf(stderr, "arsenal ops call: missing operation NAME (see 'arsenal ops list')\n")
			return 2
		}
		name, rest = rest[0], rest[1:]
	}
	var kv []string
	var flagArgs []string
	for _, a := range rest {
		if !strings.HasPrefix(a, "-") && strings.Contains(a, "=") {
			kv = append(kv, a)
		} else {
			flagArgs = append(flagArgs, a)
		}
	}
	if code, done := parse(fs, flagArgs, stdout); done {
		return code
	}
	c, err := cf.client()
	if err != nil {
		fmt.Fprintf(stderr, "arsenal ops: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *cf.timeout)
	defer cancel()
	if sub == "list" {
		cat, err := c.Catalogue(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "arsenal ops list: %v\n", err)
			return 1
		}
		if *cf.format == "json" {
			b, _ := json.Marshal(cat)
			return printJSON(stdout, stderr, b)
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROUTE\tROLE\tPARAMETERS\tSUMMARY")
		for _, e := range cat {
			var ps []string
			for _, p := range e.Params {
				s := p.Name
				if p.Required {
					s += "*"
				}
				ps = append(ps, s)
			}
			role := string(e.Role)
			if e.Dangerous {
				role += " (dangerous)"
			}
			fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\n", e.Name, e.Method, e.Path, role, strings.Join(ps, ","), e.Summary)
		}
		tw.Flush()
		return 0
	}
	callArgs := map[string]string{}
	for _, a := range kv {
		k, v, _ := strings.Cut(a, "=")
		callArgs[k] = v
	}
	resp, err := c.Call(ctx, name, callArgs)
	if err != nil {
		fmt.Fprintf(stderr, "arsenal ops call %s: %v\n", name, err)
		return 1
	}
	return printJSON(stdout, stderr, resp.Data)
}
