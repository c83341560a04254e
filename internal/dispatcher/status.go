package dispatcher

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// ConditionDispatching says whether the Task's Pods can be created. It is False
// while the API server refuses them: reason InvalidPod for a template it rejects
// (not retried), else the API server's reason (Forbidden for an exceeded quota or
// a terminating namespace, InternalError for a failing admission webhook, ...)
// while the create is retried. It turns True (reason PodCreated) with the next
// Pod created.
const ConditionDispatching = "Dispatching"

// Reasons of ConditionDispatching and of the dispatcher's Events.
const (
	ReasonInvalidPod      = "InvalidPod"
	ReasonPodCreated      = "PodCreated"
	ReasonCreateFailed    = "CreateFailed"
	ReasonFailedCreatePod = "FailedCreatePod"
)

// reportInvalid makes a Pod the API server refused visible on its Task: a Warning
// Event and the Dispatching condition. The event is not retried: the same template
// would be refused again.
func (d *Dispatcher) reportInvalid(ctx context.Context, task *orcav1.Task, pod string, cause error) error {
	msg := fmt.Sprintf("pod %s was refused by the API server: %v", pod, cause)
	d.recorder.Eventf(task, nil, corev1.EventTypeWarning, ReasonInvalidPod, "CreatePod", "%s", msg)
	d.log.Warn("pod refused as invalid", "namespace", task.Namespace, "task", task.Name, "pod", pod, "err", cause)
	_, err := d.setCondition(ctx, task, metav1.ConditionFalse, ReasonInvalidPod, msg)
	return err
}

// reportRetrying makes a create that failed, and will be retried, visible on its
// Task: the Dispatching condition with the API server's reason and message, and a
// Warning Event each time they change. It never fails: the create's own error is
// what the caller returns.
func (d *Dispatcher) reportRetrying(ctx context.Context, task *orcav1.Task, pod string, cause error) {
	reason := string(apierrors.ReasonForError(cause))
	if reason == "" || reason == string(metav1.StatusReasonUnknown) {
		reason = ReasonCreateFailed
	}
	msg := fmt.Sprintf("pod %s could not be created, retrying: %v", pod, cause)
	d.failing.Store(task.UID, struct{}{})
	d.log.Warn("pod create failed, will retry", "namespace", task.Namespace, "task", task.Name, "pod", pod, "reason", reason, "err", cause)
	changed, err := d.setCondition(ctx, task, metav1.ConditionFalse, reason, msg)
	if err != nil {
		d.log.Warn("report failed create", "namespace", task.Namespace, "task", task.Name, "err", err)
	}
	if changed {
		d.recorder.Eventf(task, nil, corev1.EventTypeWarning, ReasonFailedCreatePod, "CreatePod", "%s", msg)
	}
}

// clearFailure turns Dispatching back to True after a failure; it costs no API
// call unless a failure was reported, which is the usual case.
func (d *Dispatcher) clearFailure(ctx context.Context, task *orcav1.Task, pod string) error {
	_, reported := d.failing.LoadAndDelete(task.UID)
	if !reported && !meta.IsStatusConditionFalse(task.Status.Conditions, ConditionDispatching) {
		return nil
	}
	msg := fmt.Sprintf("pod %s was created", pod)
	changed, err := d.setCondition(ctx, task, metav1.ConditionTrue, ReasonPodCreated, msg)
	if changed {
		d.recorder.Eventf(task, nil, corev1.EventTypeNormal, ReasonPodCreated, "CreatePod", "%s: pods are created again", msg)
	}
	return err
}

// setCondition sets the Dispatching condition and reports whether it changed
// (status, reason or message).
func (d *Dispatcher) setCondition(ctx context.Context, task *orcav1.Task, status metav1.ConditionStatus, reason, msg string) (bool, error) {
	changed := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var cur orcav1.Task
		if err := d.client.Get(ctx, client.ObjectKeyFromObject(task), &cur); err != nil {
			return err
		}
		changed = meta.SetStatusCondition(&cur.Status.Conditions, metav1.Condition{
			Type: ConditionDispatching, Status: status, Reason: reason, Message: msg,
			ObservedGeneration: cur.Generation,
		})
		if !changed {
			return nil
		}
		return d.client.Status().Update(ctx, &cur)
	})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("set condition %s of task %s/%s: %w", ConditionDispatching, task.Namespace, task.Name, err)
	}
	return changed, nil
}
