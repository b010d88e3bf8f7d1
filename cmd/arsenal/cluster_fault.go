package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/arsenal-go/arsenal/control"
	"github.com/arsenal-go/arsenal/internal/clusterstate"
)

// errNoControlSocket explains why partition and heal cannot reach the
// nodes of this build.
var errNoControlSocket = errors.New("the nodes have no control channel: 'arsenal node' in this build has no --control-socket flag, " +
	"and partition and heal need it to reach a running node's fault hooks (package control). " +
	"Until it is, inject partitions from Go tests with the clustertest package")

// controlConn is a session on a node's control socket.
type controlConn struct {
	conn net.Conn
	sc   *bufio.Scanner
	next uint64
}

func dialControl(ctx context.Context, socket string) (*controlConn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return &controlConn{conn: conn, sc: sc}, nil
}

func (c *controlConn) Close() error { return c.conn.Close() }

// send writes a command and returns its id, without waiting.
func (c *controlConn) send(cmd string, args any) (uint64, error) {
	var raw json.RawMessage
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return 0, err
		}
		raw = b
	}
	c.next++
	line, _ := json.Marshal(control.Command{ID: c.next, Cmd: cmd, Args: raw})
	if _, err := c.conn.Write(append(line, '\n')); err != nil {
		return 0, fmt.Errorf("control socket: %w", err)
	}
	return c.next, nil
}

// await reads until every id has its reply (events are skipped). The
// node runs the commands of a session concurrently: what must happen in
// order needs an await in between.
func (c *controlConn) await(ids ...uint64) (map[uint64]control.Line, error) {
	want := map[uint64]bool{}
	for _, id := range ids {
		want[id] = true
	}
	got := map[uint64]control.Line{}
	for len(got) < len(want) && c.sc.Scan() {
		var l control.Line
		if json.Unmarshal(c.sc.Bytes(), &l) != nil || !want[l.ID] {
			continue
		}
		got[l.ID] = l
	}
	if len(got) < len(want) {
		if err := c.sc.Err(); err != nil {
			return got, fmt.Errorf("control socket: %w", err)
		}
		return got, errors.New("control socket: closed before every reply came")
	}
	for _, id := range ids {
		if l := got[id]; !l.OK {
			return got, errors.New(l.Error)
		}
	}
	return got, nil
}

// call sends one command and decodes its result into out (may be nil).
func (c *controlConn) call(cmd string, args, out any) error {
	id, err := c.send(cmd, args)
	if err != nil {
		return err
	}
	got, err := c.await(id)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if l := got[id]; out != nil && len(l.Result) > 0 {
		return json.Unmarshal(l.Result, out)
	}
	return nil
}

// controlCall sends one command to a node and waits for its reply.
func controlCall(ctx context.Context, socket, cmd string, args, out any) error {
	c, err := dialControl(ctx, socket)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.call(cmd, args, out)
}

