package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/arsenal-go/arsenal/ops"
	"github.com/arsenal-go/arsenal/ops/operations"
	"github.com/arsenal-go/arsenal/process"
)

// The client verbs talk to any node's operations API. Each runs one
// operation; its flags, their types, defaults, allowed values and help
// come from that operation's description in ops/operations, so --help is
// true to the server this binary was built with.

const defaultAddr = "http://127.0.0.1:4100"

var (
	schemaOnce sync.Once
	schemaReg  *ops.Registry
	schemaErr  error
)

// operationSchema is the description of a built-in operation, from the
// same registry the nodes serve.
func operationSchema(name string) *ops.Operation {
	schemaOnce.Do(func() {
		schemaReg = ops.NewRegistry()
		schemaErr = operations.Register(schemaReg, &operations.Env{})
	})
	if schemaErr != nil {
		panic(schemaErr) // the operations' own tests catch this first
	}
	op, ok := schemaReg.Lookup(name)
	if !ok {
		panic("arsenal: no operation " + name)
	}
	return op
}

// clientFlags are the flags every client verb has.
type clientFlags struct {
	addr, token, tokenFile, format, node string
	timeout                              time.Duration
	// nodeIsParam: --node is the operation's own node parameter.
	nodeIsParam bool
}

func (c *clientFlags) add(fs *pflag.FlagSet, withNode bool) {
	addr := os.Getenv("ARSENAL_ADDR")
	if addr == "" {
		addr = defaultAddr
	}
	fs.StringVar(&c.addr, "addr", addr, "a node's HTTP address (env ARSENAL_ADDR; the default is the first node of 'arsenal dev')")
	fs.StringVar(&c.token, "token", "", "bearer token; prefer ARSENAL_TOKEN or --token-file, which do not show in 'ps'")
	fs.StringVar(&c.tokenFile, "token-file", os.Getenv("ARSENAL_TOKEN_FILE"), "file holding the bearer token (env ARSENAL_TOKEN_FILE)")
	fs.StringVar(&c.format, "format", "table", "output: table (for people) or json (the whole answer, data and meta, for scripts)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "give up after this long")
	if withNode {
		fs.StringVar(&c.node, "node", "", "send the request to the node of this name (found through --addr's cluster.topology)")
	}
}

func completeFormat(cmd *cobra.Command) {
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

func (c *clientFlags) client(ctx context.Context) (*ops.Client, error) {
	if c.format != "table" && c.format != "json" {
		return nil, usageErr("--format %q: want table or json", c.format)
	}
	if c.timeout <= 0 {
		return nil, usageErr("--timeout %v: want a positive duration", c.timeout)
	}
	tok := c.token
	if tok == "" {
		tok = os.Getenv("ARSENAL_TOKEN")
	}
	if tok == "" && c.tokenFile != "" {
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return nil, usageErr("--token-file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	addr := c.addr
	if c.node != "" && !c.nodeIsParam {
		a, err := nodeHTTPAddr(ctx, c.connect(addr, tok), c.node)
		if err != nil {
			return nil, err
		}
		addr = a
	}
	return c.connect(addr, tok), nil
}

func (c *clientFlags) connect(addr, tok string) *ops.Client {
	if tok == "" {
		// The operator token of the local cluster (arsenal dev or arsenal
		// cluster) that addr belongs to, if any: never another's.
		tok = clusterTokenFor(addr)
	}
	return &ops.Client{BaseURL: addr, Token: tok}
}

// nodeHTTPAddr finds the HTTP address a node publishes, by its name.
func nodeHTTPAddr(ctx context.Context, c *ops.Client, name string) (string, error) {
	resp, err := c.Call(ctx, "cluster.topology", nil)
	if err != nil {
		return "", &exitError{code: exitFailed, err: fmt.Errorf("--node %s: %w", name, err)}
	}
	var top struct {
		Nodes []struct {
			Name     string `json:"name"`
			Status   string `json:"status"`
			HTTPAddr string `json:"http_addr"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(resp.Data, &top); err != nil {
		return "", &exitError{code: exitFailed, err: fmt.Errorf("--node %s: bad topology: %w", name, err)}
	}
	var known []string
	for _, n := range top.Nodes {
		if n.Name != name {
			known = append(known, n.Name)
			continue
		}
		if n.Status == "dead" || n.Status == "left" {
			return "", &exitError{code: exitFailed, err: fmt.Errorf("--node %s: the node is %s (ask another with --addr or --node)", name, n.Status)}
		}
		if n.HTTPAddr == "" {
			return "", &exitError{code: exitFailed, err: fmt.Errorf("--node %s: the node publishes no HTTP address (status %s)", name, n.Status)}
		}
		a := n.HTTPAddr
		if !strings.Contains(a, "://") {
			a = "http://" + a
		}
		return a, nil
	}
	return "", &exitError{code: exitFailed, err: fmt.Errorf("--node %s: no such node in the cluster (known: %s)", name, strings.Join(known, ", "))}
}

// resolvePID accepts a PID in its text form or a cluster-wide registered
// name, looked up with registry.lookup.
func resolvePID(ctx context.Context, c *ops.Client, arg string) (string, error) {
	if _, err := process.ParsePID(arg); err == nil {
		return arg, nil
	}
	resp, err := c.Call(ctx, "registry.lookup", map[string]string{"name": arg})
	if err != nil {
		var ae *ops.APIError
		if errors.As(err, &ae) && ae.Status == 404 {
			return "", &exitError{code: exitFailed, err: fmt.Errorf("%q is neither a PID (ID.INCARNATION@NODE) nor a registered name", arg)}
		}
		return "", &exitError{code: exitFailed, err: fmt.Errorf("looking up the name %q: %w", arg, err)}
	}
	var r struct {
		PID string `json:"pid"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil || r.PID == "" {
		return "", &exitError{code: exitFailed, err: fmt.Errorf("looking up the name %q: bad answer", arg)}
	}
	return r.PID, nil
}

// registeredNames are the cluster-wide registered names, for completing a
// PID; none if the node does not answer within a second.
func registeredNames(cf *clientFlags) []string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := cf.client(ctx)
	if err != nil {
		return nil
	}
	resp, err := c.Call(ctx, "cluster.registry", nil)
	if err != nil {
		return nil
	}
	var d struct {
		Registrations []struct {
			Name string `json:"name"`
			PID  string `json:"pid"`
		} `json:"registrations"`
	}
	if json.Unmarshal(resp.Data, &d) != nil {
		return nil
	}
	names := make([]string, 0, len(d.Registrations))
	for _, r := range d.Registrations {
		names = append(names, r.Name+"\t"+r.PID)
	}
	return names
}

// clientVerb describes a verb that runs one operation.
type clientVerb struct {
	name, op, summary, description string
	// positional names the parameter taken from the command line (pid).
	positional string
	// Every other parameter of the operation is a flag.
	table func(w io.Writer, data json.RawMessage, meta map[string]any) error
	// exit turns a successful answer into an exit code (health).
	exit func(data json.RawMessage) int
}

// verbs are the client verbs, each added by its own file.
var verbs []clientVerb

func addVerb(v clientVerb) { verbs = append(verbs, v) }

// clientVerbs are the client verbs in name order.
func clientVerbs() []clientVerb {
	out := append([]clientVerb(nil), verbs...)
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// paramHelp is a parameter's help line: its description, allowed values,
// bounds, default and whether it is required, from its schema.
func paramHelp(p ops.Param) string {
	var parts []string
	if p.Description != "" {
		parts = append(parts, p.Description)
	}
	if len(p.Enum) > 0 {
		parts = append(parts, "one of: "+strings.Join(p.Enum, ", "))
	}
	if p.Type == ops.TypeList {
		parts = append(parts, "repeat the flag or separate with commas")
	}
	// Bounds are of the value for numbers, of the length for strings and
	// of the number of items for lists.
	unit := ""
	switch p.Type {
	case ops.TypeString, ops.TypeNode, ops.TypePID:
		unit = " characters"
	case ops.TypeList:
		unit = " items"
	}
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	switch {
	case p.Min != nil && p.Max != nil:
		parts = append(parts, num(*p.Min)+".."+num(*p.Max)+unit)
	case p.Min != nil:
		parts = append(parts, "at least "+num(*p.Min)+unit)
	case p.Max != nil:
		parts = append(parts, "at most "+num(*p.Max)+unit)
	}
	if p.MinDuration > 0 || p.MaxDuration > 0 {
		parts = append(parts, fmt.Sprintf("%v..%v", p.MinDuration, p.MaxDuration))
	}
	if p.Pattern != "" {
		parts = append(parts, "matching "+p.Pattern)
	}
	if p.Default != nil {
		parts = append(parts, "default "+defaultText(p.Default))
	}
	if p.Required {
		parts = append(parts, "required")
	}
	return strings.Join(parts, "; ")
}

// defaultText writes a default as it is typed: durations as Go durations,
// lists as JSON (never in Go's [a b] syntax).
func defaultText(v any) string {
	switch v.(type) {
	case string, bool, int, int64, float64, time.Duration, fmt.Stringer:
		return fmt.Sprint(v)
	}
	return jsonText(v)
}

// typeWord is how the flag's value is written in help.
func typeWord(p ops.Param) string {
	switch p.Type {
	case ops.TypeObject:
		return "json-object"
	case ops.TypeList:
		if p.Items != "" {
			return string(p.Items)
		}
		return "string"
	}
	return string(p.Type)
}

// typedString is a string flag whose help names its parameter's type.
type typedString struct{ v, typ string }

func (s *typedString) String() string     { return s.v }
func (s *typedString) Set(v string) error { s.v = v; return nil }
func (s *typedString) Type() string       { return s.typ }

// typedList is a repeatable string flag (a pflag.SliceValue) whose help
// names its items' type.
type typedList struct {
	vs  []string
	typ string
}

func (l *typedList) String() string            { return "[" + strings.Join(l.vs, ",") + "]" }
func (l *typedList) Set(v string) error        { l.vs = append(l.vs, v); return nil }
func (l *typedList) Type() string              { return l.typ }
func (l *typedList) Append(v string) error     { return l.Set(v) }
func (l *typedList) Replace(vs []string) error { l.vs = append([]string(nil), vs...); return nil }
func (l *typedList) GetSlice() []string        { return l.vs }

// addParamFlag adds a flag for one parameter: typed, so that a bad value
// is a usage error before any request, and with a help line from the
// schema. Only flags that are set are sent: the node applies the defaults.
func addParamFlag(cmd *cobra.Command, p ops.Param) {
	fs := cmd.Flags()
	name := flagName(p.Name)
	usage := paramHelp(p)
	// The help line names the parameter's type (pflag shows a value's
	// Type()): pid, node, enum, json-object, a list of strings.
	switch p.Type {
	case ops.TypeBool:
		fs.Bool(name, false, usage)
	case ops.TypeInt:
		fs.Int(name, 0, usage)
	case ops.TypeFloat:
		fs.Float64(name, 0, usage)
	case ops.TypeDuration:
		fs.Duration(name, 0, usage)
	case ops.TypeList:
		fs.Var(&typedList{typ: typeWord(p) + "-list"}, name, usage)
	default:
		fs.Var(&typedString{typ: typeWord(p)}, name, usage)
	}
	if len(p.Enum) > 0 {
		_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(p.Enum, cobra.ShellCompDirectiveNoFileComp))
	}
	if p.Required && p.In != ops.InPath {
		_ = cmd.MarkFlagRequired(name)
	}
}

func (v clientVerb) command(stdout, stderr io.Writer) *cobra.Command {
	op := operationSchema(v.op)
	cf := &clientFlags{}
	use := v.name
	args := noArgs
	if v.positional != "" {
		use += " " + strings.ToUpper(v.positional)
		args = exactArgs(1, strings.ToUpper(v.positional))
	}
	cmd := &cobra.Command{
		Use:   use + " [flags]",
		Short: v.summary,
		Long:  v.description + "\n\nOperation " + op.Name + " (" + op.Method + " " + op.Path + "): " + op.Summary + ".",
		Args:  args,
	}
	if v.positional == "pid" {
		cmd.Long += "\n\nPID is a PID (ID.INCARNATION@NODE) or a cluster-wide registered name."
	}
	cmd.Long += "\n\n" + exitCodesHelp
	if v.positional != "" {
		cmd.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return registeredNames(cf), cobra.ShellCompDirectiveNoFileComp
		}
	}
	withNode := true
	for _, p := range op.Params {
		if p.Name == v.positional {
			continue
		}
		if p.Name == "node" {
			cf.nodeIsParam, withNode = true, false
		}
		addParamFlag(cmd, p)
	}
	cf.add(cmd.Flags(), withNode)
	completeFormat(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
		defer cancel()
		c, err := cf.client(ctx)
		if err != nil {
			return err
		}
		callArgs := map[string]string{}
		if v.positional != "" {
			pid, err := resolvePID(ctx, c, args[0])
			if err != nil {
				return err
			}
			callArgs[v.positional] = pid
		}
		for _, p := range op.Params {
			f := cmd.Flags().Lookup(flagName(p.Name))
			if f == nil || !f.Changed {
				continue
			}
			if sa, ok := f.Value.(pflag.SliceValue); ok {
				// A list travels as repeated values; ops.Client joins
				// them with commas.
				callArgs[p.Name] = strings.Join(sa.GetSlice(), ",")
				continue
			}
			callArgs[p.Name] = f.Value.String()
		}
		resp, err := c.Call(ctx, v.op, callArgs)
		if err != nil {
			return &exitError{code: exitFailed, err: fmt.Errorf("%s: %w", v.name, err)}
		}
		code := partialExit(resp.Meta)
		if v.exit != nil {
			code = max(code, v.exit(resp.Data))
		}
		if cf.format == "json" || v.table == nil {
			if err := printEnvelope(stdout, resp); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
		} else if err := v.table(stdout, resp.Data, resp.Meta); err != nil {
			return &exitError{code: exitFailed, err: fmt.Errorf("%s: %w", v.name, err)}
		}
		if cf.format != "json" {
			sayUnreachable(stderr, resp.Meta)
		}
		if code != exitOK {
			return &exitError{code: code}
		}
		return nil
	}
	return cmd
}

// exactArgs is cobra.ExactArgs with the argument's name in the error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < n:
			return usageErr("%s: missing %s\nUsage: arsenal %s", cmd.Name(), what, cmd.Use)
		case len(args) > n:
			return usageErr("%s: unexpected argument %q (flags may come before or after %s)\nUsage: arsenal %s", cmd.Name(), args[n], what, cmd.Use)
		}
		return nil
	}
}

// noArgs refuses any argument: a stray word is a usage error, not ignored.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr("%s: unexpected argument %q\nUsage: arsenal %s", cmd.Name(), args[0], cmd.Use)
	}
	return nil
}

