package watcher

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var metrics = struct {
	cleaned  *prometheus.CounterVec
	replaced prometheus.Counter
}{
	cleaned: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orca_watcher_pods_deleted_total",
		Help: "Pods of ended runs the watcher deleted, by why: history (past successfulRunsHistoryLimit or failedRunsHistoryLimit) or ttl (ttlSecondsAfterFinished).",
	}, []string{"why"}),
	replaced: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orca_watcher_pods_replaced_total",
		Help: "Running Pods the watcher deleted because a start of their Task replaced them (concurrencyPolicy Replace).",
	}),
}

func init() {
	ctrlmetrics.Registry.MustRegister(metrics.cleaned, metrics.replaced)
	for _, why := range []string{"history", "ttl"} {
		metrics.cleaned.WithLabelValues(why)
	}
}
