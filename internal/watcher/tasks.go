package watcher

import (
	"context"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// reportGrace is how long after a Pod ended this controller leaves the Task's
// state and active Pods to the pod controller's record of the run, which writes
// them too: writing them first would be a second write, and a conflict with the
// record's. Past it (the bus is down, say), this controller writes them itself.
const reportGrace = 5 * time.Second

// taskReconciler keeps a Task's state and active Pods in step with its Pods.
type taskReconciler struct {
	client client.Client
	now    func() time.Time
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
	// A Pod is active until it ended. An ended Pod that keeps the finalizer is
	// being reported: the pod controller is about to record its run, which takes
	// it out of the active Pods in the same write.
	var active, reporting []string
	var wait time.Duration // until the first report is late
	now := r.now()
	for i := range pods.Items {
		p := &pods.Items[i]
		if !metav1.IsControlledBy(p, &task) || !controllerutil.ContainsFinalizer(p, orcav1.FinalizerCompletion) {
			continue
		}
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			active = append(active, p.Name)
		} else if left := reportLeft(p, now); left > 0 {
			reporting = append(reporting, p.Name)
			if wait == 0 || left < wait {
				wait = left
			}
		}
	}
	slices.Sort(active)
	state := stateOf(active)
	st := task.Status
	if st.ObservedGeneration == task.Generation {
		if st.State == state && slices.Equal(st.Active, active) {
			return ctrl.Result{}, nil
		}
		if len(reporting) > 0 {
			if s, a := afterReports(st, reporting); s == state && slices.Equal(a, active) {
				// The records write this; look again if one is late.
				return ctrl.Result{RequeueAfter: wait}, nil
			}
		}
	}
	task.Status.State, task.Status.Active, task.Status.ObservedGeneration = state, active, task.Generation
	err := r.client.Status().Update(ctx, &task)
	if apierrors.IsConflict(err) {
		// The cache is behind a newer status: look again once it caught up.
		return ctrl.Result{Requeue: true}, nil
	}
	return ctrl.Result{}, client.IgnoreNotFound(err)
}

// stateOf is the state of a Task with these active Pods.
func stateOf(active []string) orcav1.TaskState {
	if len(active) > 0 {
		return orcav1.TaskRunning
	}
	return orcav1.TaskPending
}

// reportLeft is how much of reportGrace is left for the report of the ended
// pod: zero when it is over, or when the end time is unknown.
func reportLeft(pod *corev1.Pod, now time.Time) time.Duration {
	end := finishedAt(runContainers(pod), time.Time{})
	if end.IsZero() {
		return 0
	}
	return min(max(end.Add(reportGrace).Sub(now), 0), reportGrace)
}

// afterReports returns the state and sorted active Pods that st will have once
// the runs of the reporting Pods are recorded (a run in the history is already).
func afterReports(st orcav1.TaskStatus, reporting []string) (orcav1.TaskState, []string) {
	state, active := st.State, slices.Clone(st.Active)
	for _, name := range reporting {
		if !slices.ContainsFunc(st.History, func(h orcav1.RunRecord) bool { return h.Pod == name }) {
			active = slices.DeleteFunc(active, func(a string) bool { return a == name })
			state = stateOf(active)
		}
	}
	slices.Sort(active)
	return state, active
}
