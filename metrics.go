package arsenal

import (
	"sync"

	gometrics "github.com/hashicorp/go-metrics"
	gmprom "github.com/hashicorp/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
)

// memberlist reports its metrics (probes, gossip, push-pull, queue
// sizes…) through the process-wide hashicorp/go-metrics sink. One
// Prometheus sink is installed for the process, once, and registered on
// each node's /metrics registry, where they show as arsenal_memberlist_….
var (
	mlSinkOnce sync.Once
	mlSink     *gmprom.PrometheusSink
	mlSinkErr  error
)

func bridgeMemberlistMetrics(reg prometheus.Registerer) error {
	mlSinkOnce.Do(func() {
		// Its own registry: the sink registers itself, and is registered
		// again on every node's.
		mlSink, mlSinkErr = gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{Registerer: prometheus.NewRegistry()})
		if mlSinkErr != nil {
			return
		}
		cfg := gometrics.DefaultConfig("arsenal")
		cfg.EnableHostname, cfg.EnableHostnameLabel, cfg.EnableRuntimeMetrics = false, false, false
		_, mlSinkErr = gometrics.NewGlobal(cfg, mlSink)
	})
	if mlSinkErr != nil {
		return mlSinkErr
	}
	return reg.Register(mlSink)
}
