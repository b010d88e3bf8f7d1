package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/memberlist"
)

// Replicated state. Packages above this one (the registry, placement)
// keep state that every node holds a copy of and that must converge. They
// ride on memberlist's own channels instead of opening their own:
//
//   - deltas go out as gossip broadcasts (Broadcast): memberlist piggybacks
//     them on its gossip packets and sends each one RetransmitMult ×
//     ceil(log10(N+1)) times to random members. A replica that merges a
//     delta which changed its state should broadcast that effective change
//     again (as dskit's memberlist KV does), so a delta spreads as an
//     epidemic and does not depend on the sender's few transmissions;
//   - full state is exchanged on every push-pull (LocalState and
//     MergeRemoteState): on join, on every rejoin of a healed partition,
//     and every PushPullInterval with a random member. That is the
//     anti-entropy backstop that repairs any lost delta.
//
// The merge a replica does must therefore be commutative, associative and
// idempotent (a state-based CRDT): deltas and states arrive in any order,
// more than once, or not at all.
// Package cluster/crdt is such a replica's engine (a greatest-entry map,
// its hybrid clock, tombstone retirement and a versioned wire encoding);
// the registry and placement are built on it.
//
// Replicas are multiplexed by name in this package's memberlist delegate.
// A message that does not fit a gossip packet is sent to every member over
// memberlist's reliable (TCP) channel instead.

// Replica is state replicated to every member. Its methods are called from
// memberlist's goroutines, concurrently; they must be safe for concurrent
// use, return quickly and never block on the network. They must not keep
// the slices they are given.
type Replica interface {
	// LocalState returns the full state to send to a peer in a push-pull.
	LocalState() []byte
	// MergeRemoteState merges a peer's full state (its LocalState).
	MergeRemoteState(state []byte)
	// NotifyMsg handles a message sent with Broadcast by a peer (or by this
	// node to itself never: a node does not receive its own broadcasts).
	NotifyMsg(msg []byte)
}

// msgReplica prefixes replica messages: kind, uvarint name length, name,
// payload.
const msgReplica byte = 2

// replicaStateVersion prefixes the push-pull state.
const replicaStateVersion byte = 1

// maxGossipMessage is the largest replica message sent by gossip; larger
// ones go over TCP to every member. memberlist packs broadcasts into UDP
// packets of UDPBufferSize (1400) bytes minus its headers, and would keep
// a message that never fits in its queue forever.
const maxGossipMessage = 1024

// minReplicaRetransmitMult is the least retransmit multiplier of replica
// broadcasts. Each transmission goes to one member, so with the fast
// profile's multiplier (2) a delta reached only two of four peers directly
// and about 1% of deltas waited for the next push-pull (5 s); with 4 the
// re-broadcasts of the receivers cover the rest (docs/benchmarks-registry.md).
const minReplicaRetransmitMult = 4

// ErrReplicaExists is returned by AddReplica for a name already in use.
var ErrReplicaExists = errors.New("cluster: replica name already in use")

// replicas is the Cluster's set of replicas and their broadcast queue.
// The zero value is ready: it initialises itself on first use.
type replicas struct {
	once   sync.Once
	mu     sync.RWMutex
	byName map[string]Replica
	queue  *memberlist.TransmitLimitedQueue
}

func (c *Cluster) replicaSet() *replicas {
	rs := &c.reps
	rs.once.Do(func() {
		rs.byName = map[string]Replica{}
		rs.queue = &memberlist.TransmitLimitedQueue{NumNodes: c.numUp, RetransmitMult: max(c.settings.RetransmitMult, minReplicaRetransmitMult)}
	})
	return rs
}

func (c *Cluster) numUp() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return max(c.partition.Up, 1)
}

// AddReplica adds replicated state under name (at most 255 bytes; the
// same name on every node). From now on its state is part of every
// push-pull and peers' broadcasts for name reach it.
func (c *Cluster) AddReplica(name string, r Replica) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("cluster: replica name %q: want 1 to 255 bytes", name)
	}
	if r == nil {
		return errors.New("cluster: replica is nil")
	}
	rs := c.replicaSet()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if _, ok := rs.byName[name]; ok {
		return fmt.Errorf("%w: %q", ErrReplicaExists, name)
	}
	rs.byName[name] = r
	return nil
}

// RemoveReplica removes the replica under name; its peers' messages are
// dropped from now on.
func (c *Cluster) RemoveReplica(name string) {
	rs := c.replicaSet()
	rs.mu.Lock()
	delete(rs.byName, name)
	rs.mu.Unlock()
}

