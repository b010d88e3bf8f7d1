package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/arsenal-go/arsenal/ops"
)

// The client verbs talk to any node's operations API.

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
		name := clip(textOf(n["name"]), 30)
		if n["self"] == true {
			name += " (this)"
		}
		since, _ := time.Parse(time.RFC3339Nano, textOf(n["since"]))
		fmt.Fprintf(tw, "%s\t%s\t%s ago\t%s\t%s\n", name, textOf(n["status"]), age(time.Since(since)),
			clip(textOf(n["node_addr"]), 21), clip(textOf(orDash(n["http_addr"])), 21))
	}
	return tw.Flush()
}

// age is a short duration: seconds under an hour, then minutes.
func age(d time.Duration) time.Duration {
	if d < time.Hour {
		return d.Round(time.Second)
	}
	return d.Round(time.Minute)
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
		// One issue a line, so that none is cut and the table stays
		// narrow.
		first := "-"
		if len(n.Issues) > 0 {
			first = n.Issues[0]
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", n.Node, n.Status, n.Score, first)
		for _, is := range n.Issues[min(1, len(n.Issues)):] {
			fmt.Fprintf(tw, "\t\t\t%s\n", is)
		}
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
	fmt.Fprintln(tw, "PID\tNAME\tBEHAVIOUR\tSTATUS\tMBOX\tIN\tOUT\tRESTARTS")
	for _, p := range d.Processes {
		// The widest cells are cut ("…") so that a row fits 100 columns;
		// --format json has them whole.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", clip(p.PID, 28), clip(textOf(orDash(p.Name)), 12),
			clip(p.Behaviour, 12), p.Status, p.MailboxLen, p.In, p.Out, p.Restarts)
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
			fmt.Fprintln(w, clip(fmt.Sprintf("  %s %s [%s, %d restarts]", name, t.PID, t.Strategy, t.TotalRestarts), maxWidth))
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
		fmt.Fprintln(w, clip(fmt.Sprintf("%s%s %s %s (%s, %s, %s, %d restarts)", indent, branch, c.ID, pid, kind, c.Restart, c.State, c.Restarts), maxWidth))
		if c.Tree != nil {
			printChildren(w, *c.Tree, indent+next)
		}
	}
	if t.Truncated {
		fmt.Fprintf(w, "%s└─ … (max depth reached)\n", indent)
	}
}
