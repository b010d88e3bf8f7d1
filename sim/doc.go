// Package sim runs an Arsenal cluster inside one process, on a simulated
// network with faults, so that most multi-node scenarios (crashes,
// partitions, one-way loss, latency, restarts) run in milliseconds to
// seconds, in parallel with other tests, with no ports, no child processes
// and nothing to clean up. clustertest runs the same scenarios on real
// processes and sockets; sim is for the many, clustertest for the proof.
//
//	c, err := sim.New(ctx, sim.Options{Nodes: 5, Seed: 42})
//	defer c.Close()
//	c.Partition([]int{0, 1, 2}, []int{3, 4})
//	err = c.WaitPartition(ctx, 3, cluster.Minority)
//	c.Heal()
//	err = c.WaitConverged(ctx)
//
// In tests, Start(t, opts) does the same, closes the cluster at the end of
// the test and prints the diagnostics (membership matrix, fault timeline,
// each node's recent logs) if the test failed.
//
// # What is real, what is simulated
//
// Real: everything above the sockets. Each node is a complete node.Node
// started with node.Start: the process runtime, the transport (handshake
// with HMAC authentication, framing, keepalives, FIFO links, memberlist's
// transport adapter), hashicorp/memberlist itself (SWIM probes, suspicion,
// gossip, push-pull, encryption), the cluster layer (healing loop,
// topology, partition status, events) and the node layer (remote sends,
// calls, links, monitors, node requests, facts). Every node reports Mode
// simulated (cluster.SetSimulated), so every view shows what it runs on.
//
// Simulated: the network, through node.Config.Net (a transport.Net). Node i
// is host 10.0.x.y (x.y = i+1) and listens on port 7946, under the name
// "n<i+1>@10.0.x.y", on every start. Network implements hosts, stream
// connections (TCP-like: reliable and ordered, 1 MiB in flight per
// direction, writes block when that is full, read and write deadlines,
// close sends EOF after the data, a crash resets) and datagrams (UDP-like:
// a queue of 1024 per socket, dropped when full, no error for a lost
// datagram). No operating-system socket is opened.
//
// # Faults
//
// Network faults apply to one direction of one pair of hosts (PathFaults)
// and change at once for traffic in flight:
//
//   - Cut (Partition, Blackhole): datagrams are lost. Stream bytes are held
//     and flow again when the cut is lifted, as TCP retransmits them,
//     unless a timeout (a link's keepalive, memberlist's deadlines) closed
//     the connection first. New connections wait while either direction
//     is cut, as a lost SYN or SYN-ACK would make them, until the cut is
//     lifted or the dialler's deadline passes.
//   - Refuse: new connections fail at once (a reject); others go on.
//   - Delay with jitter: every datagram and every stream write is
//     delivered late. Streams stay in order; datagrams may be reordered by
//     jitter. Connecting takes the round trip's delays.
//   - Drop rate: datagrams only. Streams are reliable.
//
// Node faults:
//
//   - Kill: the host crashes first (peers' connections to it are reset,
//     connections to it are refused, nothing it still sends gets out; no
//     leave), then the node is closed in the background. Peers see it dead.
//   - Stop: a graceful leave; peers see it left.
//   - Pause and Resume: the host's traffic freezes. Its reads and accepts
//     block, datagrams to it queue (up to the bound, then dropped),
//     datagrams from it are dropped, stream bytes both ways are held, and
//     its dials wait; on Resume held traffic flows. Unlike SIGSTOP, the
//     node's goroutines keep running: its own timers fire, so while paused
//     it sees the others fail, as a node behind a total partition would,
//     and it refutes and rejoins on Resume.
//   - Restart: node.Start again with the same name and address, a new
//     incarnation, joining every other node. Network faults outlive it.
//   - Add: one more node, the next index, under a new name (the next
//     "n<i+1>@…" or one given), joining the nodes that are up: scale-out,
//     or a crashed node replaced under another name as a Kubernetes
//     Deployment does. Faults and waits take its index like any other.
//
// Heal removes every network fault; paused nodes stay paused and killed
// ones down (Resume and Restart are separate), as in clustertest. The
// transport's own per-node fault rules (node.Config.Faults, what
// clustertest drives) work here too, through Options.Configure.
//
// # Waits and diagnostics
//
// The method names follow clustertest where the meaning is the same:
// Partition, Blackhole(a, b, "out"|"in"|"both"), Heal, Kill (crash), Stop,
// Pause, Resume, Restart, WaitConverged, WaitStatus, Eventually. The waits
// take a context and return an error (wrapping ErrNotMet, with the matrix
// and timeline) instead of failing a testing.T, so the simulator also
// serves non-test callers; a common test interface over both harnesses can
// wrap them. Holds checks that a condition stays true for a duration (for
// negative claims: nobody declared dead). Fault methods panic on an index
// out of range or a bad spec, as a slice index would. Timeline lists every
// start and fault with its time; Matrix shows how each node sees each
// other node and its partition status; Network().Stats counts datagrams
// sent, delivered and dropped (by cause) and connections.
//
// # What is deterministic
//
// Options.Seed (recorded in the timeline, random when 0) seeds every
// random decision of the network: the jitter of each datagram and stream
// write, and whether a datagram is dropped. Each direction of each pair of
// hosts, and each kind of traffic, draws from its own stream, so the n-th
// decision on a pair is a function of the seed and the faults in force,
// whatever the other pairs do; Network().Decisions logs them. Cluster.Rand
// is a separate stream from the same seed for a test's own choices, such as
// a random fault schedule, so a logged seed replays the schedule.
//
// Not deterministic: goroutine scheduling, and with it which message a
// decision falls on and the order of concurrent events; memberlist's own
// timers and randomness (probe order, gossip targets, its unseeded
// math/rand); node incarnations (clock plus crypto/rand); and, on the real
// clock, every duration. A seed replays the faults, not the run: outcomes
// repeat in distribution, so tests assert on counts and orders with
// deadlines, never on timings or exact interleavings.
//
// # testing/synctest
//
// The simulator works inside a testing/synctest bubble: the network blocks
// only on its own channels and timers, and every goroutine of the nodes,
// memberlist's included, is started by New inside the bubble. Time is then
// virtual and jumps whenever every goroutine waits, so a crash detection
// or a heal costs no wall-clock time and the timing spread of a loaded
// machine disappears (scheduling is still not deterministic). Create the
// cluster inside synctest.Test with Options.Synctest set: Close then
// sleeps a few virtual seconds, because memberlist's Shutdown does not
// wait for a probe already in flight and synctest reports a goroutine left
// blocked at the end of the bubble as a deadlock. Inside a bubble, avoid
// Runtime.Call to a process of the same node: the process package keeps
// call reply slots (a channel and a timer) in a global sync.Pool, and a
// slot made in a bubble and reused outside it, or in another bubble,
// panics; calls to other nodes do not use it. The package's own scenario
// tests run both on the real clock and in a bubble.
package sim
