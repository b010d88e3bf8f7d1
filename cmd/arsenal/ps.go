package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// arsenal ps: cluster.processes as a table.

func init() {
	addVerb(clientVerb{name: "ps", op: "cluster.processes", summary: "list processes on every node (client)",
		description: "List the processes of every node (or --node), filtered, sorted and paged.", table: tablePS})
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
		// a PID only past 40 characters (node names over ~25), so the PIDs
		// other verbs take can be copied whole; --format json has every
		// cell whole.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", clip(p.PID, 40), clip(textOf(orDash(p.Name)), 11),
			clip(p.Behaviour, 11), p.Status, p.MailboxLen, p.In, p.Out, p.Restarts)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d of %d processes (offset %v)\n", len(d.Processes), d.Total, meta["offset"])
	return nil
}
