package watcher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/flowcontrol"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// taskReconciler keeps a Task's status a view of its Pods: its state and active
// Pods, and the runs of its ended Pods, which it counts once and then lets go
// (removes their finalizer). It runs at most once per interval per Task (see
// coalesce), so one status write covers every change of its Pods in that time,
// and the status writes of all Tasks share a budget (writes a second), so that
// they never crowd out the creates of Pods.
type taskReconciler struct {
	client   client.Client
	reader   client.Reader // uncached
	ledger   *ledger
	recorder recorder.EventRecorder
	now      func() time.Time
	interval time.Duration
	budget   flowcontrol.RateLimiter
}

// taskPods is what the Task's Pods say, sorted out.
type taskPods struct {
	// active names the Task's Pods that have not ended.
	active []string
	// ended are the runs of the Task's Pods that ended and were published, and
	// keep the finalizer, oldest first.
	ended []endedRun
	// foreign are ended, published Pods of another Task object of this name (a
	// deleted one): let go, never counted.
	foreign []*corev1.Pod
}

// view is a Task and what its Pods say, once the runs it counted are let go.
type view struct {
	task orcav1.Task
	gone bool
	pods taskPods
	// fresh are the runs to count, oldest first.
	fresh []endedRun
}

// next returns the status that counts the next runs of v (at most historySize),
// and those runs.
func (v *view) next() (orcav1.TaskStatus, []endedRun) {
	batch := v.fresh[:min(len(v.fresh), historySize)]
	return nextStatus(v.task.Status, v.task.Generation, v.pods.active, batch), batch
}

func (v *view) inStep() bool {
	next, _ := v.next()
	return sameView(next, v.task.Status)
}

// sameView says whether a and b show the same: a status is not written for its
// observedGeneration alone (it goes with the next write), so that a new or
// edited Task costs no write; the API server defaults a new Task's state to
// Pending.
func sameView(a, b orcav1.TaskStatus) bool {
	a.ObservedGeneration, b.ObservedGeneration = 0, 0
	return equality.Semantic.DeepEqual(a, b)
}

