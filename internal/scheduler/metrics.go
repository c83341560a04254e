package scheduler

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Outcomes of orca_scheduler_fires_total.
const (
	outcomeFired   = "fired"   // published and recorded in the status
	outcomeFailed  = "failed"  // the publish or the status write failed; retried
	outcomeSkipped = "skipped" // a missed cron time that was not fired
	outcomeInvalid = "invalid" // an unusable schedule was found
)

var firesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "orca_scheduler_fires_total",
	Help: "Scheduled times handled by the scheduler, by outcome: fired, failed (retried), skipped (missed cron times not fired) and invalid (unusable schedules seen).",
}, []string{"outcome"})

func init() {
	ctrlmetrics.Registry.MustRegister(firesTotal)
}
