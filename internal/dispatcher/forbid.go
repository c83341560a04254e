package dispatcher

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/sirocco-cloud/orca/internal/admission"
	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// Reasons of the dispatcher's concurrency Events.
const (
	// ReasonForbidden: a start skipped by concurrencyPolicy Forbid (Warning).
	ReasonForbidden = "Forbidden"
	// ReasonReplacing: a start that replaces running Pods (Normal).
	ReasonReplacing = "Replacing"
)

// LedgerForbidden records the starts that concurrencyPolicy Forbid skipped, so
// that a trigger that comes back is not started after all.
const LedgerForbidden = "forbidden"

// reportForbidden makes a skipped start visible: the event orca.task.forbidden
// (the same id when the trigger comes back), and, the first time, a Warning Event
// on the Task and the metric.
func (d *Dispatcher) reportForbidden(ctx context.Context, task *orcav1.Task, s start, pod string, dec admission.Decision, first bool) error {
	f := bus.ForbiddenStart{
		Task: task.Name, Namespace: task.Namespace, TaskUID: string(task.UID), Pod: pod, Run: s.Run,
		Initiator: s.Initiator, TriggerSource: s.EventSource, TriggerID: s.EventID,
		Parallelism: task.Spec.Slots(), Running: dec.Running, Time: time.Now().UTC(),
	}
	if f.Running == nil {
		f.Running = []string{}
	}
	if err := d.bus.PublishForbidden(ctx, SourceDispatcher, f); err != nil {
		return err
	}
	if !first {
		return nil
	}
	metrics.limited.WithLabelValues("forbidden").Inc()
	d.recorder.Eventf(task, nil, corev1.EventTypeWarning, ReasonForbidden, "StartPod",
		"start by %s (run %s) skipped: concurrencyPolicy Forbid and %d of %d pods running: %v",
		s.Initiator, s.Run, len(dec.Running), f.Parallelism, dec.Running)
	d.log.Info("start forbidden: the task runs as many pods as it may", "namespace", task.Namespace, "task", task.Name,
		"pod", pod, "run", s.Run, "initiator", s.Initiator, "running", dec.Running)
	return nil
}
