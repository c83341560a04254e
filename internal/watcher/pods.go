package watcher

import (
	"context"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/telemetry"
)

// podReconciler publishes the completion of each ended Orca Pod as soon as it
// sees it: that event starts the next Task, so nothing else comes first. It
// writes nothing to the API server; it hands the Pod to the task status
// controller, which counts the run and lets the Pod go.
type podReconciler struct {
	client client.Client
	reader client.Reader // uncached
	bus    *bus.Bus
	ledger *ledger
	// published receives each Pod once its event is stored.
	published chan<- event.GenericEvent
	now       func() time.Time
}

func (r *podReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, err error) {
	var pod corev1.Pod
	// The cache's own object, not a copy: it is only read.
	if err := r.client.Get(ctx, req.NamespacedName, &pod, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !controllerutil.ContainsFinalizer(&pod, orcav1.FinalizerCompletion) {
		return ctrl.Result{}, nil // reported already, or not ours to report
	}
	task := taskKey(&pod)
	if r.ledger.has(task, pod.UID, published) {
		return ctrl.Result{}, nil
	}
	c, ended, wait := classify(&pod, r.now())
	if !ended {
		var left time.Duration
		if c, ended, left = pastDeadline(&pod, c, r.now()); !ended {
			if wait == 0 || left > 0 && left < wait {
				wait = left
			}
			return ctrl.Result{RequeueAfter: wait}, nil
		}
	}
	ctx, span := startPodEnded(ctx, &pod, task.Name)
	defer func() { telemetry.End(span, err) }()
	plan, err := r.decide(ctx, &pod, &c)
	if err != nil {
		return ctrl.Result{}, err
	}
	describeEnd(span, c)
	if err := r.publish(ctx, &pod, taskEvent(&pod, c), plan); err != nil {
		return ctrl.Result{}, err
	}
	r.ledger.publish(task, pod.UID, c)
	slog.Info("task run ended", "namespace", pod.Namespace, "task", task.Name, "pod", pod.Name,
		"succeeded", c.Succeeded, "exitCode", c.ExitCode, "reason", c.Reason, "attempt", c.Attempt, "retried", c.Retried)
	if c.EndedByDeadline && pod.DeletionTimestamp == nil {
		if err := r.stop(ctx, &pod); err != nil {
			return ctrl.Result{}, err
		}
	}
	select {
	case r.published <- event.GenericEvent{Object: &pod}:
	case <-ctx.Done():
	}
	return ctrl.Result{}, nil
}

// taskEvent is the completion event of pod.
func taskEvent(pod *corev1.Pod, c completion) bus.TaskEvent {
	ev := bus.TaskEvent{ID: string(pod.UID), Source: "orca/watcher", Succeeded: c.Succeeded, Result: bus.TaskResult{
		Task: taskKey(pod).Name, Namespace: pod.Namespace, TaskUID: taskUIDOf(pod), Pod: pod.Name,
		Run:       pod.Annotations[orcav1.AnnotationRun],
		Initiator: pod.Annotations[orcav1.AnnotationInitiator],
		ExitCode:  c.ExitCode, Message: c.Message, MessageTruncated: c.MessageTruncated, Reason: c.Reason,
		FinishedAt: c.FinishedAt.UTC(), Attempt: c.Attempt,
	}}
	if pod.Status.StartTime != nil {
		started := pod.Status.StartTime.UTC()
		ev.Result.StartedAt = &started
	}
	ev.TraceParent, ev.TraceState = pod.Annotations[orcav1.AnnotationRunTraceParent], pod.Annotations[orcav1.AnnotationRunTraceState]
	return ev
}

// taskKey returns the namespace and name of the Task that started pod.
func taskKey(pod *corev1.Pod) types.NamespacedName {
	key := types.NamespacedName{Namespace: pod.Namespace, Name: pod.Annotations[orcav1.AnnotationTask]}
	if key.Name == "" {
		if ref := metav1.GetControllerOf(pod); ref != nil {
			key.Name = ref.Name
		} else {
			key.Name = pod.Labels[orcav1.LabelTask]
		}
	}
	return key
}

// taskUIDOf returns the uid of the Task object that started pod, or "" when the
// Pod does not say (an orphaned Pod of an older dispatcher).
func taskUIDOf(pod *corev1.Pod) string {
	if uid := pod.Annotations[orcav1.AnnotationTaskUID]; uid != "" {
		return uid
	}
	if ref := metav1.GetControllerOf(pod); ref != nil && ref.Kind == "Task" {
		return string(ref.UID)
	}
	return ""
}
