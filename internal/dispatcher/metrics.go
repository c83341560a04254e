package dispatcher

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var metrics = struct {
	podsCreated     prometheus.Counter
	podsRejected    prometheus.Counter
	duplicates      prometheus.Counter
	staleTaskEvents prometheus.Counter
	podCreateErrors prometheus.Counter
	joinsSkipped    prometheus.Counter
	joinsTimedOut   prometheus.Counter
	halted          prometheus.Counter
	limited         *prometheus.CounterVec
}{
	podsCreated: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orca_dispatcher_pods_created_total",
		Help: "Pods the dispatcher created.",
	}),
	podsRejected: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orca_dispatcher_pods_rejected_total",
		Help: "Pods the API server refused as invalid.",
	}),
	duplicates: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orca_dispatcher_duplicates_total",
		Help: "Task starts dropped because the same event (source and id) had started the Task already: its Pod exists.",
	}),
	staleTaskEvents: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orca_dispatcher_stale_task_events_total",
		Help: "Task events that started nothing because the Task that ran the Pod was deleted or replaced (another uid).",
	}),
	podCreateErrors: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orca_dispatcher_pod_create_errors_total",
		Help: "Pod creates that failed for a reason a retry may fix (API server unreachable, quota, ...): the event comes back.",
	}),
	joinsSkipped: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orca_dispatcher_joins_skipped_total",
		Help: "Runs in which a Task with a startWhen condition was skipped (false, failed, or timed out with policy Skip).",
	}),
	joinsTimedOut: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orca_dispatcher_joins_timed_out_total",
		Help: "Runs in which a startWhen condition was still undecided at its timeout.",
	}),
	halted: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orca_dispatcher_halted_total",
		Help: "Task starts that the loop guard refused because their run had started as many Pods as the limit allows.",
	}),
	limited: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orca_dispatcher_limited_starts_total",
		Help: "Starts of Tasks with a parallelism or concurrencyPolicy, by outcome: started, queued (waits for a slot), deferred (the Task's queue was full), forbidden (skipped by Forbid), replaced (running Pods a Replace start took the slots of).",
	}, []string{"outcome"}),
}

func init() {
	ctrlmetrics.Registry.MustRegister(metrics.podsCreated, metrics.podsRejected, metrics.duplicates, metrics.staleTaskEvents, metrics.podCreateErrors, metrics.limited,
		metrics.joinsSkipped, metrics.joinsTimedOut, metrics.halted)
	for _, o := range []string{"started", "queued", "deferred", "forbidden", "replaced"} {
		metrics.limited.WithLabelValues(o)
	}
}
