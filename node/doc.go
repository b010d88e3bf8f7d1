// Package node makes a process runtime a member of a cluster.
//
// A Node binds one address for node traffic (package transport), joins
// the cluster's membership (package cluster), and routes the signals of
// its processes to other nodes over authenticated links: messages, calls
// and replies, exits, links and monitors. Between one sender and one
// receiver process, order is kept across nodes, because every frame from
// one node to another goes over that node's single outbound link.
//
// # A connection is a unit of fate
//
// Between this node and another there is at most one connection at a time,
// as between two nodes of Erlang's distribution. It is made of two links:
// the one this node dialled, which carries every frame this node sends to
// the other, in order; and the one the other node dialled, which carries
// its frames to this one. The two live and die as one. The rule:
//
//  1. While a connection is up, every frame sent on it arrives, once, in
//     the order sent.
//  2. A connection is lost when either of its links breaks: closed by the
//     peer, a socket error, a write stalled for Config.LinkTimeout,
//     nothing received for Config.LinkTimeout (the link pings every
//     LinkTimeout/4, so a link that cannot carry traffic one way is lost
//     within 1.25 × LinkTimeout, 10 s by default), more than
//     Config.SendQueueBytes waiting for it (see Overload), a malformed
//     frame, a dial that fails, or a new link from the peer (it started a
//     new connection, so the old one is over for it). Membership declaring
//     the node dead or left, or back with a new incarnation, ends it too.
//     No connection can be made across a loss in one direction (its
//     handshake needs both), so such a loss costs the pair one lost
//     connection, within that bound, and then none at all until it ends:
//     what needs a connection meanwhile fails, with its dial or at once in
//     the dial's backoff (rule 5), and nothing flaps.
//  3. When a connection is lost, this node closes both links and, once and
//     at once, without waiting on the peer: every link between a local
//     process and a process of that node that was set up over this
//     connection fires with NoConnection; every monitor a local process
//     holds on a process there delivers DOWN NoConnection; every call and
//     node request waiting for an answer over it fails with an error that
//     wraps NoConnection (and says why the connection was lost); and the
//     monitors and links that processes there hold on local processes are
//     forgotten. Frames still queued for it (while dialling, or on a link)
//     are dropped and counted: they belong to the lost connection, whose
//     watchers have just been told. The peer does the same on its side when
//     it sees the links close, or when its own keepalive runs out.
//  4. The next frame for that node starts a new connection, with a new
//     epoch and new links, and no links or monitors: each of those belongs
//     to the connection that carried its set-up. Frames of an old
//     connection that arrive late are discarded, never mixed with the new
//     one's.
//  5. A link, monitor, call or message for a node that has no connection
//     and cannot have one now (not a member, or a dial to it failed less
//     than a backoff ago) fails at once: the link fires, the monitor
//     delivers DOWN NoConnection, the call fails, the message is dropped
//     (and counted). One made while a connection is being dialled fails
//     when the dial does; a dial gives up after 2 × Config.RequestTimeout
//     (4 s by default), and a failed one starts a backoff (100 ms,
//     doubling to 2 s; ended early by a link from the node or by
//     membership seeing it up again).
//
// What a process can rely on follows: if P monitors (or links to) Q on
// another node, then every message P sends Q after setting up the monitor
// either arrives, in order, or P receives DOWN NoConnection (the EXIT) for
// that monitor, and so does Q's monitor of P, if it has one. A missing
// message is never silent. As in Erlang, a lost connection does not mean
// the other node is down: a process that wants to keep watching monitors
// again, and the new connection carries the new monitor.
//
// The rule is about connections. What is wrong with a message itself is
// not a lost connection, and fails on its own, logged and counted, with
// no watcher told: a message that cannot be encoded, or whose frame is
// over transport.DefaultMaxFrameSize (8 MiB), is not sent
// (arsenal_link_frames_dropped_total; a call with such a request returns
// the error); a message of a type the receiving node has not registered
// is dropped there (arsenal_messages_undeliverable_total; a call gets an
// error reply). These are errors of the program or of the deployment
// (nodes running different builds), not of the network; the connection
// carries on.
//
// # Overload
//
// Sending never blocks the sender and never waits on the network: Send,
// Cast, Link, Monitor and the sending half of Call queue a frame and
// return (on a quiet link, the frame is written with one non-blocking
// write instead, and whatever the socket does not take is queued; package
// transport, Writing). Frames for one node wait in a queue bounded in bytes
// (Config.SendQueueBytes, 16 MiB by default), while the connection is
// being dialled and on its link. There is one policy when a peer does not
// keep up: a frame that would take the queue past the bound loses the
// connection (transport.ErrOverload), with the signals of rule 3. It is
// never blocked on, and never dropped silently. A bulk sender that may
// outrun the network paces itself on Node.QueuedBytes. Overloads, lost
// connections and dropped frames are counted in /metrics
// (arsenal_link_overloads_total, arsenal_connections_lost_total,
// arsenal_link_frames_dropped_total), and the bytes waiting per node are in
// Links.
//
// No lock is held across network I/O or a wait: dials run in goroutines
// of their own, and losing the connection to one node, or handling the
// membership of another, never waits on a peer that has stopped reading.
//
// # Membership
//
// Membership events reach the node in order and without loss (an unbounded
// ordered subscription, cluster.SubscribeAll), and the links and monitors
// across each connection are indexed by that connection: losing a node
// costs what it touches, not a scan of every process. Messages to PIDs of
// an earlier incarnation are dropped by the receiving runtime.
//
// Node requests (Request, HandleRequest) carry node-level questions, such
// as the facts a node collects about every other node on an interval, and
// the cluster-wide operations of package ops.
package node