// printEnvelope prints the whole answer, data and meta, as the node sent
// it: nothing (such as meta.unreachable_nodes) is lost.
func printEnvelope(w io.Writer, resp *ops.Response) error {
	var data any
	if err := json.Unmarshal(resp.Data, &data); err != nil {
		return fmt.Errorf("bad answer: %w", err)
	}
	meta := resp.Meta
	if meta == nil {
		meta = map[string]any{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"data": data, "meta": meta})
}

// partialExit is exitDegraded when meta lists nodes that did not answer
// (a partial cluster-wide answer, printed all the same), else exitOK: a
// script sees from the exit code alone that the answer is incomplete.
func partialExit(meta map[string]any) int {
	switch u := meta["unreachable_nodes"].(type) {
	case nil:
		return exitOK
	case map[string]any:
		if len(u) == 0 {
			return exitOK
		}
	}
	return exitDegraded
}

// sayUnreachable writes one line per node that did not answer, sorted by
// name: a dead or unreachable node is always said.
func sayUnreachable(w io.Writer, meta map[string]any) {
	u, ok := meta["unreachable_nodes"]
	if !ok {
		return
	}
	m, ok := u.(map[string]any)
	if !ok {
		fmt.Fprintf(w, "warning: some nodes did not answer: %s\n", jsonText(u))
		return
	}
	if len(m) == 0 {
		return
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "warning: %d node(s) did not answer; the list above is without them:\n", len(names))
	for _, n := range names {
		fmt.Fprintf(w, "  %s: %s\n", n, textOf(m[n]))
	}
}

func textOf(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return jsonText(v)
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
