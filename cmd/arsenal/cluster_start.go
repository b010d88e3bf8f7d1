package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/control"
	"github.com/arsenal-go/arsenal/internal/clusterstate"
)

const clusterStartDescription = `
Start N 'arsenal node' processes in the background on loopback, joined into
one cluster, and wait until every node is ready (GET /readyz answers 200).
The nodes keep running after this command returns; 'arsenal cluster stop'
stops them.

Each node binds port 0 for node traffic (and for HTTP unless --http-port
is given) and the addresses it reports in its log are recorded in the
state directory. The cluster secret is generated, written to a file of
mode 0600 in the state directory and passed with --secret-file, never on
a command line. Each node logs to <state dir>/<node>.log.

A cluster whose state directory still has live nodes is not started again.

--binary PATH or --build PKG runs your own service instead of
'arsenal node': a binary whose main calls arsenal.Main (docs/NODE.md).

Examples:
  arsenal cluster start
  arsenal cluster start --nodes 5 --name chaos --profile fast
  arsenal cluster start --name jobq --build ./examples/jobq/cmd/jobq
  arsenal cluster start --http-port 4100      # node1 on :4100, node2 on :4101…
  arsenal cluster start --dir ./.arsenal --format json
`

func runClusterStart(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cluster start", "arsenal cluster start [flags]", clusterStartDescription, stderr)
	ref := addClusterFlags(fs)
	nodes := fs.Int("nodes", 3, "number of nodes (1 to 32)")
	profile := fs.String("profile", "local", "failure-detection profile: local, lan, wan or fast")
	httpPort := fs.Int("http-port", 0, "HTTP port of the first node; the others count up from it (0: any free port for each)")
	demo := fs.Bool("demo", false, "run the demo workload on the nodes (what 'arsenal dev' runs)")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for every node to be ready")
	userBin := fs.String("binary", "", "run this binary (built with arsenal.Main) instead of 'arsenal node'")
	build := fs.String("build", "", "build this main package (go build) and run it instead of 'arsenal node'")
	format := addClusterFormatFlag(fs)
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	const cmd = "start"
	if *userBin != "" && *build != "" {
		return clusterUsageErr(stderr, cmd, "--binary and --build: give one")
	}
	if (*userBin != "" || *build != "") && *demo {
		return clusterUsageErr(stderr, cmd, "--demo is the demo workload of 'arsenal node'; your binary has its own")
	}
	if fs.NArg() > 0 {
		return clusterUsageErr(stderr, cmd, "unexpected arguments %q", fs.Args())
	}
	if err := format.check(); err != nil {
		return clusterUsageErr(stderr, cmd, "%v", err)
	}
	if *nodes < 1 || *nodes > 32 {
		return clusterUsageErr(stderr, cmd, "--nodes %d: want 1 to 32", *nodes)
	}
	if *httpPort < 0 || *httpPort+*nodes-1 > 65535 {
		return clusterUsageErr(stderr, cmd, "--http-port %d: out of range", *httpPort)
	}
	if _, err := cluster.ParseProfile(*profile); err != nil {
		return clusterUsageErr(stderr, cmd, "--profile: %v", err)
	}
	dir, err := ref.path()
	if err != nil {
		return clusterUsageErr(stderr, cmd, "%v", err)
	}
	bin, err := os.Executable()
	if err != nil {
		return clusterFail(stderr, cmd, "cannot find this binary to run the nodes: %v", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return clusterFail(stderr, cmd, "state directory: %v", err)
	}
	switch {
	case *userBin != "":
		if bin, err = filepath.Abs(*userBin); err == nil {
			_, err = os.Stat(bin)
		}
		if err != nil {
			return clusterUsageErr(stderr, cmd, "--binary: %v", err)
		}
	case *build != "":
		bin = filepath.Join(dir, "bin", filepath.Base(strings.TrimSuffix(*build, "/")))
		out, err := exec.Command("go", "build", "-o", bin, *build).CombinedOutput()
		if err != nil {
			return clusterFail(stderr, cmd, "--build: go build %s: %v\n%s", *build, err, out)
		}
	}
	unlock, err := clusterstate.Lock(dir)
	if err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	defer unlock()
	if old, err := clusterstate.Load(dir); err == nil {
		var live []string
		for _, n := range old.Nodes {
			if nodeRunning(n) {
				live = append(live, fmt.Sprintf("%s (pid %d)", clusterstate.ShortName(n.Name), n.PID))
			}
		}
		if len(live) > 0 {
			return clusterFail(stderr, cmd, "cluster %q is already running in %s: %s alive; stop it first ('arsenal cluster stop%s%s'), or pick another --name",
				*ref.name, dir, strings.Join(live, ", "), clusterNameFlag(ref), clusterDirFlag(ref))
		}
	} else if !errors.Is(err, clusterstate.ErrNotFound) {
		return clusterFail(stderr, cmd, "%v (remove %s by hand if it is not needed)", err, dir)
	}

	secretFile := filepath.Join(dir, "secret")
	if err := writeClusterSecret(secretFile); err != nil {
		return clusterFail(stderr, cmd, "secret file: %v", err)
	}
	if _, err := writeClusterToken(dir, "cluster "+*ref.name); err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	st := &clusterstate.State{Name: *ref.name, SecretFile: secretFile, Binary: bin, Profile: *profile,
		HTTPPort: *httpPort, Demo: *demo, CreatedAt: time.Now().UTC(),
		UserBinary: *userBin != "" || *build != ""}
	for i := 1; i <= *nodes; i++ {
		name := fmt.Sprintf("node%d@127.0.0.1", i)
		log := filepath.Join(dir, fmt.Sprintf("node%d.log", i))
		// A new cluster starts new logs; restarts append.
		if err := os.WriteFile(log, nil, 0o600); err != nil {
			return clusterFail(stderr, cmd, "log file: %v", err)
		}
		st.Nodes = append(st.Nodes, clusterstate.Node{Name: name, Log: log})
	}
	if err := clusterstate.Save(dir, st); err != nil {
		return clusterFail(stderr, cmd, "saving state: %v", err)
	}
	l := newClusterLauncher(dir, st, bin)
	l.say = stderr
	if l.sockets && !l.socketsFit() {
		l.sockets = false
		fmt.Fprintf(stderr, "warning: %s is too long a path for unix sockets; the nodes get no control socket, so partition and heal will not work (use a shorter --dir)\n", dir)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := l.startAll(ctx); err != nil {
		l.abort()
		fmt.Fprintf(stderr, "arsenal cluster start: %v\n", err)
		fmt.Fprintf(stderr, "every node this command started was stopped; the logs are kept in %s ('arsenal cluster logs --name %s%s')\n", dir, *ref.name, clusterDirFlag(ref))
		return 1
	}
	if format.json() {
		return clusterJSON(stdout, stderr, st)
	}
	fmt.Fprintf(stdout, "Cluster %q: %d nodes ready on loopback (state: %s)\n\n", st.Name, len(st.Nodes), dir)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tOS PID\tNODE ADDR\tHTTP\tINCARNATION")
	for _, n := range st.Nodes {
		fmt.Fprintf(tw, "%s\t%d\t%s\thttp://%s\t%d\n", n.Name, n.PID, n.NodeAddr, n.HTTPAddr, n.Incarnation)
	}
	tw.Flush()
	more := clusterNameFlag(ref) + clusterDirFlag(ref)
	fmt.Fprintf(stdout, "\nNext: arsenal cluster status%s   arsenal cluster logs%s   arsenal cluster stop%s\n", more, more, more)
	return 0
}

func clusterNameFlag(ref clusterRef) string {
	if *ref.name == defaultClusterName {
		return ""
	}
	return " --name " + *ref.name
}

func clusterDirFlag(ref clusterRef) string {
	if *ref.dir == "" {
		return ""
	}
	return " --dir " + *ref.dir
}

func clusterJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "arsenal cluster: %v\n", err)
		return 1
	}
	return 0
}

