package dispatcher

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
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

// ranBefore reports whether the start of pod ran before: its trigger came back
// (a redelivery, a replay) after its Pod was created, maybe ended and released
// its slot, or was removed. Such a start is a duplicate: it must not wait for a
// slot (which nothing would free), be forbidden, or replace a running Pod.
func (d *Dispatcher) ranBefore(ctx context.Context, task *orcav1.Task, pod string, s start) (podOutcome, bool, error) {
	exists, err := d.podExists(ctx, task.Namespace, pod)
	if err != nil {
		return podRefused, false, err
	}
	if exists {
		d.dropDuplicate(task, pod, s)
		return podExists, true, nil
	}
	removed, err := d.bus.RemovedPods().Done(ctx, string(task.UID), pod)
	if err != nil {
		return podRefused, false, err
	}
	if removed {
		d.dropDuplicate(task, pod, s)
		return podRemoved, true, nil
	}
	return podCreated, false, nil
}

// promotedElsewhere says what became of a promoted start whose stored start is
// gone: its Pod exists (podExists), or it is lost (podRefused).
func (d *Dispatcher) promotedElsewhere(ctx context.Context, task *orcav1.Task, pod string) (podOutcome, error) {
	exists, err := d.podExists(ctx, task.Namespace, pod)
	if err != nil || exists {
		return podExists, err
	}
	d.log.Error("waiting start lost: its stored start is gone", "namespace", task.Namespace, "task", task.Name, "pod", pod)
	return podRefused, nil
}

// podExists asks the API server whether the Pod exists.
func (d *Dispatcher) podExists(ctx context.Context, ns, name string) (bool, error) {
	err := d.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Pod{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get pod %s/%s: %w", ns, name, err)
	}
	return true, nil
}
