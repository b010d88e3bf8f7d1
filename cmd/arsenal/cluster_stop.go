package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/arsenal-go/arsenal/internal/clusterstate"
)

// nodeStopResult is what stopping or killing one node did.
type nodeStopResult struct {
	Name   string `json:"name"`
	PID    int    `json:"pid"`
	Result string `json:"result"` // left, killed, not_running, failed
	Took   string `json:"took,omitempty"`
	Err    string `json:"error,omitempty"`
}

// clusterKillWait bounds the wait for a process to vanish after SIGKILL.
const clusterKillWait = 5 * time.Second

// stopNode stops a node gracefully: SIGTERM makes it leave the cluster
// (peers see "left"), and SIGKILL follows if it has not exited within
// timeout. Only a pid that still runs the recorded command line is
// signalled.
func stopClusterNode(n clusterstate.Node, timeout time.Duration) nodeStopResult {
	r := nodeStopResult{Name: n.Name, PID: n.PID}
	if !nodeRunning(n) {
		r.Result = "not_running"
		return r
	}
	t0 := time.Now()
	if err := syscall.Kill(n.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		r.Result, r.Err = "failed", fmt.Sprintf("SIGTERM: %v", err)
		return r
	}
	_ = syscall.Kill(n.PID, syscall.SIGCONT) // a paused node could not leave
	if pollUntil(time.Now().Add(timeout), func() bool { return !nodeRunning(n) }) {
		r.Result, r.Took = "left", time.Since(t0).Round(time.Millisecond).String()
		return r
	}
	k := killClusterNode(n)
	k.Took = time.Since(t0).Round(time.Millisecond).String()
	if k.Result == "killed" {
		k.Err = fmt.Sprintf("did not exit within %s of SIGTERM; killed", timeout)
	}
	return k
}

// killNode sends SIGKILL and waits until the process is gone.
func killClusterNode(n clusterstate.Node) nodeStopResult {
	r := nodeStopResult{Name: n.Name, PID: n.PID}
	if !nodeRunning(n) {
		r.Result = "not_running"
		return r
	}
	t0 := time.Now()
	if err := syscall.Kill(n.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		r.Result, r.Err = "failed", fmt.Sprintf("SIGKILL: %v", err)
		return r
	}
	if !pollUntil(time.Now().Add(clusterKillWait), func() bool { return !nodeRunning(n) }) {
		r.Result, r.Err = "failed", fmt.Sprintf("still running %s after SIGKILL", clusterKillWait)
		return r
	}
	r.Result, r.Took = "killed", time.Since(t0).Round(time.Millisecond).String()
	return r
}

// stopAll stops the nodes at idx in parallel and records it in the state.
func stopClusterNodes(dir string, st *clusterstate.State, idx []int, timeout time.Duration, kill bool) ([]nodeStopResult, error) {
	res := make([]nodeStopResult, len(idx))
	var wg sync.WaitGroup
	for k, i := range idx {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if kill {
				res[k] = killClusterNode(st.Nodes[i])
			} else {
				res[k] = stopClusterNode(st.Nodes[i], timeout)
			}
		}()
	}
	wg.Wait()
	now := time.Now().UTC()
	for k, i := range idx {
		if res[k].Result == "left" || res[k].Result == "killed" {
			st.Nodes[i].StoppedAt = &now
		}
	}
	return res, clusterstate.Save(dir, st)
}

func printStopResults(w io.Writer, res []nodeStopResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPID\tRESULT\tTOOK\tNOTE")
	for _, r := range res {
		result := map[string]string{"left": "stopped (left the cluster)", "killed": "killed (SIGKILL)", "not_running": "was not running", "failed": "FAILED"}[r.Result]
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", r.Name, r.PID, result, dashIfEmpty(r.Took), r.Err)
	}
	tw.Flush()
}

func anyStopFailed(res []nodeStopResult) bool {
	for _, r := range res {
		if r.Result == "failed" {
			return true
		}
	}
	return false
}

// clusterSelectNodes maps node arguments to indexes; none means all.
func clusterSelectNodes(st *clusterstate.State, args []string) ([]int, error) {
	if len(args) == 0 {
		idx := make([]int, len(st.Nodes))
		for i := range idx {
			idx[i] = i
		}
		return idx, nil
	}
	var idx []int
	seen := map[int]bool{}
	for _, a := range args {
		i, ok := st.Find(a)
		if !ok {
			return nil, fmt.Errorf("no node %q in cluster %q (nodes: %s)", a, st.Name, strings.Join(st.NodeNames(), ", "))
		}
		if !seen[i] {
			seen[i] = true
			idx = append(idx, i)
		}
	}
	return idx, nil
}

const clusterStopDescription = `
Stop the nodes of the cluster gracefully: each gets SIGTERM and leaves the
cluster (its peers see it as "left", not "dead"); a node still running
after --timeout gets SIGKILL. With NODE arguments, only those nodes stop.
The state directory and the logs stay; 'arsenal cluster start' starts the
cluster again, 'arsenal cluster clean' removes it.

Examples:
  arsenal cluster stop
  arsenal cluster stop node2 --timeout 30s
  arsenal cluster stop --name chaos --format json
`