func writeClusterSecret(path string) error {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(hex.EncodeToString(b[:]) + "\n")
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return err
	}
	return os.Chmod(path, 0o600) // in case the file existed with looser bits
}

// clusterLauncher starts the nodes of a cluster detached from this
// command, and records them in the state as they start.
type clusterLauncher struct {
	dir     string
	bin     string
	sockets bool      // the nodes get --control-socket
	say     io.Writer // where retries are announced (nil: nowhere)

	mu    sync.Mutex // guards st and procs
	st    *clusterstate.State
	procs map[int]*clusterNodeProc // the processes this command started, by node index
}

// clusterNodeProc is a node process this command started. Its exit is
// seen only while this command runs; afterwards the process is on its own.
type clusterNodeProc struct {
	cmd    *exec.Cmd
	offset int64 // where this run's lines begin in the log
	exited chan struct{}
	err    error
}

func newClusterLauncher(dir string, st *clusterstate.State, bin string) *clusterLauncher {
	return &clusterLauncher{dir: dir, bin: bin, st: st, procs: map[int]*clusterNodeProc{}, sockets: nodeHasControlSocket()}
}

func (l *clusterLauncher) socketPath(i int) string {
	return filepath.Join(l.dir, clusterstate.ShortName(l.st.Nodes[i].Name)+".sock")
}

