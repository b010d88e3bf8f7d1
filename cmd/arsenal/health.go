package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// arsenal health: cluster.health, with an exit code for the status.

func init() {
	addVerb(clientVerb{name: "health", op: "cluster.health", summary: "show the cluster's health (client)",
		description: "Show the overall status, each node's score with the reasons for every deduction, and recommendations.\n\n" +
			"Exits 0 when the cluster is healthy or warning, 3 when degraded, 4 when critical (also with --format json).",
		table: tableHealth, exit: healthExit})
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

// healthExit: 0 healthy or warning, 3 degraded, 4 critical.
func healthExit(data json.RawMessage) int {
	var d struct {
		Overall string `json:"overall_status"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return exitFailed
	}
	switch d.Overall {
	case "healthy", "warning":
		return exitOK
	case "degraded":
		return exitDegraded
	case "critical":
		return exitCritical
	}
	return exitFailed
}
