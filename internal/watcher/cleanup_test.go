package watcher

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// fakeLedger records entries as "part/part".
type fakeLedger struct {
	mu      sync.Mutex
	entries []string
}

func (l *fakeLedger) Record(_ context.Context, parts ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, strings.Join(parts, "/"))
	return nil
}

func (l *fakeLedger) has(entry string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.entries, entry)
}

// recordedAGraceAgo makes the Pods that r recorded as removed look recorded a
// grace ago, so that its next look deletes them.
func recordedAGraceAgo(r *cleanupReconciler) {
	for uid, at := range r.recorded {
		r.recorded[uid] = at.Add(-DefaultRemovalGrace)
	}
}

// cleanupPod is testPod, with the completion finalizer or without.
func cleanupPod(name string, end time.Time, finalizer bool) *corev1.Pod {
	p := testPod(name, end, 0)
	if !finalizer {
		p.Finalizers = nil
	}
	return p
}

// failedPod is testPod ended with exit code 1 at end.
func failedPod(name string, end time.Time) *corev1.Pod {
	p := cleanupPod(name, end, false)
	p.Status.Phase = corev1.PodFailed
	p.Status.ContainerStatuses[0].State.Terminated.ExitCode = 1
	return p
}

func TestCleanupKeepsTheNewestRunsAndOnlyReportedOnes(t *testing.T) {
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	tests := []struct {
		name    string
		history orcav1.TaskHistory
		deleted []string
		requeue time.Duration
	}{{
		name:    "defaults: 3 succeeded, 1 failed",
		deleted: []string{"r1", "r2", "s1", "f1"},
	}, {
		name:    "limits",
		history: orcav1.TaskHistory{SuccessfulRunsHistoryLimit: new(int32(2)), FailedRunsHistoryLimit: new(int32(0))},
		deleted: []string{"r1", "r2", "s1", "s2", "f1", "f2"},
	}, {
		name:    "a run's failed attempt stays with its run, which succeeded",
		history: orcav1.TaskHistory{SuccessfulRunsHistoryLimit: new(int32(10)), FailedRunsHistoryLimit: new(int32(0))},
		deleted: []string{"f1", "f2"},
	}, {
		name:    "ttl",
		history: orcav1.TaskHistory{TTLSecondsAfterFinished: new(int32(90))},
		deleted: []string{"r1", "r2", "s1", "s2", "s3", "f1"}, // s3 ended 2 minutes ago
		requeue: 30 * time.Second,                             // f2 ended a minute ago
	}, {
		name:    "ttl 0",
		history: orcav1.TaskHistory{TTLSecondsAfterFinished: new(int32(0))},
		deleted: []string{"r1", "r2", "s1", "s2", "s3", "s4", "f1", "f2"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := testTask(orcav1.TaskStatus{})
			task.Spec.TaskHistory = tt.history
			// r1 and r2 are the attempts of one run (spec.retry): kept, or deleted,
			// together, as the run's last attempt says.
			r1, r2 := failedPod("r1", ago(100*time.Minute)), cleanupPod("r2", ago(99*time.Minute), false)
			for i, p := range []*corev1.Pod{r1, r2} {
				p.Annotations[orcav1.AnnotationEventSource], p.Annotations[orcav1.AnnotationEventID] = "src", "id"
				p.Annotations[orcav1.AnnotationAttempt] = strconv.Itoa(i + 1)
			}
			objs := []client.Object{task,
				cleanupPod("s1", ago(4*time.Minute), false), cleanupPod("s2", ago(3*time.Minute), false),
				cleanupPod("s3", ago(2*time.Minute), false), cleanupPod("s4", ago(30*time.Second), false),
				failedPod("f1", ago(5*time.Minute)), failedPod("f2", ago(time.Minute)), r1, r2,
				// Not reported yet (the finalizer), or still running: never deleted.
				cleanupPod("ended-unreported", ago(time.Hour), true), cleanupPod("running", time.Time{}, true),
			}
			removed := &fakeLedger{}
			var deleted []string
			c := newFake(&interceptor.Funcs{Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
				assert.True(t, removed.has("task-uid/"+obj.GetName()), "%s recorded before it is deleted", obj.GetName())
				deleted = append(deleted, obj.GetName())
				return c.Delete(ctx, obj, opts...)
			}}, objs...)
			r := &cleanupReconciler{client: c, removed: removed, now: func() time.Time { return now }}
			// First the Pods are recorded, then, a grace later, deleted.
			res, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(task)})
			require.NoError(t, err)
			assert.Empty(t, deleted)
			assert.Len(t, removed.entries, len(tt.deleted))
			if tt.requeue > 0 {
				assert.Equal(t, min(tt.requeue, DefaultRemovalGrace), res.RequeueAfter)
			} else {
				assert.Equal(t, DefaultRemovalGrace, res.RequeueAfter)
			}
			recordedAGraceAgo(r)
			res, err = r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(task)})
			require.NoError(t, err)
			assert.ElementsMatch(t, tt.deleted, deleted)
			assert.Equal(t, tt.requeue, res.RequeueAfter)

			var left corev1.PodList
			require.NoError(t, c.List(t.Context(), &left))
			assert.Len(t, left.Items, len(objs)-1-len(tt.deleted))
			var after orcav1.Task
			require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(task), &after))
			assert.Equal(t, task.Status, after.Status, "the status is left alone")
		})
	}
}

