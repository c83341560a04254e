package actions

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// metrics are registered with controller-runtime's registry, so that the
// service's /metrics endpoint serves them.
var metrics = struct {
	runs       *prometheus.CounterVec
	duplicates prometheus.Counter
}{
	runs: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orca_actions_runs_total",
		Help: "Action runs, by plugin (none for a missing Action) and outcome (succeeded, failed, misconfigured, missing).",
	}, []string{"plugin", "outcome"}),
	duplicates: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orca_actions_duplicates_total",
		Help: "Action runs skipped because the Action already ran for the event (a redelivered or replayed event).",
	}),
}

func init() {
	ctrlmetrics.Registry.MustRegister(metrics.runs, metrics.duplicates)
}
