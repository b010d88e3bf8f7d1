package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/arsenal-go/arsenal/internal/clusterstate"
)

func init() {
	register(command{name: "cluster", summary: "run a background local cluster: start, status, partition, kill, stop…", run: runCluster})
	clusterCommands = []clusterCommand{
		{"start", "start N nodes in the background and wait until they are ready", runClusterStart},
		{"status", "show every node: pid, alive, ready, addresses, members it sees", runClusterStatus},
		{"list", "list the clusters in the state directory", runClusterList},
		{"logs", "print a node's log, or all of them (--follow to tail)", runClusterLogs},
		{"kill", "kill a node with SIGKILL (a crash: peers see it dead)", runClusterKill},
		{"restart", "start a node again under its name, with a new incarnation", runClusterRestart},
		{"partition", "cut the cluster into groups that cannot reach each other", runClusterPartition},
		{"heal", "undo a partition", runClusterHeal},
		{"stop", "stop the nodes gracefully (they leave), killing after a timeout", runClusterStop},
		{"clean", "stop the cluster and remove its state directory", runClusterClean},
		{"preflight", "check this machine can run a local cluster, with a fix for each problem", runClusterPreflight},
	}
}

// clusterCommand is one verb of 'arsenal cluster'.
type clusterCommand struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) int
}

// clusterCommands is in the order the help lists them.
var clusterCommands []clusterCommand

const clusterUsageHead = `Usage: arsenal cluster <command> [flags]

Run a local cluster of real 'arsenal node' processes in the background, on
loopback, and inspect, break and repair it from the shell. The nodes
outlive the command that started them; everything about a cluster (pids,
the addresses the nodes reported, logs, the secret file) is kept in its
state directory, which is how later commands find it again: never by
guessing ports, never by process name.

Commands:
`

const clusterUsageTail = `
State: $XDG_STATE_HOME/arsenal/clusters/<name> (else ~/.local/state/…),
or <dir>/<name> with --dir. The default cluster name is "local".

Examples:
  arsenal cluster preflight
  arsenal cluster start --nodes 5 --profile fast
  arsenal cluster status
  arsenal cluster partition node1,node2 node3,node4,node5
  arsenal cluster heal
  arsenal cluster kill node3 && arsenal cluster restart node3
  arsenal cluster logs node3 --follow
  arsenal cluster clean

Run 'arsenal cluster <command> --help' for the flags of a command.
`

func clusterUsage(w io.Writer) {
	fmt.Fprint(w, clusterUsageHead)
	for _, c := range clusterCommands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, clusterUsageTail)
}

func runCluster(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		clusterUsage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		clusterUsage(stdout)
		return 0
	}
	for _, c := range clusterCommands {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "arsenal cluster: unknown command %q\n\n", args[0])
	clusterUsage(stderr)
	return 2
}

// clusterRef is the --name and --dir every cluster command takes.
type clusterRef struct {
	name, dir *string
}

const defaultClusterName = "local"

func addClusterFlags(fs *flag.FlagSet) clusterRef {
	return clusterRef{
		name: fs.String("name", defaultClusterName, "cluster name"),
		dir:  fs.String("dir", "", "directory holding the clusters' state directories (default $XDG_STATE_HOME/arsenal/clusters)"),
	}
}

// root returns the directory holding every cluster's state directory.
func (r clusterRef) root() (string, error) {
	if *r.dir != "" {
		return filepath.Abs(*r.dir)
	}
	return clusterstate.DefaultRoot()
}

// path returns the cluster's state directory.
func (r clusterRef) path() (string, error) {
	if err := clusterstate.ValidName(*r.name); err != nil {
		return "", err
	}
	root, err := r.root()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, *r.name), nil
}

// load reads the cluster's state; an unknown cluster gives an error that
// lists the known ones.
func (r clusterRef) load() (string, *clusterstate.State, error) {
	dir, err := r.path()
	if err != nil {
		return "", nil, err
	}
	st, err := clusterstate.Load(dir)
	if errors.Is(err, clusterstate.ErrNotFound) {
		return "", nil, r.unknown()
	}
	if err != nil {
		return "", nil, err
	}
	return dir, st, nil
}

func (r clusterRef) unknown() error {
	root, _ := r.root()
	known, _ := clusterstate.List(root)
	flags := ""
	if *r.dir != "" {
		flags = " --dir " + *r.dir
	}
	msg := fmt.Sprintf("no cluster %q in %s", *r.name, root)
	if len(known) == 0 {
		return fmt.Errorf("%s, and no other cluster either; start one with 'arsenal cluster start --name %s%s'", msg, *r.name, flags)
	}
	return fmt.Errorf("%s; known clusters: %s (pick one with --name%s)", msg, strings.Join(known, ", "), flags)
}

// lock loads the cluster's state under the cluster's lock, for commands
// that change it.
func (r clusterRef) lock() (dir string, st *clusterstate.State, unlock func(), err error) {
	dir, err = r.path()
	if err != nil {
		return "", nil, nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, clusterstate.FileName)); err != nil {
		return "", nil, nil, r.unknown()
	}
	unlock, err = clusterstate.Lock(dir)
	if err != nil {
		return "", nil, nil, err
	}
	st, err = clusterstate.Load(dir)
	if err != nil {
		unlock()
		if errors.Is(err, clusterstate.ErrNotFound) {
			err = r.unknown()
		}
		return "", nil, nil, err
	}
	return dir, st, unlock, nil
}

// parseInterleaved parses flags that may come before, between or after
// the positional arguments ('logs node1 --follow'), and returns the
// positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string, stdout io.Writer) (pos []string, code int, done bool) {
	var after []string // everything after "--" is positional
	if i := slices.Index(args, "--"); i >= 0 {
		args, after = args[:i], args[i+1:]
	}
	if code, done := parse(fs, args, stdout); done {
		return nil, code, true
	}
	for fs.NArg() > 0 {
		pos = append(pos, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return nil, 2, true
		}
	}
	return append(pos, after...), 0, false
}

// clusterFormatFlag adds --format; check validates it.
type clusterFormatFlag struct{ v *string }

func addClusterFormatFlag(fs *flag.FlagSet) clusterFormatFlag {
	return clusterFormatFlag{fs.String("format", "table", "output format: table or json")}
}

func (f clusterFormatFlag) json() bool { return *f.v == "json" }

func (f clusterFormatFlag) check() error {
	switch *f.v {
	case "table", "json":
		return nil
	}
	return fmt.Errorf("--format %q: want table or json", *f.v)
}

// failf prints an error of a cluster command and returns exit code 1.
func clusterFail(stderr io.Writer, cmd, format string, args ...any) int {
	fmt.Fprintf(stderr, "arsenal cluster %s: %s\n", cmd, fmt.Sprintf(format, args...))
	return 1
}

// usageErr prints a usage error and returns exit code 2.
func clusterUsageErr(stderr io.Writer, cmd, format string, args ...any) int {
	fmt.Fprintf(stderr, "arsenal cluster %s: %s\n(run 'arsenal cluster %s --help')\n", cmd, fmt.Sprintf(format, args...), cmd)
	return 2
}

// alive reports whether a recorded node still runs (see clusterstate.Alive).
func nodeRunning(n clusterstate.Node) bool { return clusterstate.Alive(n.PID, n.Args) }

// waitUntil polls cond every 50 ms until it holds or the deadline passes.
func pollUntil(deadline time.Time, cond func() bool) bool {
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func agoString(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func yesNoString(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
