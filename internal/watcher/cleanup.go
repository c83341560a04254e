package watcher

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// DefaultRemovalGrace is how long after it recorded a Pod in the bus's
// RemovedPods the watcher deletes it: twice bus.RemovedPodsWindow.
const DefaultRemovalGrace = 2 * bus.RemovedPodsWindow

// cleanupReconciler deletes the Pods of a Task's ended runs that its history
// limits or its ttlSecondsAfterFinished no longer keep. It deletes only Pods that
// ended and were reported (their completion event is stored, so they no longer
// hold the completion finalizer), and records each in the bus's RemovedPods
// first, so that a trigger that comes back does not start it again: it deletes
// a Pod a grace (DefaultRemovalGrace) after it recorded it, when no create of
// the dispatcher that checked before the record can come any more. It leaves
// the Task's status alone: the history there outlives the Pods.
type cleanupReconciler struct {
	client  client.Client
	removed removals
	now     func() time.Time
	// grace is how long after recording a Pod it deletes it; default
	// DefaultRemovalGrace.
	grace time.Duration

	mu       sync.Mutex
	recorded map[types.UID]time.Time // when this watcher recorded each Pod
}

// removals records the Pods deleted (bus.RemovedPods).
type removals interface {
	Record(ctx context.Context, parts ...string) error
}

// finished is a run of a Task that ended: its ended, reported Pods (its
// attempts, when spec.retry tried it again), kept or deleted together. A run
// with an attempt that has not ended or was not reported yet, or whose last
// ended attempt was retried, has not ended.
type finished struct {
	pods []*corev1.Pod
	// succeeded, at and last say how, when and in which Pod its last attempt
	// ended.
	succeeded bool
	at        time.Time
	attempt   int32
	last      string
	// why it is deleted: "history" (past its limit) or "ttl".
	why string
}

func (r *cleanupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var task orcav1.Task
	if err := r.client.Get(ctx, req.NamespacedName, &task); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(task.Namespace), client.MatchingFields{indexOwnerTask: task.Name}); err != nil {
		return ctrl.Result{}, err
	}
	now := r.now()
	runs := map[string]*finished{}
	going := map[string]bool{} // runs with an attempt not ended, or not reported
	for i := range pods.Items {
		p := &pods.Items[i]
		if !metav1.IsControlledBy(p, &task) || p.DeletionTimestamp != nil {
			continue
		}
		// The attempts of a run share the event that started it.
		key := p.Name
		if src, id := p.Annotations[orcav1.AnnotationEventSource], p.Annotations[orcav1.AnnotationEventID]; src != "" && id != "" {
			key = src + "\x00" + id
		}
		c, done, _ := classify(p, now)
		if !done || controllerutil.ContainsFinalizer(p, orcav1.FinalizerCompletion) {
			going[key] = true
			continue
		}
		f := runs[key]
		if f == nil {
			f = &finished{}
			runs[key] = f
		}
		f.pods = append(f.pods, p)
		if a := attemptOf(p).number; len(f.pods) == 1 || a > f.attempt {
			f.attempt, f.succeeded, f.at, f.last = a, c.Succeeded, c.FinishedAt, p.Name
		}
	}
	// A run whose last ended attempt was retried waits for its next attempt (the
	// status history says which attempts were retried).
	retried := map[string]bool{}
	for _, h := range task.Status.History {
		if h.Retried {
			retried[h.Pod] = true
		}
	}
	ended := make([]finished, 0, len(runs))
	for key, f := range runs {
		if !going[key] && !retried[f.last] {
			ended = append(ended, *f)
		}
	}
	doomed, next := expired(ended, &task.Spec.TaskHistory, now)
	for _, f := range doomed {
		for _, pod := range f.pods {
			wait, err := r.removePod(ctx, &task, pod, f)
			if err != nil {
				return ctrl.Result{}, err
			}
			if wait > 0 && (next == 0 || wait < next) {
				next = wait
			}
		}
	}
	return ctrl.Result{RequeueAfter: next}, nil
}

// expired returns the runs that history no longer keeps, newest kept first: past
// the limit of their kind (succeeded or failed), or past the TTL. next is when
// the first kept one expires (zero: never).
func expired(ended []finished, history *orcav1.TaskHistory, now time.Time) (doomed []finished, next time.Duration) {
	slices.SortFunc(ended, func(a, b finished) int {
		return cmp.Or(b.at.Compare(a.at), strings.Compare(a.pods[0].Name, b.pods[0].Name))
	})
	kept := map[bool]int{}
	limit := map[bool]int{true: history.SuccessfulLimit(), false: history.FailedLimit()}
	for _, f := range ended {
		if kept[f.succeeded] >= limit[f.succeeded] {
			f.why = "history"
			doomed = append(doomed, f)
			continue
		}
		if ttl := history.TTLSecondsAfterFinished; ttl != nil {
			left := f.at.Add(time.Duration(*ttl) * time.Second).Sub(now)
			if left <= 0 {
				f.why = "ttl"
				doomed = append(doomed, f)
				continue
			}
			if next == 0 || left < next {
				next = left
			}
		}
		kept[f.succeeded]++
	}
	return doomed, next
}

// removePod records the Pod, of the run f, in the ledger of removed Pods, and
// deletes it (that Pod, not one created again under its name) once the grace
// since it recorded it passed. It returns how long until then.
func (r *cleanupReconciler) removePod(ctx context.Context, task *orcav1.Task, pod *corev1.Pod, f finished) (time.Duration, error) {
	grace := cmp.Or(r.grace, DefaultRemovalGrace)
	at, ok := r.recordedAt(pod.UID)
	if !ok {
		if err := r.removed.Record(ctx, string(task.UID), pod.Name); err != nil {
			return 0, fmt.Errorf("record removal of pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		r.record(pod.UID, r.now(), grace)
		return grace, nil
	}
	if left := at.Add(grace).Sub(r.now()); left > 0 {
		return left, nil
	}
	err := r.client.Delete(ctx, pod, client.Preconditions{UID: &pod.UID})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return 0, fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	r.mu.Lock()
	delete(r.recorded, pod.UID)
	r.mu.Unlock()
	if err == nil {
		metrics.cleaned.WithLabelValues(f.why).Inc()
		slog.Debug("pod of an ended run deleted", "namespace", pod.Namespace, "task", task.Name, "pod", pod.Name,
			"succeeded", f.succeeded, "finishedAt", f.at, "reason", f.why)
	}
	return 0, nil
}

// recordedAt returns when this watcher recorded the Pod uid as removed. A
// watcher that restarted records it again, and waits the grace again.
func (r *cleanupReconciler) recordedAt(uid types.UID) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.recorded[uid]
	return at, ok
}

// record notes that the Pod uid was recorded at, and forgets the Pods recorded
// long ago that someone else deleted.
func (r *cleanupReconciler) record(uid types.UID, at time.Time, grace time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recorded == nil {
		r.recorded = map[types.UID]time.Time{}
	}
	for u, t := range r.recorded {
		if at.Sub(t) > 4*grace {
			delete(r.recorded, u)
		}
	}
	r.recorded[uid] = at
}