// setFaults replaces a node's fault rules: clear_all first, then the
// others (in any order) over the same session.
func setFaults(ctx context.Context, socket string, faults []control.Fault) error {
	c, err := dialControl(ctx, socket)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.call("fault", control.Fault{Action: "clear_all"}, nil); err != nil {
		return err
	}
	ids := make([]uint64, 0, len(faults))
	for _, f := range faults {
		id, err := c.send("fault", f)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	if _, err := c.await(ids...); err != nil {
		return fmt.Errorf("fault: %w", err)
	}
	return nil
}

// clusterCheckControl fails when the cluster's nodes cannot be reached.
func clusterCheckControl(st *clusterstate.State) error {
	if !nodeHasControlSocket() {
		return errNoControlSocket
	}
	for _, n := range st.Nodes {
		if nodeRunning(n) && n.ControlSocket == "" {
			return fmt.Errorf("%s was started without a control socket (by an older build, or from a directory too long for unix sockets); "+
				"restart it ('arsenal cluster restart %s') or the whole cluster", n.Name, clusterstate.ShortName(n.Name))
		}
	}
	return nil
}

// applyPartition replaces the faults on every live node by the partition:
// each node drops all traffic, both ways, with every node of the other
// groups (by name and by address, for node links and for gossip). The
// nodes are set up in parallel.
func applyPartition(ctx context.Context, st *clusterstate.State, groups [][]string) error {
	group := map[string]int{}
	for gi, g := range groups {
		for _, name := range g {
			group[name] = gi
		}
	}
	errs := make([]error, len(st.Nodes))
	var wg sync.WaitGroup
	for i, a := range st.Nodes {
		if !nodeRunning(a) {
			continue
		}
		var faults []control.Fault
		for _, b := range st.Nodes {
			if group[a.Name] == group[b.Name] {
				continue
			}
			for _, peer := range []string{b.Name, b.NodeAddr} {
				if peer != "" {
					faults = append(faults, control.Fault{Action: "block", Peer: peer, Dir: "both"})
				}
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := setFaults(ctx, a.ControlSocket, faults); err != nil {
				errs[i] = fmt.Errorf("%s: %w", a.Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// parsePartitionGroups turns "node1,node2 node3" into groups of full node names.
// Nodes in no group form one more group, so 'partition node3' isolates
// node3 from the rest.
func parsePartitionGroups(st *clusterstate.State, args []string) ([][]string, error) {
	seen := map[string]bool{}
	var groups [][]string
	for _, a := range args {
		var g []string
		for _, ref := range strings.Split(a, ",") {
			ref = strings.TrimSpace(ref)
			if ref == "" {
				continue
			}
			i, ok := st.Find(ref)
			if !ok {
				return nil, fmt.Errorf("no node %q in cluster %q (nodes: %s)", ref, st.Name, strings.Join(st.NodeNames(), ", "))
			}
			name := st.Nodes[i].Name
			if seen[name] {
				return nil, fmt.Errorf("%s is in two groups", clusterstate.ShortName(name))
			}
			seen[name] = true
			g = append(g, name)
		}
		if len(g) > 0 {
			groups = append(groups, g)
		}
	}
	var rest []string
	for _, n := range st.Nodes {
		if !seen[n.Name] {
			rest = append(rest, n.Name)
		}
	}
	if len(rest) > 0 {
		groups = append(groups, rest)
	}
	if len(groups) < 2 {
		return nil, fmt.Errorf("a partition needs two groups or more; %q puts every node on one side", strings.Join(args, " "))
	}
	return groups, nil
}

const clusterPartitionDescription = `
Cut the cluster into groups: every node drops all traffic (gossip and node
links, both ways) with the nodes of the other groups, through its fault
hooks, reached over its control socket (not the cluster network, so a cut
node stays controllable). Each argument is a group, its nodes separated by
commas; nodes named in no group form one more group. A new partition
replaces the previous one; 'arsenal cluster heal' undoes it.

The sides notice the split within the failure-detection time of the
cluster's profile; watch it with 'arsenal cluster status'.

Examples:
  arsenal cluster partition node1,node2 node3        # 2 | 1
  arsenal cluster partition node3                    # node3 alone | the rest
  arsenal cluster partition 1,2 3,4 5                # three ways
`

func runClusterPartition(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cluster partition", "arsenal cluster partition GROUP [GROUP…] [flags]", clusterPartitionDescription, stderr)
	ref := addClusterFlags(fs)
	pos, code, done := parseInterleaved(fs, args, stdout)
	if done {
		return code
	}
	const cmd = "partition"
	if len(pos) == 0 {
		return clusterUsageErr(stderr, cmd, "name the groups, e.g. 'node1,node2 node3'")
	}
	dir, st, unlock, err := ref.lock()
	if err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	defer unlock()
	groups, err := parsePartitionGroups(st, pos)
	if err != nil {
		return clusterUsageErr(stderr, cmd, "%v", err)
	}
	if err := clusterCheckControl(st); err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st.Partition = groups
	err = applyPartition(ctx, st, groups)
	if serr := clusterstate.Save(dir, st); serr != nil {
		err = errors.Join(err, fmt.Errorf("saving state: %w", serr))
	}
	if err != nil {
		return clusterFail(stderr, cmd, "partition %s only partly applied: %v\n'arsenal cluster heal%s%s' clears what was applied", partitionString(groups), err, clusterNameFlag(ref), clusterDirFlag(ref))
	}
	fmt.Fprintf(stdout, "partitioned %q: %s\n", st.Name, partitionString(groups))
	fmt.Fprintf(stdout, "the sides notice within the failure-detection time of profile %q; watch 'arsenal cluster status%s%s'\n", st.Profile, clusterNameFlag(ref), clusterDirFlag(ref))
	return 0
}

const clusterHealDescription = `
Undo a partition (and any other fault injected through the nodes' fault
hooks): every live node clears all its fault rules. The nodes find each
other again within the cluster's healing time.

Examples:
  arsenal cluster heal
  arsenal cluster heal --name chaos
`

func runClusterHeal(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cluster heal", "arsenal cluster heal [flags]", clusterHealDescription, stderr)
	ref := addClusterFlags(fs)
	if code, done := parse(fs, args, stdout); done {
		return code
	}
	const cmd = "heal"
	if fs.NArg() > 0 {
		return clusterUsageErr(stderr, cmd, "unexpected arguments %q", fs.Args())
	}
	dir, st, unlock, err := ref.lock()
	if err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	defer unlock()
	if err := clusterCheckControl(st); err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	healed := 0
	for _, n := range st.Nodes {
		if !nodeRunning(n) {
			continue
		}
		if err := controlCall(ctx, n.ControlSocket, "fault", control.Fault{Action: "clear_all"}, nil); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
			continue
		}
		healed++
	}
	was := st.Partition
	if len(errs) == 0 {
		st.Partition = nil
		if err := clusterstate.Save(dir, st); err != nil {
			errs = append(errs, fmt.Errorf("saving state: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return clusterFail(stderr, cmd, "%v", err)
	}
	if len(was) > 0 {
		fmt.Fprintf(stdout, "healed %q: the partition %s is gone on %d live nodes\n", st.Name, partitionString(was), healed)
	} else {
		fmt.Fprintf(stdout, "healed %q: no partition was recorded; fault rules cleared on %d live nodes\n", st.Name, healed)
	}
	return 0
}
