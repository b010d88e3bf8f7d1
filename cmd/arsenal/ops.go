package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/arsenal-go/arsenal/ops"
)

// maxWidth is the widest line a table or listing prints.
const maxWidth = 100

func opsCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "ops",
		Short: "list operations, or call any operation by name (client)",
		Long:  "List the operations a node offers, or call any of them by name: each key=value goes where the operation wants it (path, query or body).",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErr("ops: want a subcommand: list or call\nUsage: arsenal ops list | arsenal ops call NAME [key=value ...]")
		},
	}
	lf := &clientFlags{}
	list := &cobra.Command{
		Use:   "list [flags]",
		Short: "list the operations a node offers, with their parameters' types and defaults",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(context.Background(), lf.timeout)
			defer cancel()
			c, err := lf.client(ctx)
			if err != nil {
				return err
			}
			cat, err := c.Catalogue(ctx)
			if err != nil {
				return &exitError{code: exitFailed, err: fmt.Errorf("ops list: %w", err)}
			}
			if lf.format == "json" {
				b, _ := json.Marshal(cat)
				return printEnvelope(stdout, &ops.Response{Data: b})
			}
			printCatalogue(stdout, cat)
			return nil
		},
	}
	lf.add(list.Flags(), true)
	completeFormat(list)

	cf := &clientFlags{}
	call := &cobra.Command{
		Use:   "call NAME [key=value ...] [flags]",
		Short: "call any operation by name; print the whole answer (data and meta) as JSON",
		Long: "Call any operation by name. Each key=value is one parameter, put where the operation wants it " +
			"(path, query or body); see 'arsenal ops list'. The answer is printed whole, data and meta, as JSON.\n\n" + exitCodesHelp,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("ops call: missing operation NAME (see 'arsenal ops list')")
			}
			for _, a := range args[1:] {
				if !strings.Contains(a, "=") {
					return usageErr("ops call: unexpected argument %q: want key=value", a)
				}
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []string
			for _, op := range schemaRegistry().Operations() {
				names = append(names, op.Name+"\t"+op.Summary)
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
			defer cancel()
			c, err := cf.client(ctx)
			if err != nil {
				return err
			}
			callArgs := map[string]string{}
			for _, a := range args[1:] {
				k, v, _ := strings.Cut(a, "=")
				if _, dup := callArgs[k]; dup {
					return usageErr("ops call: %s given twice", k)
				}
				callArgs[k] = v
			}
			resp, err := c.Call(ctx, args[0], callArgs)
			if err != nil {
				return &exitError{code: exitFailed, err: fmt.Errorf("ops call %s: %w", args[0], err)}
			}
			if err := printEnvelope(stdout, resp); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			if code := partialExit(resp.Meta); code != exitOK {
				return &exitError{code: code}
			}
			return nil
		},
	}
	cf.add(call.Flags(), true)
	completeFormat(call)
	defaultHelp := call.HelpFunc()
	call.SetHelpFunc(func(cmd *cobra.Command, args []string) {
		defaultHelp(cmd, args)
		// 'arsenal ops call NAME --help': the parameters of NAME, from
		// the operation's description in this binary.
		for _, a := range args {
			if op, ok := schemaRegistry().Lookup(a); ok {
				printOperationParams(cmd.OutOrStdout(), op)
				return
			}
		}
	})
	root.AddCommand(list, call)
	return root
}

func schemaRegistry() *ops.Registry {
	operationSchema("cluster.topology")
	return schemaReg
}

// printCatalogue prints each operation as a block that fits maxWidth:
// name, route and role; the summary; then each parameter with its type,
// default and allowed values.
func printCatalogue(w io.Writer, cat []ops.CatalogueEntry) {
	for i, e := range cat {
		if i > 0 {
			fmt.Fprintln(w)
		}
		role := string(e.Role)
		if e.Dangerous {
			role += ", dangerous"
		}
		if e.Stream {
			role += ", stream"
		}
		fmt.Fprintln(w, clip(fmt.Sprintf("%s  %s %s  (%s)", e.Name, e.Method, e.Path, role), maxWidth))
		for _, l := range wrap(e.Summary, maxWidth-4) {
			fmt.Fprintf(w, "    %s\n", l)
		}
		for _, p := range e.Params {
			s := "  " + p.Name + " " + string(p.Type)
			if p.Type == ops.TypeList && p.Items != "" {
				s += " of " + string(p.Items)
			}
			var extra []string
			if p.Required {
				extra = append(extra, "required")
			}
			if p.Default != nil {
				extra = append(extra, "default "+textOf(p.Default))
			}
			if len(p.Enum) > 0 {
				extra = append(extra, strings.Join(p.Enum, "|"))
			}
			if len(extra) > 0 {
				s += " (" + strings.Join(extra, ", ") + ")"
			}
			fmt.Fprintln(w, clip(s, maxWidth))
		}
	}
}

// clip shortens s to at most n runes, ending in "…" when cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// wrap breaks s into lines of at most n runes, at spaces.
func wrap(s string, n int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		switch {
		case line == "":
			line = word
		case len([]rune(line))+1+len([]rune(word)) <= n:
			line += " " + word
		default:
			lines = append(lines, clip(line, n))
			line = word
		}
	}
	if line != "" {
		lines = append(lines, clip(line, n))
	}
	return lines
}

// printOperationParams lists an operation's parameters as key=value
// arguments of 'ops call', with their types and help.
func printOperationParams(w io.Writer, op *ops.Operation) {
	fmt.Fprintf(w, "\nOperation %s (%s %s): %s.\n", op.Name, op.Method, op.Path, op.Summary)
	if len(op.Params) == 0 {
		fmt.Fprintln(w, "It takes no parameters.")
		return
	}
	fmt.Fprintln(w, "\nParameters (key=value):")
	for _, p := range op.Params {
		fmt.Fprintf(w, "  %s=%s\n", p.Name, strings.ToUpper(typeWord(p)))
		if h := paramHelp(p); h != "" {
			for _, l := range wrap(h, maxWidth-6) {
				fmt.Fprintf(w, "      %s\n", l)
			}
		}
	}
}