// A run whose last ended attempt was retried is still going, whether its next
// attempt runs, is not reported yet, or waits for its backoff: its Pods are kept
// whatever the limits and TTL, and it does not count as a failed run.
func TestCleanupKeepsTheAttemptsOfARunStillGoing(t *testing.T) {
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	attempt := func(p *corev1.Pod, id string, n int) *corev1.Pod {
		p.Annotations[orcav1.AnnotationEventSource], p.Annotations[orcav1.AnnotationEventID] = "src", id
		p.Annotations[orcav1.AnnotationAttempt] = strconv.Itoa(n)
		return p
	}
	task := testTask(orcav1.TaskStatus{History: []orcav1.RunRecord{
		{Pod: "waiting-1", Attempt: 1, Retried: true, FinishedAt: metav1.NewTime(ago(time.Minute))},
	}})
	task.Spec.TaskHistory = orcav1.TaskHistory{TTLSecondsAfterFinished: new(int32(0)), FailedRunsHistoryLimit: new(int32(0))}
	objs := []client.Object{task,
		// Attempt 2 runs.
		attempt(failedPod("running-1", ago(3*time.Minute)), "running", 1), attempt(cleanupPod("running-2", time.Time{}, true), "running", 2),
		// Attempt 2 ended but is not reported yet.
		attempt(failedPod("unreported-1", ago(3*time.Minute)), "unreported", 1), attempt(cleanupPod("unreported-2", ago(time.Minute), true), "unreported", 2),
		// Attempt 1 was retried: attempt 2 waits for its backoff.
		attempt(failedPod("waiting-1", ago(time.Minute)), "waiting", 1),
		// A run that ended: deleted.
		attempt(failedPod("ended-1", ago(3*time.Minute)), "ended", 1), attempt(failedPod("ended-2", ago(2*time.Minute)), "ended", 2),
	}
	var deleted []string
	c := newFake(&interceptor.Funcs{Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
		deleted = append(deleted, obj.GetName())
		return c.Delete(ctx, obj, opts...)
	}}, objs...)
	r := &cleanupReconciler{client: c, removed: &fakeLedger{}, now: func() time.Time { return now }}
	for range 2 {
		_, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(task)})
		require.NoError(t, err)
		recordedAGraceAgo(r)
	}
	assert.ElementsMatch(t, []string{"ended-1", "ended-2"}, deleted)
}

// A Pod is deleted only a grace after it was recorded as removed: a dispatcher
// that checked the record just before it was written creates the Pod within
// bus.RemovedPodsWindow, while the Pod still exists (AlreadyExists), and never
// after it was deleted.
func TestCleanupDeletesAPodAGraceAfterRecordingIt(t *testing.T) {
	task := testTask(orcav1.TaskStatus{})
	task.Spec.TaskHistory = orcav1.TaskHistory{TTLSecondsAfterFinished: new(int32(0))}
	c := newFake(nil, task, cleanupPod("old", now.Add(-time.Hour), false))
	removed := &fakeLedger{}
	clock := now
	r := &cleanupReconciler{client: c, removed: removed, now: func() time.Time { return clock }}
	reconcile := func() ctrl.Result {
		res, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(task)})
		require.NoError(t, err)
		return res
	}
	exists := func() bool {
		return c.Get(t.Context(), client.ObjectKey{Namespace: "ns", Name: "old"}, &corev1.Pod{}) == nil
	}

	res := reconcile()
	assert.True(t, removed.has("task-uid/old"), "recorded at once")
	assert.True(t, exists(), "not deleted yet")
	assert.Equal(t, DefaultRemovalGrace, res.RequeueAfter)
	assert.GreaterOrEqual(t, DefaultRemovalGrace, 2*bus.RemovedPodsWindow)

	clock = now.Add(DefaultRemovalGrace - time.Second)
	assert.Equal(t, time.Second, reconcile().RequeueAfter)
	assert.True(t, exists())

	clock = now.Add(DefaultRemovalGrace)
	reconcile()
	assert.False(t, exists(), "deleted a grace after it was recorded")
}
