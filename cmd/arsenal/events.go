package main

// arsenal events: the cluster event feed, cluster.events, until Ctrl-C.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/arsenal-go/arsenal/ops"
)

func eventsCommand(stdout, stderr io.Writer) *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "events [flags]",
		Short: "follow the cluster event feed (client)",
		Long: "Follow the cluster event feed (node up, suspect, down, left, partition and mode changes) until Ctrl-C.\n\n" +
			"Exits 0 on Ctrl-C, 1 when the feed ends otherwise (the node stopped: its last event, shutdown, is printed) " +
			"or cannot be opened, 2 on bad usage.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			rctx, cancel := context.WithTimeout(ctx, cf.timeout)
			c, err := cf.client(rctx)
			cancel()
			if err != nil {
				return err
			}
			err = c.Stream(ctx, "cluster.events", nil, func(e ops.Event) error {
				if cf.format == "json" {
					fmt.Fprintf(stdout, "{\"event\":%q,\"id\":%q,\"data\":%s}\n", e.Name, e.ID, e.Data)
					return nil
				}
				printEvent(stdout, e)
				return nil
			})
			if err != nil && !errors.Is(err, context.Canceled) {
				return &exitError{code: exitFailed, err: fmt.Errorf("events: %w", err)}
			}
			return nil
		},
	}
	cf.add(cmd.Flags(), true)
	cmd.Flags().Lookup("timeout").Usage = "give up finding --node after this long (the feed itself runs until Ctrl-C)"
	completeFormat(cmd)
	return cmd
}

func printEvent(w io.Writer, e ops.Event) {
	var ev map[string]any
	_ = json.Unmarshal(e.Data, &ev)
	now := time.Now().Format(time.TimeOnly)
	switch e.Name {
	case "topology":
		top, _ := ev["topology"].(map[string]any)
		fmt.Fprintf(w, "%s  connected to %v: %v members, mode %v\n", now, top["current_node"], top["total_nodes"], top["mode"])
	default:
		detail := textOf(ev["node"])
		if p, ok := ev["partition"].(map[string]any); ok && e.Name == "partition_changed" {
			detail = fmt.Sprintf("%v → %v (%v of %v up)", ev["old_partition"], p["state"], p["up"], p["expected"])
		}
		if e.Name == "shutdown" {
			detail = textOf(ev["reason"])
		}
		if e.Name == "mode_changed" {
			detail = fmt.Sprintf("%v → %v", ev["old_mode"], ev["mode"])
		}
		fmt.Fprintf(w, "%s  %-17s %s\n", now, e.Name, detail)
	}
}
