package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/arsenal-go/arsenal"
	"github.com/arsenal-go/arsenal/cluster"
	"github.com/arsenal-go/arsenal/node"
	"github.com/arsenal-go/arsenal/ops"
	"github.com/arsenal-go/arsenal/sim"
)

// runDevSimulated is 'arsenal dev --simulate': the dev cluster as complete
// nodes inside this process on sim's in-memory network, each serving the
// operations API on a real loopback port.
func runDevSimulated(nodes, httpPort int, profile, logLevel string, withDemo bool, seed uint64, stdout, stderr io.Writer) int {
	p, err := cluster.ParseProfile(profile)
	if err != nil {
		fmt.Fprintf(stderr, "arsenal dev: --profile: %v\n", err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		fmt.Fprintf(stderr, "arsenal dev: --log-level %q: want debug, info, warn or error\n", logLevel)
		return 2
	}
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	stateDir := filepath.Join(devRoot(), fmt.Sprintf("sim-%x", rb))
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
	tokens, err := ops.LoadTokens(tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "arsenal dev: %v\n", err)
		return 1
	}
	listeners := make([]net.Listener, nodes)
	closeAll := func() {
		for _, ln := range listeners {
			if ln != nil {
				ln.Close()
			}
		}
	}
	for i := range listeners {
		addr := "127.0.0.1:0"
		if httpPort > 0 {
			addr = "127.0.0.1:" + strconv.Itoa(httpPort+i)
		}
		if listeners[i], err = net.Listen("tcp", addr); err != nil {
			closeAll()
			fmt.Fprintf(stderr, "arsenal dev: HTTP %s: %v (try --http-port 0)\n", addr, err)
			return 1
		}
	}
	var addrs strings.Builder
	for _, ln := range listeners {
		fmt.Fprintln(&addrs, ln.Addr().String())
	}
	if err := os.WriteFile(filepath.Join(stateDir, devHTTPFile), []byte(addrs.String()), 0o600); err != nil {
		closeAll()
		fmt.Fprintf(stderr, "arsenal dev: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	app := nodeApp(fmt.Sprint(withDemo))
	c, err := sim.New(ctx, sim.Options{
		Nodes: nodes, Seed: seed, Profile: p, Logger: log,
		Configure: func(i int, cfg *node.Config) {
			cfg.HTTPAddr = listeners[i].Addr().String()
			cfg.Version = buildVersion()
		},
		Services: func(i int, n *node.Node) (sim.Services, error) {
			return arsenal.Attach(ctx, n, nil, arsenal.Config{
				Node: node.Config{Logger: log.With("node", n.Name())}, HTTPListener: listeners[i],
				API: ops.ServerConfig{Tokens: tokens, OpenReads: true, AuditOutput: stderr}, App: app,
			})
		},
	})
	if err != nil {
		closeAll()
		fmt.Fprintf(stderr, "arsenal dev: simulated cluster: %v\n", err)
		return 1
	}
	defer c.Close()
	fmt.Fprintf(stdout, "Arsenal simulated dev cluster: %d nodes in this process, network simulated (seed %d); Ctrl-C stops it\n\n", nodes, c.Seed())
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSIMULATED ADDR\tHTTP")
	for i, n := range c.Nodes() {
		fmt.Fprintf(tw, "%s\t%s\thttp://%s\n", n.Name(), n.Addr(), listeners[i].Addr())
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\nDashboard: http://%s/ui/   (mode: simulated)\n", listeners[0].Addr())
	fmt.Fprintf(stdout, "Try: arsenal nodes --addr http://%s\n", listeners[0].Addr())
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping the simulated cluster…")
	for i := range c.Nodes() {
		if err := c.Stop(i); err != nil {
			fmt.Fprintf(stderr, "arsenal dev: %v\n", err)
		}
	}
	return 0
}
