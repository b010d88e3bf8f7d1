package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/arsenal-go/arsenal/control"
)

// check is one preflight check's outcome.
type preflightCheck struct {
	Check  string `json:"check"`
	Status string `json:"status"` // OK, WARN or FAIL
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

const clusterPreflightDescription = `
Check that this machine can run a local cluster, and print a fix for each
problem: localhost resolves to 127.0.0.1; a TCP and a UDP port can be
bound on 127.0.0.1 (on the same port, as a node does); the open-files
limit; that this binary runs ('arsenal version'); that the state
directory is writable; and what partition and heal need. Exits 1 if any
check failed (warnings do not fail).

Examples:
  arsenal cluster preflight
  arsenal cluster preflight --dir ./.arsenal --format json
`

func runClusterPreflight(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cluster preflight", "arsenal cluster preflight [flags]", clusterPreflightDescription, stderr)
	dir := fs.String("dir", "", "directory holding the clusters' state directories (default $XDG_STATE_HOME/arsenal/clusters)")
	format := addClusterFormatFlag(fs)
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	const cmd = "preflight"
	if fs.NArg() > 0 {
		return clusterUsageErr(stderr, cmd, "unexpected arguments %q", fs.Args())
	}
	if err := format.check(); err != nil {
		return clusterUsageErr(stderr, cmd, "%v", err)
	}
	name := defaultClusterName
	ref := clusterRef{name: &name, dir: dir}
	checks := []preflightCheck{preflightLoopback(), preflightPorts(), preflightOpenFiles(), preflightBinary(), preflightStateDir(ref)}
	if runtime.GOOS == "linux" {
		checks = append(checks, preflightProc())
	}
	checks = append(checks, preflightControl(ref))
	failed := 0
	for _, c := range checks {
		if c.Status == "FAIL" {
			failed++
		}
	}
	if format.json() {
		if clusterJSON(stdout, stderr, checks) != 0 {
			return 1
		}
	} else {
		for _, c := range checks {
			fmt.Fprintf(stdout, "%-4s  %-14s %s\n", c.Status, c.Check, c.Detail)
			if c.Fix != "" && c.Status != "OK" {
				fmt.Fprintf(stdout, "      %-14s fix: %s\n", "", c.Fix)
			}
		}
		if failed > 0 {
			fmt.Fprintf(stdout, "\n%d check(s) failed\n", failed)
		} else {
			fmt.Fprintf(stdout, "\nready: 'arsenal cluster start' can run here\n")
		}
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func preflightLoopback() preflightCheck {
	c := preflightCheck{Check: "loopback"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, "localhost")
	switch {
	case err != nil:
		c.Status, c.Detail = "FAIL", fmt.Sprintf("localhost does not resolve: %v", err)
	case !slices.Contains(addrs, "127.0.0.1"):
		c.Status, c.Detail = "FAIL", fmt.Sprintf("localhost resolves to %s, not 127.0.0.1", strings.Join(addrs, ", "))
	default:
		c.Status, c.Detail = "OK", "localhost resolves to "+strings.Join(addrs, ", ")
	}
	if c.Status == "FAIL" {
		c.Fix = "add the line '127.0.0.1 localhost' to /etc/hosts"
	}
	return c
}

// preflightPorts binds what a node binds: a TCP and a UDP socket on one port
// of 127.0.0.1, chosen by the system.
func preflightPorts() preflightCheck {
	c := preflightCheck{Check: "ports", Fix: "bring loopback up ('ip link set lo up'), and check that no sandbox or firewall forbids binding on 127.0.0.1"}
	var lastErr error
	for range 5 {
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			c.Status, c.Detail = "FAIL", fmt.Sprintf("cannot bind a TCP port on 127.0.0.1: %v", err)
			return c
		}
		port := tl.Addr().(*net.TCPAddr).Port
		ul, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		tl.Close()
		if err == nil {
			ul.Close()
			c.Status, c.Detail, c.Fix = "OK", fmt.Sprintf("TCP and UDP bound on 127.0.0.1:%d", port), ""
			return c
		}
		lastErr = err // the UDP port may be taken by chance; try another
	}
	c.Status, c.Detail = "FAIL", fmt.Sprintf("cannot bind a UDP port next to a TCP one on 127.0.0.1: %v", lastErr)
	return c
}

func preflightOpenFiles() preflightCheck {
	c := preflightCheck{Check: "open files"}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		c.Status, c.Detail = "WARN", fmt.Sprintf("cannot read the limit: %v", err)
		return c
	}
	// Go raises its own soft limit to the hard one at start-up, so the
	// soft limit seen here is what a node gets.
	c.Detail = fmt.Sprintf("limit %d (hard %d); need 1024 or more", rl.Cur, rl.Max)
	if rl.Cur >= 1024 {
		c.Status = "OK"
		return c
	}
	c.Status, c.Fix = "FAIL", "raise it in the shell that runs arsenal: 'ulimit -n 65536' (or set nofile in /etc/security/limits.conf)"
	return c
}

func preflightBinary() preflightCheck {
	c := preflightCheck{Check: "binary", Fix: "rebuild it: 'go build -o arsenal ./cmd/arsenal'"}
	bin, err := os.Executable()
	if err != nil {
		c.Status, c.Detail = "FAIL", fmt.Sprintf("cannot find this binary: %v", err)
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	v := strings.TrimSpace(string(out))
	if err != nil || !strings.HasPrefix(v, "arsenal ") {
		c.Status, c.Detail = "FAIL", fmt.Sprintf("%s version: %v %q", bin, err, v)
		return c
	}
	c.Status, c.Detail, c.Fix = "OK", v+" at "+bin, ""
	return c
}

func preflightStateDir(ref clusterRef) preflightCheck {
	c := preflightCheck{Check: "state dir", Fix: "pass --dir with a writable directory, or set XDG_STATE_HOME"}
	root, err := ref.root()
	if err != nil {
		c.Status, c.Detail = "FAIL", err.Error()
		return c
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		c.Status, c.Detail = "FAIL", fmt.Sprintf("cannot create %s: %v", root, err)
		return c
	}
	f, err := os.CreateTemp(root, ".preflight-*")
	if err != nil {
		c.Status, c.Detail = "FAIL", fmt.Sprintf("%s is not writable: %v", root, err)
		return c
	}
	f.Close()
	os.Remove(f.Name())
	c.Status, c.Detail, c.Fix = "OK", root+" is writable", ""
	return c
}

func preflightProc() preflightCheck {
	c := preflightCheck{Check: "/proc"}
	if _, err := os.ReadFile("/proc/self/cmdline"); err != nil {
		c.Status, c.Detail = "FAIL", fmt.Sprintf("cannot read /proc/self/cmdline: %v (needed to tell a node from a reused pid)", err)
		c.Fix = "mount procfs: 'mount -t proc proc /proc'"
		return c
	}
	c.Status, c.Detail = "OK", "process command lines readable (a reused pid is never taken for a node)"
	return c
}

func preflightControl(ref clusterRef) preflightCheck {
	c := preflightCheck{Check: "control"}
	if !nodeHasControlSocket() {
		c.Status, c.Detail = "WARN", "'arsenal node' has no --control-socket: partition and heal will not work (start, status, kill, restart, stop do)"
		c.Fix = "use a build whose 'arsenal node --help' lists --control-socket"
		return c
	}
	root, err := ref.root()
	if err == nil {
		// The longest socket path: <root>/<name>/<node>.sock.
		if p := filepath.Join(root, strings.Repeat("x", 16), "node32.sock"); len(p) > control.MaxSocketPath {
			c.Status, c.Detail = "WARN", fmt.Sprintf("%s is too long a path for unix sockets: partition and heal will not work", root)
			c.Fix = "pass --dir with a shorter directory"
			return c
		}
	}
	c.Status, c.Detail = "OK", "nodes get a control socket: partition and heal work"
	return c
}
