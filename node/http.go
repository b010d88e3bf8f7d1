package node

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the node's health endpoints:
//
//	/healthz  200 while the node runs
//	/readyz   200 once the node has joined what discovery found and the
//	          membership has converged; 503 with the reason before that
//	/metrics  Prometheus metrics of the node, its runtime and Go
//
// The operations API mounts next to these (package ops).
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	n.Mount(mux)
	return mux
}

// Mount adds the health endpoints to mux. /metrics also serves the
// metrics of the extra gatherers (the operations API's, memberlist's).
func (n *Node) Mount(mux *http.ServeMux, extra ...prometheus.Gatherer) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-n.stopCh:
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "stopping", "node": n.cfg.Name})
		default:
			writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "node": n.cfg.Name})
		}
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		top := n.cl.Topology()
		body := map[string]any{"node": n.cfg.Name, "members_up": top.Up, "partition": top.Partition.State, "mode": top.Mode}
		if n.cl.Ready() {
			body["status"] = "ready"
			writeJSON(w, http.StatusOK, body)
			return
		}
		body["status"] = "not_ready"
		body["reason"] = "not yet joined and converged with the peers discovery returned"
		writeJSON(w, http.StatusServiceUnavailable, body)
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), n.collector())
	mux.Handle("GET /metrics", promhttp.HandlerFor(append(prometheus.Gatherers{reg}, extra...), promhttp.HandlerOpts{}))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type nodeCollector struct {
	n                                            *Node
	procs, spawned, crashed, members, mailbox    *prometheus.Desc
	sent, recv, bad, dropped, links, partitionUp *prometheus.Desc
	undeliverable                                *prometheus.Desc
	connsUp, connsLost, dialsFailed, overloads   *prometheus.Desc
	late, queued, gaps                           *prometheus.Desc
}

func (n *Node) collector() prometheus.Collector {
	l := prometheus.Labels{"node": n.cfg.Name, "cluster": n.cfg.Cluster}
	d := func(name, help string, vars ...string) *prometheus.Desc {
		return prometheus.NewDesc("arsenal_"+name, help, vars, l)
	}
	c := &nodeCollector{
		n:           n,
		procs:       d("processes", "Live processes on this node."),
		spawned:     d("processes_spawned_total", "Processes spawned since start."),
		crashed:     d("processes_crashed_total", "Processes that exited abnormally since start."),
		mailbox:     d("mailbox_messages", "Messages waiting in all mailboxes."),
		members:     d("cluster_members", "Cluster members by status, as this node sees them.", "status"),
		partitionUp: d("cluster_partition_minority", "1 when this node is on the minority side of a partition."),
		sent:        d("link_frames_sent_total", "Frames sent to other nodes."),
		recv:        d("link_frames_received_total", "Frames received from other nodes."),
		bad:         d("link_bad_frames_total", "Malformed frames received (each closed its link)."),
		dropped:     d("link_frames_dropped_total", "Frames not delivered: for a node that cannot be connected, queued on a connection when it was lost, over the queue bound, too large, or unencodable. Each was reported (noconnection) or failed its sender."),
		links:       d("links_established_total", "Node links established, inbound and outbound."),
		connsUp:     d("connections_established_total", "Connections to other nodes established (a connection is a unit of fate: both links of a pair)."),
		connsLost:   d("connections_lost_total", "Established connections lost; each fired its links and monitors with noconnection and failed its calls."),
		dialsFailed: d("connection_dials_failed_total", "Connections lost to a failed dial, before any link; each fired what was set up on it."),
		overloads:   d("link_overloads_total", "Connections lost because frames for a peer passed the send queue bound (the overload policy)."),
		late:        d("link_frames_late_total", "Frames of an already lost connection that arrived late and were discarded."),
		queued:      d("link_queued_bytes", "Bytes waiting to be sent to other nodes, all peers together."),
		gaps:        d("membership_event_gaps_total", "Membership events the node missed (0: the subscription is lossless)."),
	}
	c.undeliverable = d("messages_undeliverable_total", "Messages and replies received of a type not registered on this node: dropped and logged (a caller gets an error); the link stays up.")
	return c
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.procs, c.spawned, c.crashed, c.mailbox, c.members, c.partitionUp, c.sent, c.recv, c.bad, c.dropped, c.links, c.undeliverable,
		c.connsUp, c.connsLost, c.dialsFailed, c.overloads, c.late, c.queued, c.gaps} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	st := n.rt.Stats()
	total, _ := n.rt.MailboxTotals()
	g := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	ct := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	g(c.procs, float64(st.Processes))
	ct(c.spawned, st.Spawned)
	ct(c.crashed, st.Crashed)
	g(c.mailbox, float64(total))
	counts := map[string]int{}
	for _, m := range n.cl.Members() {
		counts[string(m.Status)]++
	}
	for _, s := range []string{"alive", "suspect", "dead", "left"} {
		g(c.members, float64(counts[s]), s)
	}
	minority := 0.0
	if n.cl.Partition().State == "minority" {
		minority = 1
	}
	g(c.partitionUp, minority)
	ct(c.sent, n.stats.FramesSent.Load())
	ct(c.recv, n.stats.FramesReceived.Load())
	ct(c.bad, n.stats.BadFrames.Load())
	ct(c.dropped, n.stats.Dropped.Load())
	ct(c.links, n.stats.LinksUp.Load())
	ct(c.undeliverable, n.stats.Undeliverable.Load())
	ct(c.connsUp, n.stats.ConnectionsUp.Load())
	ct(c.connsLost, n.stats.ConnectionsLost.Load())
	ct(c.dialsFailed, n.stats.DialsFailed.Load())
	ct(c.overloads, n.stats.Overloads.Load())
	ct(c.late, n.stats.LateFrames.Load())
	ct(c.gaps, n.stats.MembershipGaps.Load())
	queued := 0
	for _, li := range n.Links() {
		queued += li.QueuedBytes
	}
	g(c.queued, float64(queued))
}
