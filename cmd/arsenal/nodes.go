package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// arsenal nodes: cluster.topology as a table.

func init() {
	addVerb(clientVerb{name: "nodes", op: "cluster.topology", summary: "list the cluster's nodes (client)",
		description: "Show the nodes of the cluster as the node at --addr (or --node) sees them.", table: tableNodes})
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
