package dispatcher

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// taskReplaced says whether the task event r belongs to a Task object that is
// gone: deleted, or deleted and applied again under the same name (another uid).
// Such an event starts nothing: the chain belonged to the deleted Task. An event
// without a TaskUID (from an older watcher) is taken as the current Task's.
func (d *Dispatcher) taskReplaced(ctx context.Context, r bus.TaskResult) (bool, error) {
	if r.TaskUID == "" {
		return false, nil
	}
	key := client.ObjectKey{Namespace: r.Namespace, Name: r.Task}
	var task orcav1.Task
	err := d.client.Get(ctx, key, &task, client.UnsafeDisableDeepCopy) // only its uid is read
	if apierrors.IsNotFound(err) {
		// The cache may not have the Task applied again yet: ask the API server.
		err = d.reader.Get(ctx, key, &task)
	}
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return false, fmt.Errorf("get task %s: %w", key, err)
	case string(task.UID) == r.TaskUID:
		return false, nil
	}
	metrics.staleTaskEvents.Inc()
	d.log.Info("event of a deleted task starts nothing", "namespace", r.Namespace, "task", r.Task,
		"taskUID", r.TaskUID, "pod", r.Pod, "run", r.Run)
	return true, nil
}

// dropDuplicate reports an event that met the Pod it would create: this event
// started the Task already (a redelivery, a replay, or a publisher that sent the
// same source and id again), so the Task does not start again.
func (d *Dispatcher) dropDuplicate(task *orcav1.Task, pod string, s start) {
	metrics.duplicates.Inc()
	d.log.Info("duplicate event dropped: it started the task already", "namespace", task.Namespace,
		"task", task.Name, "pod", pod, "source", s.EventSource, "id", s.EventID, "run", s.Run)
}
