package watcher

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// taskReconciler keeps a Task's state and active Pods in step with its Pods.
type taskReconciler struct {
	client client.Client
}

func (r *taskReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var task orcav1.Task
	if err := r.client.Get(ctx, req.NamespacedName, &task); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(task.Namespace), client.MatchingFields{indexOwnerTask: task.Name}); err != nil {
		return ctrl.Result{}, err
	}
	// A Pod is active until it ended and its end is reported (it keeps the
	// finalizer until then). An ended Pod is not active even before that, so that
	// this controller does not write Running back over the watcher's record.
	var active []string
	for i := range pods.Items {
		p := &pods.Items[i]
		ended := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		if metav1.IsControlledBy(p, &task) && controllerutil.ContainsFinalizer(p, orcav1.FinalizerCompletion) && !ended {
			active = append(active, p.Name)
		}
	}
	slices.Sort(active)
	state := orcav1.TaskPending
	if len(active) > 0 {
		state = orcav1.TaskRunning
	}
	st := task.Status
	if st.State == state && slices.Equal(st.Active, active) && st.ObservedGeneration == task.Generation {
		return ctrl.Result{}, nil
	}
	task.Status.State, task.Status.Active, task.Status.ObservedGeneration = state, active, task.Generation
	err := r.client.Status().Update(ctx, &task)
	if apierrors.IsConflict(err) {
		// The cache is behind a newer status: look again once it caught up.
		return ctrl.Result{Requeue: true}, nil
	}
	return ctrl.Result{}, client.IgnoreNotFound(err)
}