func (l *clusterLauncher) socketsFit() bool {
	for i := range l.st.Nodes {
		if len(l.socketPath(i)) > control.MaxSocketPath {
			return false
		}
	}
	return true
}

// startAll starts the first node alone, then the others in parallel,
// seeded with the first one's address, and waits until all are ready.
func (l *clusterLauncher) startAll(ctx context.Context) error {
	if err := l.startNodeRetry(ctx, 0, nil); err != nil {
		return err
	}
	seed := []string{l.st.Nodes[0].NodeAddr}
	n := len(l.st.Nodes)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = l.startNodeRetry(ctx, i, seed) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = l.waitReady(ctx, i) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startRetries bounds the retries of a node that failed to start for a
// transient reason.
var startRetries = []time.Duration{250 * time.Millisecond, time.Second, 3 * time.Second}

// transientStart reports whether a start failure may pass by itself: a
// port in use (a fixed --http-port that another process holds for now).
func transientStart(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}

// startNodeRetry is startNode, retried with backoff while the failure is
// transient, saying so; any other failure returns at once, with the
// node's last log lines.
func (l *clusterLauncher) startNodeRetry(ctx context.Context, i int, seeds []string) error {
	err := l.startNode(ctx, i, seeds)
	for attempt, wait := range startRetries {
		if !transientStart(err) || ctx.Err() != nil {
			return err
		}
		l.mu.Lock()
		name := l.st.Nodes[i].Name
		l.mu.Unlock()
		if l.say != nil {
			fmt.Fprintf(l.say, "%s: a port is taken; retrying in %s (attempt %d of %d)\n", name, wait, attempt+2, len(startRetries)+1)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		err = l.startNode(ctx, i, seeds)
	}
	return err
}

// startNode starts node i and waits until its log reports the addresses
// it bound.
func (l *clusterLauncher) startNode(ctx context.Context, i int, seeds []string) error {
	l.mu.Lock()
	n := l.st.Nodes[i]
	st := l.st
	l.mu.Unlock()
	httpAddr := "127.0.0.1:0"
	if st.HTTPPort > 0 {
		httpAddr = "127.0.0.1:" + strconv.Itoa(st.HTTPPort+i)
	}
	args := []string{l.bin}
	if !st.UserBinary {
		args = append(args, "node", "--demo", strconv.FormatBool(st.Demo))
	}
	args = append(args, "--name", n.Name, "--cluster", st.Name, "--secret-file", st.SecretFile,
		"--node-addr", "127.0.0.1:0", "--http-addr", httpAddr, "--profile", st.Profile,
		"--expected-size", strconv.Itoa(len(st.Nodes)), "--log-format", "text", "--log-level", "info")
	if len(seeds) > 0 {
		args = append(args, "--seeds", strings.Join(seeds, ","))
	}
	// The cluster's operator token (a cluster started by an older binary
	// has none, and its nodes keep running without).
	if tf := filepath.Join(l.dir, nodeTokensFile); fileExists(tf) {
		args = append(args, "--tokens-file", tf)
	}
	socket := ""
	if l.sockets {
		socket = l.socketPath(i)
		args = append(args, "--control-socket", socket)
	}
	logf, err := os.OpenFile(n.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s: log file: %w", n.Name, err)
	}
	var offset int64
	if fi, err := logf.Stat(); err == nil {
		offset = fi.Size()
	}
	cmd := &exec.Cmd{Path: l.bin, Args: args, Env: clusterNodeEnv(), Dir: l.dir, Stdout: logf, Stderr: logf,
		// Its own session: no terminal signals (Ctrl-C here), and no
		// parent-death signal: the node outlives this command.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	err = cmd.Start()
	logf.Close() // the child has its own descriptor
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	p := &clusterNodeProc{cmd: cmd, offset: offset, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	now := time.Now().UTC()
	if err := l.update(i, func(n *clusterstate.Node) {
		l.procs[i] = p
		n.PID, n.Args, n.StartedAt, n.StoppedAt = cmd.Process.Pid, args, now, nil
		n.NodeAddr, n.HTTPAddr, n.Incarnation, n.ControlSocket = "", "", 0, socket
	}); err != nil {
		return err
	}
	su, err := waitNodeStartup(ctx, n, p)
	if err != nil {
		return err
	}
	return l.update(i, func(n *clusterstate.Node) {
		n.NodeAddr, n.HTTPAddr, n.Incarnation = su.NodeAddr, su.HTTPAddr, su.Incarnation
	})
}

// update changes node i in the state and saves it.
func (l *clusterLauncher) update(i int, fn func(*clusterstate.Node)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn(&l.st.Nodes[i])
	if err := clusterstate.Save(l.dir, l.st); err != nil {
		return fmt.Errorf("saving state: %w", err)
	}
	return nil
}

// waitStartup polls the node's log for the addresses it bound.
func waitNodeStartup(ctx context.Context, n clusterstate.Node, p *clusterNodeProc) (clusterstate.Startup, error) {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		su, _ := clusterstate.ScanStartup(n.Log, p.offset)
		switch {
		case su.Failed != "":
			return su, fmt.Errorf("%s failed to start: %s", n.Name, su.Failed)
		case su.Complete():
			return su, nil
		}
		select {
		case <-p.exited:
			su, _ = clusterstate.ScanStartup(n.Log, p.offset)
			if su.Failed != "" {
				return su, fmt.Errorf("%s failed to start: %s", n.Name, su.Failed)
			}
			return su, fmt.Errorf("%s exited before it reported its addresses (%v); its log ends:\n%s", n.Name, p.err, logTailText(n.Log, p.offset))
		case <-ctx.Done():
			return su, fmt.Errorf("%s did not report its addresses in its log: %w; its log ends:\n%s", n.Name, context.Cause(ctx), logTailText(n.Log, p.offset))
		case <-tick.C:
		}
	}
}

// waitReady polls the node's /readyz until it answers 200.
func (l *clusterLauncher) waitReady(ctx context.Context, i int) error {
	l.mu.Lock()
	n := l.st.Nodes[i]
	p := l.procs[i]
	l.mu.Unlock()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last readyzBody
	for {
		r, err := fetchReadyz(ctx, n.HTTPAddr)
		if err == nil && r.ready {
			return nil
		}
		last = r
		var exited <-chan struct{}
		if p != nil {
			exited = p.exited
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited before it was ready (%v); its log ends:\n%s", n.Name, p.err, logTailText(n.Log, p.offset))
		case <-ctx.Done():
			why := last.Reason
			if err != nil {
				why = err.Error()
			}
			return fmt.Errorf("%s not ready (%s, %d members up): %w", n.Name, why, last.MembersUp, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// abort kills every node this command started (they are its children),
// and records that they are gone.
func (l *clusterLauncher) abort() {
	l.mu.Lock()
	procs := l.procs
	l.mu.Unlock()
	for i, p := range procs {
		_ = p.cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
		}
		now := time.Now().UTC()
		_ = l.update(i, func(n *clusterstate.Node) { n.StoppedAt = &now })
	}
}

func logTailText(log string, offset int64) string {
	lines := clusterstate.LogTail(log, offset, 10)
	if len(lines) == 0 {
		return "  (empty)"
	}
	return "  " + strings.Join(lines, "\n  ")
}

// nodeEnv is this environment without ARSENAL_* variables: a node takes
// its settings from those when a flag is missing, and a stray
// ARSENAL_SEEDS or ARSENAL_CONFIG in the user's shell must not change the
// cluster.
func clusterNodeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ARSENAL_") {
			env = append(env, kv)
		}
	}
	return env
}

// nodeHasControlSocket reports whether 'arsenal node' in this binary
// takes --control-socket (the control channel of background nodes).
func nodeHasControlSocket() bool {
	var help strings.Builder
	runNode([]string{"--help"}, &help, io.Discard)
	return strings.Contains(help.String(), "-control-socket")
}

const clusterRestartDescription = `
Start a node of the cluster again under the same name, with a new
incarnation, joining the nodes that are alive, and wait until it is ready.
A node that is still running is first stopped gracefully (SIGTERM, then
SIGKILL after --stop-timeout). If a partition is in effect, it is applied
to the new process too, and the command waits only until the node runs.

NODE is a node's name (node2 or node2@127.0.0.1) or its number (2).

Examples:
  arsenal cluster kill node2 && arsenal cluster restart node2
  arsenal cluster restart 3 --name chaos
`

func runClusterRestart(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cluster restart", "arsenal cluster restart NODE [flags]", clusterRestartDescription, stderr)
	ref := addClusterFlags(fs)
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for the node to be ready")
	stopTimeout := fs.Duration("stop-timeout", 10*time.Second, "if the node runs, how long it gets to leave before SIGKILL")
	format := addClusterFormatFlag(fs)
	pos, code, done := parseInterleaved(fs, args, stdout)
	if done {
		return code
	}
	const cmd = "restart"
	if len(pos) != 1 {
		return clusterUsageErr(stderr, cmd, "want one NODE, got %d arguments", len(pos))
	}
	if err := format.check(); err != nil {
		return clusterUsageErr(stderr, cmd, "%v", err)
	}
	dir, st, unlock, err := ref.lock()
	if err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	defer unlock()
	i, ok := st.Find(pos[0])
	if !ok {
		return clusterFail(stderr, cmd, "no node %q in cluster %q (nodes: %s)", pos[0], st.Name, strings.Join(st.NodeNames(), ", "))
	}
	old := st.Nodes[i]
	if nodeRunning(old) {
		r := stopClusterNode(old, *stopTimeout)
		if r.Err != "" {
			return clusterFail(stderr, cmd, "stopping %s first: %s", old.Name, r.Err)
		}
	}
	bin := st.Binary
	if self, err := os.Executable(); err == nil && !st.UserBinary {
		bin = self // restart with this binary, as start would
	}
	l := newClusterLauncher(dir, st, bin)
	if l.sockets && !l.socketsFit() {
		l.sockets = false
	}
	var seeds []string
	for j, n := range st.Nodes {
		if j != i && nodeRunning(n) && n.NodeAddr != "" {
			seeds = append(seeds, n.NodeAddr)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	l.say = stderr
	err = l.startNodeRetry(ctx, i, seeds)
	if err == nil && len(st.Partition) > 0 {
		err = applyPartition(ctx, st, st.Partition)
	} else if err == nil {
		err = l.waitReady(ctx, i)
	}
	if err != nil {
		l.abort()
		fmt.Fprintf(stderr, "arsenal cluster restart: %v\n", err)
		fmt.Fprintf(stderr, "the new process was stopped; its log is %s\n", old.Log)
		return 1
	}
	_ = l.update(i, func(n *clusterstate.Node) { n.Restarts++ })
	n := st.Nodes[i]
	if format.json() {
		return clusterJSON(stdout, stderr, n)
	}
	fmt.Fprintf(stdout, "%s restarted: pid %d, incarnation %d (was %d), node addr %s, http://%s\n",
		n.Name, n.PID, n.Incarnation, old.Incarnation, n.NodeAddr, n.HTTPAddr)
	if len(st.Partition) > 0 {
		fmt.Fprintf(stdout, "the partition %s still holds; 'arsenal cluster heal%s%s' undoes it\n", partitionString(st.Partition), clusterNameFlag(ref), clusterDirFlag(ref))
	}
	return 0
}
