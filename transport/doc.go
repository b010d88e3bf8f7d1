// Package transport is the node-to-node wire of Arsenal. It owns a node's one
// network address (host:port, the same port for TCP and UDP) and carries two
// kinds of traffic on it:
//
//   - Links: authenticated TCP connections (optionally TLS) between nodes,
//     carrying length-prefixed frames whose content the node layer defines.
//     Both sides prove they hold the cluster secret with an HMAC over a
//     transcript of fresh nonces; the secret never crosses the wire. A wrong
//     secret or cluster name is refused with a clear error on both sides
//     (ErrAuth, ErrClusterMismatch), never a hang.
//   - Gossip: hashicorp/memberlist's UDP packets and TCP streams, through
//     Network.Gossip(), a memberlist.NodeAwareTransport. memberlist
//     encrypts gossip itself, with GossipKey(secret, cluster) as its key and
//     the cluster name as its label.
//
// The first byte of each TCP connection says which kind it is, so both share
// one listener.
//
// # How it fits
//
// The node package dials and accepts Links and encodes process messages into
// frames; the cluster package runs memberlist over Gossip(). Neither touches
// sockets. Config.Net says which network the sockets are on: the operating
// system's by default, or an in-memory one (package sim).
//
// # What a Link promises
//
// A Link keeps FIFO order and delivers each frame at most once; it ends for
// good when it closes, and Done and Err say so and why. It never ends
// silently while frames are lost: a frame is lost only with the link. It
// closes when the peer closes it, on a socket error, when a write stalls for
// WriteTimeout, when nothing (data, ping or pong) has been received for
// KeepaliveInterval × KeepaliveMisses (it pings every KeepaliveInterval, so
// a link that cannot carry traffic in one direction is closed on both sides
// within KeepaliveInterval × (KeepaliveMisses + 1)), on a protocol error, and
// on overload: Send never waits, and a frame that would take the send queue
// past SendQueueBytes closes the link with ErrOverload instead. Frames still
// queued when it closes are dropped with it. The node layer builds its
// connections, units of fate, on these links (package node).
//
// # Writing
//
// Each link has a writer goroutine that writes the queue in batches (one
// write for many frames). On a quiet link (nothing queued, the writer idle,
// no data frame for the last 10 µs) Send writes a small frame (at most
// 4 KiB) to a TCP socket itself with one non-blocking write, so that a
// request or a reply does not wait for the writer goroutine to be woken;
// what the socket does not take at once is queued for the writer ahead of
// later frames, so order holds and Send still never waits. A burst goes
// through the writer. The reader reads every frame into the same buffer
// when the handler borrows frames (SetBorrowingHandler), and when it has
// used up what one read returned, it lets the goroutine its handler woke
// run before it reads again.
//
// # Faults
//
// Every frame, packet and connection passes a Faults rule set, so tests can
// cut traffic one way or both, add latency, or refuse connections, per peer,
// by node name or address, and change it at any time; BlockLinks cuts node
// links only, leaving gossip (and so membership) alone. A cut loses gossip
// packets, and holds a link's frames in order, as TCP holds its bytes over a
// cut network: they flow again when it is lifted, unless the keepalive
// closed the link first. So a fault never makes a link lose a frame while
// it stays up; real networks cannot either. The check is a single atomic
// load when no rule is set.
//
// # Framing
//
// Every TCP message is u32 length | u8 type | payload. Data frames go to the
// Link handler; ping, pong and close frames are the link's own. The
// handshake's hello and auth messages use the same framing with a small size
// limit, and all decoding of untrusted bytes is fuzzed.
package transport
