package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/sirocco-cloud/orca/internal/admission"
	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// DefaultSlotRepairAfter is Options.SlotRepairAfter's default.
const DefaultSlotRepairAfter = time.Minute

// slotsReconciler keeps the admission state of Tasks right where no event
// does. When a Task's spec changes (parallelism raised, limits removed), the
// waiting starts that now fit start. While Pods hold slots or starts wait, it
// looks again every SlotRepairAfter: a slot held that long by a Pod that is gone,
// or that ended and was reported, is freed (its completion event was lost, or
// dead-lettered), and the waiting starts move up.
type slotsReconciler struct {
	d           *Dispatcher
	repairAfter time.Duration
}

func setupSlots(mgr manager.Manager, d *Dispatcher) error {
	r := &slotsReconciler{d: d, repairAfter: d.opts.SlotRepairAfter}
	return ctrl.ControllerManagedBy(mgr).
		Named("orca-task-slots").
		For(&orcav1.Task{}, ctrl.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{NeedLeaderElection: new(bool), MaxConcurrentReconciles: 4}).
		Complete(r)
}

func (r *slotsReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var task orcav1.Task
	if err := r.d.client.Get(ctx, req.NamespacedName, &task); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	raw, err := r.d.records().Get(ctx, slotsKey(task.UID))
	if err != nil || raw == nil {
		return reconcile.Result{}, err
	}
	var st admission.State
	if err := json.Unmarshal(raw, &st); err != nil {
		st = admission.State{}
	}
	gone, err := r.unheld(ctx, &task, st.HeldSince(time.Now().Add(-r.repairAfter)))
	if err != nil {
		return reconcile.Result{}, err
	}
	for _, pod := range gone {
		r.d.log.Warn("slot freed: its pod is gone or was reported, and no completion event freed it",
			"namespace", task.Namespace, "task", task.Name, "pod", pod)
	}
	err = r.d.changeSlots(ctx, &task, func(st *admission.State) error {
		for _, pod := range gone {
			st.Release(pod)
		}
		return nil
	})
	return reconcile.Result{RequeueAfter: r.repairAfter}, err
}

// unheld returns the holders whose Pods hold their slot no more: gone, or
// ended and reported (without the completion finalizer). A Queued holder is left
// to whoever creates its Pod.
func (r *slotsReconciler) unheld(ctx context.Context, task *orcav1.Task, holders []admission.Holder) ([]string, error) {
	var out []string
	for _, h := range holders {
		if h.Queued {
			continue
		}
		var pod corev1.Pod
		err := r.d.reader.Get(ctx, client.ObjectKey{Namespace: task.Namespace, Name: h.Pod}, &pod)
		switch {
		case apierrors.IsNotFound(err):
			out = append(out, h.Pod)
		case err != nil:
			return nil, fmt.Errorf("get pod %s/%s: %w", task.Namespace, h.Pod, err)
		case pod.Annotations[orcav1.AnnotationTaskUID] != string(task.UID):
			out = append(out, h.Pod) // another Task object's
		case !controllerutil.ContainsFinalizer(&pod, orcav1.FinalizerCompletion) &&
			(pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed):
			out = append(out, h.Pod)
		}
	}
	return out, nil
}
