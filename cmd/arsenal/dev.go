package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/arsenal-go/arsenal/internal/launch"
)

func init() {
	register(command{name: "dev", summary: "run a local cluster of real node processes with a demo workload", run: runDev})
}

const devDescription = `
Start a local cluster of real 'arsenal node' processes on loopback, with a
demo workload (supervision trees whose workers call each other across
nodes, and one that crashes now and then and is restarted). It prints each
node's HTTP address and stops every node on Ctrl-C. Nothing outside this
machine is needed.

The nodes' logs (at --log-level: warnings and errors by default) and their
audit lines (every call of an operation that changes something or reads
message contents, whatever --log-level) appear here, prefixed with the node.

With --simulate the nodes run inside this process on an in-memory network
(package sim) instead: the same runtime, node links, membership and
operations, but a simulated network; every view reports mode "simulated".
`

func runDev(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("dev", "arsenal dev [flags]", devDescription, stderr)
	nodes := fs.Int("nodes", 3, "number of nodes (1 to 16)")
	httpPort := fs.Int("http-port", 4100, "HTTP port of the first node; the others count up from it (0: any free ports)")
	profile := fs.String("profile", "local", "failure-detection profile: local, lan, wan or fast")
	noDemo := fs.Bool("no-demo", false, "start the nodes without the demo workload")
	logLevel := fs.String("log-level", "warn", "level of the node logs shown here: debug, info, warn or error (audit lines are shown at every level)")
	simulate := fs.Bool("simulate", false, "run the nodes inside this process on a simulated network (package sim); every view reports mode simulated")
	simSeed := fs.Uint64("seed", 0, "with --simulate: seed of the simulated network's random faults (0: random, printed)")
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "arsenal dev: unexpected arguments %q (flags come before any argument; dev takes none)\n", fs.Args())
		return 2
	}
	if *nodes < 1 || *nodes > 16 {
		fmt.Fprintf(stderr, "arsenal dev: --nodes %d: want 1 to 16\n", *nodes)
		return 2
	}
	if *httpPort < 0 || *httpPort+*nodes > 65535 {
		fmt.Fprintf(stderr, "arsenal dev: --http-port %d: out of range\n", *httpPort)
		return 2
	}
	if *simulate {
		return runDevSimulated(*nodes, *httpPort, *profile, *logLevel, !*noDemo, *simSeed, stdout, stderr)
	}
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "arsenal dev: cannot find this binary: %v\n", err)
		return 1
	}
	var sb [16]byte
	_, _ = rand.Read(sb[:])
	secret := hex.EncodeToString(sb[:])
	clusterName := "dev-" + secret[:8]
	// An operator token of this cluster's own, for the CLI verbs that
	// change things (kill, send, trace): the client finds it by itself for
	// the addresses of this cluster's nodes, and only for them.
	stateDir := filepath.Join(devRoot(), clusterName)
	removeStaleDevDirs()
	tokenFile, err := writeClusterToken(stateDir, "dev")
	if err == nil {
		err = writeDevOwner(stateDir)
	}
	if err != nil {
		os.RemoveAll(stateDir)
		fmt.Fprintf(stderr, "arsenal dev: %v\n", err)
		return 1
	}
	defer os.RemoveAll(stateDir)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var (
		children []*launch.Child
		outMu    sync.Mutex
		seed     string
	)
	stopAll := func() {
		var wg sync.WaitGroup
		for _, c := range children {
			wg.Add(1)
			go func() { defer wg.Done(); _ = c.Stop(10 * time.Second) }()
		}
		wg.Wait()
	}
	for i := 1; i <= *nodes; i++ {
		name := fmt.Sprintf("node%d@127.0.0.1", i)
		http := "127.0.0.1:0"
		if *httpPort > 0 {
			http = "127.0.0.1:" + strconv.Itoa(*httpPort+i-1)
		}
		a := []string{"node", "--control", "stdio", "--name", name, "--cluster", clusterName,
			"--node-addr", "127.0.0.1:0", "--http-addr", http, "--profile", *profile,
			"--log-level", *logLevel, "--demo", strconv.FormatBool(!*noDemo), "--tokens-file", tokenFile}
		if seed != "" {
			a = append(a, "--seeds", seed)
		}
		pr, pw := io.Pipe()
		go prefixLines(pr, stderr, &outMu, fmt.Sprintf("[node%d] ", i))
		c, err := launch.Start(ctx, launch.Spec{Binary: bin, Args: a, Env: []string{"ARSENAL_SECRET=" + secret}, Stderr: pw})
		if err != nil {
			fmt.Fprintf(stderr, "arsenal dev: starting %s: %v\n", name, err)
			// The node has printed why (a taken --http-addr names itself, with a fix).
			stopAll()
			return 1
		}
		children = append(children, c)
		if seed == "" {
			seed = c.Ready.NodeAddr
		}
	}
	var addrs strings.Builder
	for _, c := range children {
		fmt.Fprintln(&addrs, c.Ready.HTTPAddr)
	}
	if err := os.WriteFile(filepath.Join(stateDir, devHTTPFile), []byte(addrs.String()), 0o600); err != nil {
		fmt.Fprintf(stderr, "arsenal dev: %v\n", err)
		stopAll()
		return 1
	}
	outMu.Lock()
	fmt.Fprintf(stdout, "Arsenal dev cluster %q: %d nodes on loopback (Ctrl-C stops them all)\n\n", clusterName, len(children))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tOS PID\tNODE ADDR\tHTTP")
	for _, c := range children {
		fmt.Fprintf(tw, "%s\t%d\t%s\thttp://%s\n", c.Ready.Name, c.Ready.OSPID, c.Ready.NodeAddr, c.Ready.HTTPAddr)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\nDashboard: http://%s/ui/\n", children[0].Ready.HTTPAddr)
	fmt.Fprintf(stdout, "Try: arsenal nodes | arsenal health | arsenal ps | arsenal tree | arsenal events | arsenal ops list\n")
	fmt.Fprintf(stdout, "     curl http://%s/api/v1/cluster/topology   (OpenAPI: /api/v1/arsenal/docs)\n", children[0].Ready.HTTPAddr)
	fmt.Fprintf(stdout, "Operator token (for kill, send, trace; the CLI finds it by itself for these nodes): %s\n", filepath.Join(stateDir, operatorTokenFile))
	outMu.Unlock()

	exited := make(chan string, len(children))
	for _, c := range children {
		go func() { <-c.Exited(); exited <- c.Ready.Name }()
	}
	code := 0
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "\nstopping the cluster…")
	case name := <-exited:
		fmt.Fprintf(stderr, "arsenal dev: %s exited unexpectedly; stopping the cluster\n", name)
		code = 1
	}
	stopAll()
	fmt.Fprintln(stdout, "all nodes stopped")
	return code
}

func prefixLines(r io.Reader, w io.Writer, mu *sync.Mutex, prefix string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mu.Lock()
		fmt.Fprintf(w, "%s%s\n", prefix, sc.Text())
		mu.Unlock()
	}
}