func (r *taskReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	v, err := r.look(ctx, req.NamespacedName)
	if err != nil || v.gone || v.inStep() {
		return ctrl.Result{}, err
	}
	if !r.budget.TryAccept() {
		// Over budget: wait for a write, then look again, so that what changed
		// meanwhile goes into the same write.
		if err := r.budget.Wait(ctx); err != nil {
			return ctrl.Result{}, err
		}
		if v, err = r.look(ctx, req.NamespacedName); err != nil || v.gone {
			return ctrl.Result{}, err
		}
	}
	for first := true; ; first = false {
		next, batch := v.next()
		if sameView(next, v.task.Status) {
			return ctrl.Result{}, nil
		}
		if !first {
			if err := r.budget.Wait(ctx); err != nil {
				return ctrl.Result{}, err
			}
		}
		if err := r.write(ctx, &v.task, next); err != nil {
			if apierrors.IsConflict(err) {
				// The cache is behind our last write, or another writer wrote: look
				// again once it caught up.
				return ctrl.Result{RequeueAfter: r.interval}, nil
			}
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		counted := make([]*corev1.Pod, 0, len(batch))
		for _, run := range batch {
			counted = append(counted, run.pod)
			switch c := run.c; {
			case c.Retried:
				r.recorder.Eventf(&v.task, run.pod, corev1.EventTypeWarning, "Retrying", "Run",
					"attempt %d, pod %s, failed: %s (exit code %d); attempt %d starts at %s",
					c.Attempt, run.pod.Name, c.Reason, c.ExitCode, c.Attempt+1, c.RetryAt.UTC().Format(time.RFC3339))
			case !c.Succeeded:
				r.recorder.Eventf(&v.task, run.pod, corev1.EventTypeWarning, "RunFailed", "Run",
					"pod %s failed: %s (exit code %d)%s", run.pod.Name, c.Reason, c.ExitCode, afterAttempts(c.Attempt))
			}
		}
		if err := r.release(ctx, req.NamespacedName, counted...); err != nil {
			return ctrl.Result{}, err
		}
		v.fresh = v.fresh[len(batch):]
	}
}

// look reads the Task and its Pods from the cache, and lets go the ended Pods
// whose runs are not to be counted (another Task's) or were counted already.
func (r *taskReconciler) look(ctx context.Context, key types.NamespacedName) (*view, error) {
	v := &view{}
	err := r.client.Get(ctx, key, &v.task)
	if apierrors.IsNotFound(err) {
		// A Task applied a moment ago may not be in the cache yet: only the API
		// server says that it is gone.
		err = r.reader.Get(ctx, key, &v.task)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	v.gone = err != nil
	var list corev1.PodList
	// The cache's own objects, not copies: they are only read.
	if err := r.client.List(ctx, &list, client.InNamespace(key.Namespace), client.MatchingFields{indexTask: key.Name},
		client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	v.pods = r.sort(key, &v.task, v.gone, list.Items)
	// A run in the history was counted (by an earlier write whose Pods were not
	// all let go): let it go now, before a write pushes it out of the history.
	done := v.pods.foreign
	for _, run := range v.pods.ended {
		if counted(&v.task.Status, run.pod.Name) {
			done = append(done, run.pod)
		} else {
			v.fresh = append(v.fresh, run)
		}
	}
	if err := r.release(ctx, key, done...); err != nil {
		return nil, err
	}
	return v, nil
}

// sort sorts the Pods of the Task named key out; task is that Task unless gone.
// It also tells the ledger which Pods keep the finalizer.
func (r *taskReconciler) sort(key types.NamespacedName, task *orcav1.Task, gone bool, list []corev1.Pod) taskPods {
	var out taskPods
	holding := map[types.UID]bool{}
	now := r.now()
	for i := range list {
		p := &list[i] // keeps the finalizer (see indexTask)
		holding[p.UID] = true
		ours := !gone
		if uid := taskUIDOf(p); uid != "" && uid != string(task.UID) {
			ours = false
		}
		c, published := r.ledger.completionOf(key, p.UID)
		switch {
		case !published:
			// Not published yet: the pod controller hands it over once it is.
			if _, ended, _ := classify(p, now); !ended && ours {
				out.active = append(out.active, p.Name)
			}
		case r.ledger.has(key, p.UID, released):
		case ours:
			out.ended = append(out.ended, endedRun{pod: p, c: c})
		default:
			out.foreign = append(out.foreign, p)
		}
	}
	r.ledger.keep(key, holding)
	slices.SortFunc(out.ended, byEnd)
	return out
}

// write makes next the status of task with one update of the status
// subresource, with the resourceVersion it was read with: a write from a stale
// cache meets a conflict, so a run is never counted on top of a status that
// already has it. (An update costs the API server less than a merge patch of
// the status: it applies a patch to the whole object as JSON, then does all
// that an update does.)
func (r *taskReconciler) write(ctx context.Context, task *orcav1.Task, next orcav1.TaskStatus) error {
	task.Status = next
	if err := r.client.Status().Update(ctx, task); err != nil {
		return fmt.Errorf("write status of task %s/%s: %w", task.Namespace, task.Name, err)
	}
	return nil
}

// releaseParallelism is how many Pods one reconcile lets go at once.
const releaseParallelism = 8

// release removes the completion finalizer of pods: their completion events are
// stored and their runs counted (or not to be counted).
func (r *taskReconciler) release(ctx context.Context, task types.NamespacedName, pods ...*corev1.Pod) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, releaseParallelism)
	)
	for _, p := range pods {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := r.removeFinalizer(ctx, p)
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("remove finalizer of pod %s/%s: %w", p.Namespace, p.Name, err))
				mu.Unlock()
				return
			}
			r.ledger.set(task, p.UID, released)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// removeFinalizer removes the completion finalizer from the Pod p (the cache's
// copy): a strategic merge patch that removes that finalizer wherever it is in
// the list, from only that Pod (its uid), and is harmless when it is gone.
func (r *taskReconciler) removeFinalizer(ctx context.Context, p *corev1.Pod) error {
	target := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}} // p is the cache's
	smp := fmt.Sprintf(`{"metadata":{"uid":%q,"$deleteFromPrimitiveList/finalizers":[%q]}}`, p.UID, orcav1.FinalizerCompletion)
	return r.client.Patch(ctx, target, client.RawPatch(types.StrategicMergePatchType, []byte(smp)))
}
