package ops

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the per-operation Prometheus metrics of a server
// (ServerConfig.Metrics). A nil *metrics records nothing.
type metrics struct {
	calls    *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	streams  *prometheus.GaugeVec
}

// callBuckets span a cheap read (0.5 ms) to the longest operation timeout
// (65 s), in seconds.
var callBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 65}

func newMetrics(reg prometheus.Registerer, node string) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	l := prometheus.Labels{"node": node}
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "arsenal_ops_calls_total", ConstLabels: l,
			Help: "Calls of each operation of the operations API, by HTTP status (refused calls included)."}, []string{"operation", "status"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "arsenal_ops_errors_total", ConstLabels: l,
			Help: "Calls of each operation that failed, by error code (validation_failed, unauthorized, noproc, timeout, internal…)."}, []string{"operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "arsenal_ops_call_duration_seconds", ConstLabels: l, Buckets: callBuckets,
			Help: "Time to answer a call of each operation, from the request to the written answer (streams: until the stream ends)."}, []string{"operation"}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "arsenal_ops_streams_open", ConstLabels: l,
			Help: "Server-Sent Event streams open now, by operation."}, []string{"operation"}),
	}
	for _, c := range []prometheus.Collector{m.calls, m.errors, m.duration, m.streams} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(op string, status int, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(op, strconv.Itoa(status)).Inc()
	if status >= 400 {
		m.errors.WithLabelValues(op, code).Inc()
	}
	m.duration.WithLabelValues(op).Observe(d.Seconds())
}

func (m *metrics) stream(op string, delta float64) {
	if m == nil {
		return
	}
	m.streams.WithLabelValues(op).Add(delta)
}
