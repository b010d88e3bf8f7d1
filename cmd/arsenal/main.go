// Command arsenal runs Arsenal nodes and local clusters.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// Exit codes (documented in docs/OPERATIONS.md and in 'arsenal --help'):
// 0 success, 1 the operation or the network failed, 2 bad usage, 3 the
// cluster is not all there (health degraded, or a partial answer: some
// nodes did not answer), 4 health critical.
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitDegraded = 3
	exitCritical = 4
)

const exitCodesHelp = `Exit codes:
  0  success (health: healthy or warning)
  1  the operation failed: an error answer, no answer, a name that did not resolve
  2  bad usage: unknown command or flag, bad flag value, missing or stray argument
  3  health degraded, or a partial answer: some nodes did not answer or are dead
     (the answer is printed all the same, the missing nodes said)
  4  health critical`

// exitError carries a command's exit code through cobra. A nil err means
// the command has already said what happened.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func usageErr(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// newRoot builds the command tree. The commands registered with register
// keep their own flag parsing (cobra hands them the raw arguments); the
// client verbs are cobra commands with typed flags from their operation.
func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "arsenal",
		Short: "Erlang/OTP-style clustering for Go, observable and testable",
		Long: `arsenal: Erlang/OTP-style clustering for Go, observable and testable.

Start here: 'arsenal dev' runs a local 3-node cluster with a demo workload.
Run 'arsenal <command> --help' for the flags of a command.

` + exitCodesHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(stderr)
			_ = cmd.Usage()
			return &exitError{code: exitUsage}
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: exitUsage, err: err} })
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := commands[n]
		cmd := &cobra.Command{
			Use:                c.name,
			Short:              c.summary,
			DisableFlagParsing: true,
			RunE: func(_ *cobra.Command, args []string) error {
				if code := c.run(args, stdout, stderr); code != 0 {
					return &exitError{code: code}
				}
				return nil
			},
		}
		// 'arsenal help NAME' is the command's own --help.
		cmd.SetHelpFunc(func(*cobra.Command, []string) { c.run([]string{"--help"}, stdout, stderr) })
		cmd.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if strings.HasPrefix(toComplete, "-") {
				return legacyFlags(c.run, args, toComplete), cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveDefault
		}
		if c.name == "cluster" {
			cmd.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				if strings.HasPrefix(toComplete, "-") {
					return legacyFlags(c.run, args[:min(1, len(args))], toComplete), cobra.ShellCompDirectiveNoFileComp
				}
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveDefault
				}
				var subs []string
				for _, s := range clusterCommands {
					subs = append(subs, s.name+"\t"+s.summary)
				}
				return subs, cobra.ShellCompDirectiveNoFileComp
			}
		}
		root.AddCommand(cmd)
	}
	for _, v := range clientVerbs() {
		root.AddCommand(v.command(stdout, stderr))
	}
	root.AddCommand(opsCommand(stdout, stderr), eventsCommand(stdout, stderr), versionCommand(stdout))
	return root
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		args = append([]string{"version"}, args[1:]...)
	}
	root := newRoot(stdout, stderr)
	root.SetArgs(singleDashLong(root, args))
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "arsenal: %v\n", ee.err)
		}
		return ee.code
	}
	// Cobra's own errors (unknown command, bad arguments) are usage errors.
	fmt.Fprintf(stderr, "arsenal: %v\nRun 'arsenal --help' for usage.\n", err)
	return exitUsage
}

func versionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version",
		Long:  "Print the version of this binary.",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintf(stdout, "arsenal %s (%s, %s/%s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

// legacyFlags lists the flags of a command that parses its own flags (node,
// dev, cluster SUB), for completion: from its --help, which prints them
// with the flag package's PrintDefaults ("  -name type").
func legacyFlags(run func([]string, io.Writer, io.Writer) int, sub []string, prefix string) []string {
	var out bytes.Buffer
	run(append(append([]string{}, sub...), "--help"), &out, io.Discard)
	var flags []string
	for _, l := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(l, "  -") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(l, "  -"), " ")
		if f := "--" + name; strings.HasPrefix(f, prefix) {
			flags = append(flags, f)
		}
	}
	return flags
}

// singleDashLong rewrites -name to --name for the commands cobra parses,
// when name is one of their long flags: the hand-written commands took
// both forms (serf style, -format json), and scripts may still use -name.
func singleDashLong(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil || cmd.DisableFlagParsing {
		return args
	}
	out := make([]string, len(args))
	copy(out, args)
	for i, a := range out {
		if a == "--" {
			break
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if len(name) > 1 && cmd.Flags().Lookup(name) != nil {
			out[i] = "-" + a
		}
	}
	return out
}

// newFlagSet makes a flag set whose --help prints a usage line, a
// description and the flags.
func newFlagSet(name, usageLine, description string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s\n\n%s\n", usageLine, strings.TrimSpace(description))
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintf(fs.Output(), "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses args; done reports that the command should return code.
// --help prints the usage to stdout and succeeds; a bad flag prints the
// error and the usage to stderr and fails with 2.
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) (code int, done bool) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "--help" || a == "-help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0, true
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	return 0, false
}