func runClusterStop(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cluster stop", "arsenal cluster stop [NODE…] [flags]", clusterStopDescription, stderr)
	ref := addClusterFlags(fs)
	timeout := fs.Duration("timeout", 10*time.Second, "how long a node gets to leave before SIGKILL")
	format := addClusterFormatFlag(fs)
	pos, code, done := parseInterleaved(fs, args, stdout)
	if done {
		return code
	}
	const cmd = "stop"
	if err := format.check(); err != nil {
		return clusterUsageErr(stderr, cmd, "%v", err)
	}
	dir, st, unlock, err := ref.lock()
	if err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	defer unlock()
	idx, err := clusterSelectNodes(st, pos)
	if err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	res, err := stopClusterNodes(dir, st, idx, *timeout, false)
	if err != nil {
		return clusterFail(stderr, cmd, "saving state: %v", err)
	}
	if format.json() {
		if clusterJSON(stdout, stderr, res) != 0 {
			return 1
		}
	} else {
		printStopResults(stdout, res)
	}
	if anyStopFailed(res) {
		return 1
	}
	return 0
}

const clusterKillDescription = `
Kill a node with SIGKILL, as a crash would: it does not leave, and its
peers detect it as dead (how fast depends on the profile). The state
keeps it; 'arsenal cluster restart NODE' starts it again.

NODE is a node's name (node2 or node2@127.0.0.1) or its number (2).

Examples:
  arsenal cluster kill node2
  arsenal cluster kill 2 && arsenal cluster status
`

func runClusterKill(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cluster kill", "arsenal cluster kill NODE… [flags]", clusterKillDescription, stderr)
	ref := addClusterFlags(fs)
	format := addClusterFormatFlag(fs)
	pos, code, done := parseInterleaved(fs, args, stdout)
	if done {
		return code
	}
	const cmd = "kill"
	if len(pos) == 0 {
		return clusterUsageErr(stderr, cmd, "which node? name one (e.g. node2)")
	}
	if err := format.check(); err != nil {
		return clusterUsageErr(stderr, cmd, "%v", err)
	}
	dir, st, unlock, err := ref.lock()
	if err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	defer unlock()
	idx, err := clusterSelectNodes(st, pos)
	if err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	res, err := stopClusterNodes(dir, st, idx, 0, true)
	if err != nil {
		return clusterFail(stderr, cmd, "saving state: %v", err)
	}
	if format.json() {
		if clusterJSON(stdout, stderr, res) != 0 {
			return 1
		}
	} else {
		printStopResults(stdout, res)
	}
	if anyStopFailed(res) {
		return 1
	}
	return 0
}

const clusterCleanDescription = `
Stop the cluster (gracefully, then SIGKILL after --timeout) and remove its
state directory: the state file, the secret, the logs and the control
sockets. Only the processes recorded in the state, and still running the
command line recorded for them, are signalled: never anything found by
name. Files in the directory that the cluster did not create are left,
with the directory.

Examples:
  arsenal cluster clean
  arsenal cluster clean --name chaos
`

func runClusterClean(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cluster clean", "arsenal cluster clean [flags]", clusterCleanDescription, stderr)
	ref := addClusterFlags(fs)
	timeout := fs.Duration("timeout", 10*time.Second, "how long a node gets to leave before SIGKILL")
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	const cmd = "clean"
	if fs.NArg() > 0 {
		return clusterUsageErr(stderr, cmd, "unexpected arguments %q", fs.Args())
	}
	dir, st, unlock, err := ref.lock()
	if err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	defer unlock()
	idx, _ := clusterSelectNodes(st, nil)
	res, err := stopClusterNodes(dir, st, idx, *timeout, false)
	if err != nil {
		return clusterFail(stderr, cmd, "saving state: %v", err)
	}
	var stopped []nodeStopResult
	for _, r := range res {
		if r.Result != "not_running" {
			stopped = append(stopped, r)
		}
	}
	if len(stopped) > 0 {
		printStopResults(stdout, stopped)
	}
	if anyStopFailed(res) {
		return clusterFail(stderr, cmd, "some nodes could not be stopped; the state in %s is kept so that they are not lost", dir)
	}
	if left := removeClusterFiles(dir, st); len(left) > 0 {
		return clusterFail(stderr, cmd, "removed the cluster's files, but %s holds others it did not create, so it stays: %s", dir, strings.Join(left, ", "))
	}
	fmt.Fprintf(stdout, "cluster %q cleaned: %s removed\n", st.Name, dir)
	return 0
}

// nodeFileRE matches the logs and sockets 'start' creates, also those of
// nodes an earlier, larger start of the same cluster had.
var nodeFileRE = regexp.MustCompile(`^node[0-9]+\.(log|sock)$`)

// removeClusterFiles removes what the cluster created in dir, then dir if
// it is empty; it returns the names of what was left.
func removeClusterFiles(dir string, st *clusterstate.State) []string {
	own := map[string]bool{clusterstate.FileName: true, clusterstate.LockFile: true, operatorTokenFile: true, nodeTokensFile: true}
	if filepath.Dir(st.SecretFile) == dir {
		own[filepath.Base(st.SecretFile)] = true
	}
	if st.UserBinary && filepath.Dir(filepath.Dir(st.Binary)) == dir {
		// built by 'cluster start --build'
		_ = os.RemoveAll(filepath.Dir(st.Binary))
	}
	for _, n := range st.Nodes {
		for _, p := range []string{n.Log, n.ControlSocket, filepath.Join(dir, clusterstate.ShortName(n.Name)+".sock")} {
			if p != "" && filepath.Dir(p) == dir {
				own[filepath.Base(p)] = true
			}
		}
	}
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		name := e.Name()
		if own[name] || nodeFileRE.MatchString(name) || (strings.HasPrefix(name, ".state-") && strings.HasSuffix(name, ".json")) {
			if err := os.Remove(filepath.Join(dir, name)); err == nil || errors.Is(err, fs.ErrNotExist) {
				continue
			}
		}
		left = append(left, name)
	}
	if len(left) == 0 {
		if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			left = append(left, err.Error())
		}
	}
	return left
}
