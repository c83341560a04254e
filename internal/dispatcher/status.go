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

// ConditionPodsCreated says whether the Task's last Pod could be created.
const ConditionPodsCreated = "PodsCreated"

// reportInvalid makes a Pod the API server refused visible on its Task: a Warning
// Event and the PodsCreated condition. The event is not retried: the same template
// would be refused again.
func (d *Dispatcher) reportInvalid(ctx context.Context, task *orcav1.Task, pod string, cause error) error {
	msg := fmt.Sprintf("pod %s was refused by the API server: %v", pod, cause)
	d.recorder.Eventf(task, nil, corev1.EventTypeWarning, "InvalidPod", "CreatePod", "%s", msg)
	d.log.Warn("pod refused as invalid", "namespace", task.Namespace, "task", task.Name, "pod", pod, "err", cause)
	return d.setCondition(ctx, task, metav1.ConditionFalse, "InvalidPod", msg)
}

// clearFailure turns PodsCreated back to True after a failure; it costs no API
// call while the condition is not False, which is the usual case.
func (d *Dispatcher) clearFailure(ctx context.Context, task *orcav1.Task) error {
	if !meta.IsStatusConditionFalse(task.Status.Conditions, ConditionPodsCreated) {
		return nil
	}
	return d.setCondition(ctx, task, metav1.ConditionTrue, "Created", "the last pod was created")
}

func (d *Dispatcher) setCondition(ctx context.Context, task *orcav1.Task, status metav1.ConditionStatus, reason, msg string) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var cur orcav1.Task
		if err := d.client.Get(ctx, client.ObjectKeyFromObject(task), &cur); err != nil {
			return err
		}
		changed := meta.SetStatusCondition(&cur.Status.Conditions, metav1.Condition{
			Type: ConditionPodsCreated, Status: status, Reason: reason, Message: msg,
			ObservedGeneration: cur.Generation,
		})
		if !changed {
			return nil
		}
		return d.client.Status().Update(ctx, &cur)
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("set condition %s of task %s/%s: %w", ConditionPodsCreated, task.Namespace, task.Name, err)
	}
	return nil
}
