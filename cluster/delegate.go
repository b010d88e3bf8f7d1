package cluster

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate receives memberlist's callbacks. memberlist calls the event,
// alive and conflict callbacks while holding its node lock, so every method
// here only touches the Cluster's own state (under c.mu) and never calls
// back into memberlist.
type delegate struct{ c *Cluster }

var (
	_ memberlist.Delegate         = (*delegate)(nil)
	_ memberlist.EventDelegate    = (*delegate)(nil)
	_ memberlist.AliveDelegate    = (*delegate)(nil)
	_ memberlist.MergeDelegate    = (*delegate)(nil)
	_ memberlist.ConflictDelegate = (*delegate)(nil)
	_ memberlist.PingDelegate     = (*delegate)(nil)
)

// NodeMeta implements memberlist.Delegate. Validate keeps the metadata
// under the limit, so the cut below never happens in practice; it only
// keeps memberlist from panicking.
func (d *delegate) NodeMeta(limit int) []byte {
	b := *d.c.meta.Load()
	if len(b) > limit {
		return nil
	}
	return b
}

// NotifyMsg implements memberlist.Delegate: our user messages, gossiped
// or sent reliably: leave intents, and the replicas' messages (replica.go).
func (d *delegate) NotifyMsg(b []byte) {
	if len(b) > 0 && b[0] == msgReplica {
		d.c.replicaMsg(b[1:])
		return
	}
	d.c.handleMsg(b)
}

// GetBroadcasts implements memberlist.Delegate: the replicas' queued
// broadcasts ride on memberlist's gossip.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.c.replicaSet().queue.GetBroadcasts(overhead, limit)
}

// LocalState implements memberlist.Delegate: the replicas' full state, for
// push-pull (nil without replicas).
func (d *delegate) LocalState(join bool) []byte { return d.c.replicaState() }

// MergeRemoteState implements memberlist.Delegate: merge a peer's replica
// state.
func (d *delegate) MergeRemoteState(buf []byte, join bool) { d.c.mergeReplicaState(buf) }

// NotifyJoin implements memberlist.EventDelegate: a member is alive, new or
// back from dead or left.
func (d *delegate) NotifyJoin(n *memberlist.Node) { d.c.nodeAlive(n, false) }

// NotifyUpdate implements memberlist.EventDelegate: an alive member's
// metadata changed.
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.c.nodeAlive(n, true) }

// NotifyLeave implements memberlist.EventDelegate. memberlist calls it for
// both dead and left members, and n.State cannot tell them apart: the
// Node.State field is shadowed by nodeState.State in memberlist v0.7.0 and
// is never set (always StateAlive). Hence the leave intents (doc.go).
func (d *delegate) NotifyLeave(n *memberlist.Node) { d.c.nodeGone(n.Name) }

// NotifyAlive implements memberlist.AliveDelegate: refuse members of other
// clusters, whatever path their alive message took (gossip or push-pull).
// The Label already keeps other clusters' packets out; this also catches a
// memberlist peer without our metadata.
func (d *delegate) NotifyAlive(n *memberlist.Node) error { return d.c.checkPeer(n) }

// NotifyMerge implements memberlist.MergeDelegate: refuse a join with a
// peer whose view holds members of another cluster.
func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		if err := d.c.checkPeer(p); err != nil {
			return err
		}
	}
	return nil
}

// NotifyConflict implements memberlist.ConflictDelegate: two nodes claim
// one name from different addresses.
func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	d.c.nameConflict(existing, other)
}

// AckPayload implements memberlist.PingDelegate.
func (d *delegate) AckPayload() []byte { return nil }

// NotifyPingComplete implements memberlist.PingDelegate: a direct probe of
// other succeeded, which clears a suspicion we raised.
func (d *delegate) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	d.c.probeOK(other.Name)
	d.c.observeRTT(rtt)
}

func (c *Cluster) checkPeer(n *memberlist.Node) error {
	wm, err := decodeMeta(n.Meta)
	if err != nil {
		c.log.Warn("cluster: refusing a peer without valid metadata", "peer", n.Name, "addr", n.Address(), "err", err)
		return fmt.Errorf("peer %s: %w", n.Name, err)
	}
	if wm.Cluster != c.cfg.ClusterName {
		c.log.Warn("cluster: refusing a peer of another cluster", "peer", n.Name, "addr", n.Address(), "its_cluster", wm.Cluster)
		return fmt.Errorf("peer %s belongs to cluster %q, this is %q", n.Name, wm.Cluster, c.cfg.ClusterName)
	}
	return nil
}

// Messages between our nodes, sent with memberlist's SendReliable. The first
// byte is the kind.
const msgLeaveIntent byte = 1

type leaveIntent struct {
	Name        string `json:"n"`
	Incarnation uint64 `json:"i"`
}

func encodeLeaveIntent(li leaveIntent) []byte {
	b, _ := json.Marshal(li)
	return append([]byte{msgLeaveIntent}, b...)
}

func (c *Cluster) handleMsg(b []byte) {
	if len(b) == 0 || b[0] != msgLeaveIntent {
		return
	}
	var li leaveIntent
	if err := json.Unmarshal(b[1:], &li); err != nil {
		c.log.Debug("cluster: bad message", "err", err)
		return
	}
	c.leaveAnnounced(li)
}