// Broadcast sends msg to the replica called name on every other member:
// by gossip when it fits a packet, else over TCP to each member (in the
// background). Delivery is best effort; push-pull repairs what is lost.
func (c *Cluster) Broadcast(name string, msg []byte) {
	c.BroadcastKey(name, "", msg)
}

// BroadcastKey is Broadcast with a key: a queued broadcast with the same
// name and key that has not been sent out in full is replaced by this one
// (a newer delta for one entry supersedes an older one).
func (c *Cluster) BroadcastKey(name, key string, msg []byte) {
	b := frameReplica(name, msg)
	if len(b) > maxGossipMessage {
		c.sendReplicaReliable(b)
		return
	}
	q := c.replicaSet().queue
	if key == "" {
		q.QueueBroadcast(&uniqueReplicaBroadcast{msg: b})
		return
	}
	q.QueueBroadcast(&namedReplicaBroadcast{key: name + "\x00" + key, msg: b})
}

// SendReplica sends msg to the replica called name on one member, over
// memberlist's reliable (TCP) channel, and waits for the send.
func (c *Cluster) SendReplica(member, name string, msg []byte) error {
	var to *memberlist.Node
	for _, n := range c.ml.Members() {
		if n.Name == member {
			cp := *n
			to = &cp
			break
		}
	}
	if to == nil {
		return fmt.Errorf("cluster: send to %s: not an alive member", member)
	}
	return c.ml.SendReliable(to, frameReplica(name, msg))
}

func (c *Cluster) sendReplicaReliable(b []byte) {
	for _, n := range c.ml.Members() {
		if n.Name == c.cfg.NodeName {
			continue
		}
		cp := *n
		c.goWork(func() {
			if err := c.ml.SendReliable(&cp, b); err != nil {
				c.log.Debug("cluster: replica message not sent", "peer", cp.Name, "err", err)
			}
		})
	}
}

func frameReplica(name string, msg []byte) []byte {
	b := make([]byte, 0, 2+binary.MaxVarintLen64+len(name)+len(msg))
	b = append(b, msgReplica)
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	return append(b, msg...)
}

// replicaMsg dispatches a replica message (without its kind byte).
func (c *Cluster) replicaMsg(b []byte) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		c.log.Debug("cluster: malformed replica message")
		return
	}
	name, payload := string(b[k:k+int(n)]), b[k+int(n):]
	rs := c.replicaSet()
	rs.mu.RLock()
	r := rs.byName[name]
	rs.mu.RUnlock()
	if r != nil {
		r.NotifyMsg(payload)
	}
}

// replicaState encodes every replica's LocalState: version, then per
// replica uvarint name length, name, uvarint state length, state.
func (c *Cluster) replicaState() []byte {
	rs := c.replicaSet()
	rs.mu.RLock()
	all := make(map[string]Replica, len(rs.byName))
	for n, r := range rs.byName {
		all[n] = r
	}
	rs.mu.RUnlock()
	if len(all) == 0 {
		return nil
	}
	b := []byte{replicaStateVersion}
	for name, r := range all {
		s := r.LocalState()
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func (c *Cluster) mergeReplicaState(b []byte) {
	if len(b) == 0 {
		return
	}
	if b[0] != replicaStateVersion {
		c.log.Debug("cluster: replica state of unknown version", "version", b[0])
		return
	}
	b = b[1:]
	rs := c.replicaSet()
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			c.log.Debug("cluster: malformed replica state")
			return
		}
		name := string(b[k : k+int(n)])
		b = b[k+int(n):]
		n, k = binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			c.log.Debug("cluster: malformed replica state")
			return
		}
		state := b[k : k+int(n)]
		b = b[k+int(n):]
		rs.mu.RLock()
		r := rs.byName[name]
		rs.mu.RUnlock()
		if r != nil {
			r.MergeRemoteState(state)
		}
	}
}

// Queued replica messages. A keyed one is a memberlist.NamedBroadcast:
// queueing another with the same key replaces it. An unkeyed one is a
// memberlist.UniqueBroadcast, so queueing it does not scan the queue.
type namedReplicaBroadcast struct {
	key string
	msg []byte
}

func (b *namedReplicaBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*namedReplicaBroadcast)
	return ok && o.key == b.key
}
func (b *namedReplicaBroadcast) Name() string    { return b.key }
func (b *namedReplicaBroadcast) Message() []byte { return b.msg }
func (b *namedReplicaBroadcast) Finished()       {}

type uniqueReplicaBroadcast struct{ msg []byte }

func (b *uniqueReplicaBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b *uniqueReplicaBroadcast) UniqueBroadcast()                      {}
func (b *uniqueReplicaBroadcast) Message() []byte                       { return b.msg }
func (b *uniqueReplicaBroadcast) Finished()                             {}
