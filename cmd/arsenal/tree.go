package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
)

// arsenal tree: cluster.supervision_trees, drawn.

func init() {
	addVerb(clientVerb{name: "tree", op: "cluster.supervision_trees", summary: "show supervision trees (client)",
		description: "Show every supervision tree of every node (or --node), with strategies and restart counts.", table: tableTree})
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
