package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/telemetry"
)

// historySize is how many ended runs a Task's status keeps.
const historySize = 10

func controllerOptions(o Options) controller.Options {
	return controller.Options{MaxConcurrentReconciles: o.MaxConcurrentReconciles}
}

// podReconciler reports each ended Orca Pod once, then lets it go.
type podReconciler struct {
	client   client.Client
	reader   client.Reader
	bus      *bus.Bus
	recorder recorder.EventRecorder
	now      func() time.Time
}

func (r *podReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, err error) {
	var pod corev1.Pod
	if err := r.client.Get(ctx, req.NamespacedName, &pod); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !controllerutil.ContainsFinalizer(&pod, orcav1.FinalizerCompletion) {
		return ctrl.Result{}, nil // reported already, or not ours to report
	}
	c, ended, wait := classify(&pod, r.now())
	if !ended {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	task := taskOf(&pod)
	ctx, span := startPodEnded(ctx, &pod, task, c)
	defer func() { telemetry.End(span, err) }()
	ev := bus.TaskEvent{ID: string(pod.UID), Source: "orca/watcher", Succeeded: c.Succeeded, Result: bus.TaskResult{
		Task: task, Namespace: pod.Namespace, TaskUID: taskUIDOf(&pod), Pod: pod.Name,
		Run:       pod.Annotations[orcav1.AnnotationRun],
		Initiator: pod.Annotations[orcav1.AnnotationInitiator],
		ExitCode:  c.ExitCode, Message: c.Message, MessageTruncated: c.MessageTruncated, Reason: c.Reason,
		FinishedAt: c.FinishedAt.UTC(),
	}}
	if pod.Status.StartTime != nil {
		started := pod.Status.StartTime.UTC()
		ev.Result.StartedAt = &started
	}
	ev.TraceParent, ev.TraceState = pod.Annotations[orcav1.AnnotationRunTraceParent], pod.Annotations[orcav1.AnnotationRunTraceState]
	if err := r.bus.PublishTaskEvent(ctx, ev); err != nil {
		return ctrl.Result{}, err
	}
	slog.Info("task run ended", "namespace", pod.Namespace, "task", task, "pod", pod.Name,
		"succeeded", c.Succeeded, "exitCode", c.ExitCode, "reason", c.Reason)
	if err := r.record(ctx, &pod, task, c); err != nil {
		return ctrl.Result{}, err
	}
	patch := client.MergeFromWithOptions(pod.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(&pod, orcav1.FinalizerCompletion)
	if err := r.client.Patch(ctx, &pod, patch); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("remove finalizer of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return ctrl.Result{}, nil
}

// taskOf returns the name of the Task that started pod.
func taskOf(pod *corev1.Pod) string {
	if name := pod.Annotations[orcav1.AnnotationTask]; name != "" {
		return name
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		return ref.Name
	}
	return pod.Labels[orcav1.LabelTask]
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

// errTaskReplaced says that the Task of a Pod's name is another object than the
// one that started the Pod: it was deleted and applied again.
var errTaskReplaced = errors.New("the task was deleted and applied again")

// record counts the run in the Task's status once: a Pod already in the history
// was counted by an earlier try. The first try reads the Task from the cache and
// writes with its resourceVersion; when the cache was behind, that write conflicts
// and the next tries read from the API server, so a stale read never counts twice.
func (r *podReconciler) record(ctx context.Context, pod *corev1.Pod, taskName string, c completion) error {
	key := client.ObjectKey{Namespace: pod.Namespace, Name: taskName}
	var task orcav1.Task
	err := r.tryRecord(ctx, key, &task, pod, c, true)
	if apierrors.IsConflict(err) {
		err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
			return r.tryRecord(ctx, key, &task, pod, c, false)
		})
	}
	if apierrors.IsNotFound(err) || errors.Is(err, errTaskReplaced) {
		// The Task that started the Pod is gone: its event is published all the
		// same (with its TaskUID), and nothing is recorded on a namesake.
		slog.Info("run of a deleted task not recorded", "namespace", pod.Namespace, "task", taskName,
			"taskUID", taskUIDOf(pod), "pod", pod.Name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("record run of pod %s in task %s/%s: %w", pod.Name, pod.Namespace, taskName, err)
	}
	if !c.Succeeded {
		r.recorder.Eventf(&task, pod, corev1.EventTypeWarning, "RunFailed", "Run",
			"pod %s failed: %s (exit code %d)", pod.Name, c.Reason, c.ExitCode)
	}
	return nil
}

// tryRecord reads the Task into task, from the cache when cached, and writes the
// run into its status unless it is there already. A Task that the cache has not
// got (yet) is read from the API server, which alone says that it is gone.
func (r *podReconciler) tryRecord(ctx context.Context, key client.ObjectKey, task *orcav1.Task, pod *corev1.Pod, c completion, cached bool) error {
	*task = orcav1.Task{}
	var err error
	if cached {
		err = r.client.Get(ctx, key, task)
	}
	if !cached || apierrors.IsNotFound(err) {
		err = r.reader.Get(ctx, key, task)
	}
	if err != nil {
		return err
	}
	if uid := taskUIDOf(pod); uid != "" && string(task.UID) != uid {
		return errTaskReplaced
	}
	if !countRun(&task.Status, pod, c) {
		return nil
	}
	return r.client.Status().Update(ctx, task)
}

// countRun adds the run of pod to st: the history, the last success or failure,
// the failure count, and the Task's state without the Pod. It returns false, with
// st unchanged, when the history has the Pod already.
func countRun(st *orcav1.TaskStatus, pod *corev1.Pod, c completion) bool {
	if slices.ContainsFunc(st.History, func(h orcav1.RunRecord) bool { return h.Pod == pod.Name }) {
		return false
	}
	finished := metav1.NewTime(c.FinishedAt)
	if c.Succeeded {
		st.LastSuccess, st.FailuresCount = &finished, 0
	} else {
		st.LastFailure = &finished
		st.FailuresCount++
	}
	rec := orcav1.RunRecord{Pod: pod.Name, Run: pod.Annotations[orcav1.AnnotationRun], Succeeded: c.Succeeded,
		ExitCode: c.ExitCode, Reason: c.Reason, FinishedAt: finished}
	st.History = append([]orcav1.RunRecord{rec}, st.History...)[:min(len(st.History)+1, historySize)]
	st.Active = slices.DeleteFunc(st.Active, func(name string) bool { return name == pod.Name })
	st.State = stateOf(st.Active)
	return true
}
