package scheduler

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Outcomes of orca_scheduler_fires_total.
const (
	outcomeFired   = "fired"   // published and recorded in the status
	outcomeFailed  = "failed"  // the publish or the status write failed; retried
	outcomeSkipped = "skipped" // a missed time the catch-up rule does not fire
	outcomeExpired = "expired" // a time that could not fire within startingDeadlineSeconds
	outcomeInvalid = "invalid" // an unusable schedule was found
)

var firesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "orca_scheduler_fires_total",
	Help: "Scheduled times handled by the scheduler, by outcome: fired, failed (retried), skipped (missed times the catch-up rule does not fire), expired (past startingDeadlineSeconds) and invalid (unusable schedules seen).",
}, []string{"outcome"})

func init() {
	ctrlmetrics.Registry.MustRegister(firesTotal)
}
