package watcher

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/scheme"
)

var now = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

func testTask(st orcav1.TaskStatus) *orcav1.Task {
	return &orcav1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "t", UID: "task-uid", Generation: 1}, Status: st}
}

// testPod is a Pod of testTask: running, or ended at end (non-zero).
func testPod(name string, end time.Time, finalizer bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name,
		Labels:      map[string]string{orcav1.LabelTask: "t"},
		Annotations: map[string]string{orcav1.AnnotationTask: "t", orcav1.AnnotationRun: "run-1"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: orcav1.GroupVersion.String(), Kind: "Task", Name: "t",
			UID: "task-uid", Controller: ptr.To(true)}},
	}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if finalizer {
		p.Finalizers = []string{orcav1.FinalizerCompletion}
	}
	if !end.IsZero() {
		p.Status.Phase = corev1.PodSucceeded
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(end)}}}}
	}
	return p
}

func newFake(funcs *interceptor.Funcs, objs ...client.Object) client.WithWatch {
	b := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).
		WithStatusSubresource(&orcav1.Task{}).
		WithIndex(&corev1.Pod{}, indexOwnerTask, func(o client.Object) []string {
			if ref := metav1.GetControllerOf(o); ref != nil {
				return []string{ref.Name}
			}
			return nil
		})
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	return b.Build()
}

func TestTaskStatus(t *testing.T) {
	running := orcav1.TaskStatus{State: orcav1.TaskRunning, Active: []string{"a"}, ObservedGeneration: 1}
	pending := orcav1.TaskStatus{State: orcav1.TaskPending, ObservedGeneration: 1}
	tests := []struct {
		name      string
		status    orcav1.TaskStatus
		pods      []*corev1.Pod
		want      orcav1.TaskStatus
		written   bool
		requeueIn time.Duration
	}{{
		name:    "a pod starts: Running",
		status:  pending,
		pods:    []*corev1.Pod{testPod("a", time.Time{}, true)},
		want:    running,
		written: true,
	}, {
		name:   "in step: no write",
		status: running,
		pods:   []*corev1.Pod{testPod("a", time.Time{}, true)},
		want:   running,
	}, {
		name:      "the pod ended and is being reported: the report writes",
		status:    running,
		pods:      []*corev1.Pod{testPod("a", now.Add(-time.Second), true)},
		want:      running,
		requeueIn: reportGrace - time.Second,
	}, {
		name:      "two pods are being reported: looked at again when the first report is late",
		status:    orcav1.TaskStatus{State: orcav1.TaskRunning, Active: []string{"a", "b"}, ObservedGeneration: 1},
		pods:      []*corev1.Pod{testPod("a", now.Add(-time.Second), true), testPod("b", now.Add(-3*time.Second), true)},
		want:      orcav1.TaskStatus{State: orcav1.TaskRunning, Active: []string{"a", "b"}, ObservedGeneration: 1},
		requeueIn: reportGrace - 3*time.Second,
	}, {
		name:    "the report is late: Pending",
		status:  running,
		pods:    []*corev1.Pod{testPod("a", now.Add(-reportGrace-time.Second), true)},
		want:    pending,
		written: true,
	}, {
		name:    "the pod was reported and let go: Pending",
		status:  running,
		pods:    []*corev1.Pod{testPod("a", now.Add(-time.Second), false)},
		want:    pending,
		written: true,
	}, {
		name:   "a pod starts while another is being reported: both in one write",
		status: running,
		pods:   []*corev1.Pod{testPod("a", now.Add(-time.Second), true), testPod("b", time.Time{}, true)},
		want: orcav1.TaskStatus{State: orcav1.TaskRunning, Active: []string{"b"},
			ObservedGeneration: 1},
		written: true,
	}, {
		name:    "a new generation is observed",
		status:  orcav1.TaskStatus{State: orcav1.TaskRunning, Active: []string{"a"}},
		pods:    []*corev1.Pod{testPod("a", now.Add(-time.Second), true)},
		want:    pending,
		written: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := []client.Object{testTask(tt.status)}
			for _, p := range tt.pods {
				objs = append(objs, p)
			}
			writes := 0
			c := newFake(&interceptor.Funcs{SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
				writes++
				return c.SubResource(sub).Update(ctx, obj, opts...)
			}}, objs...)
			r := &taskReconciler{client: c, now: func() time.Time { return now }}
			res, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: "t"}})
			require.NoError(t, err)
			assert.Equal(t, tt.requeueIn, res.RequeueAfter)
			assert.Equal(t, tt.written, writes == 1, "writes: %d", writes)
			var got orcav1.Task
			require.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: "ns", Name: "t"}, &got))
			assert.Equal(t, tt.want, got.Status)
		})
	}
}

func TestRecordCountsOnceFromAStaleCache(t *testing.T) {
	key := client.ObjectKey{Namespace: "ns", Name: "t"}
	pod := testPod("a", now, true)
	c := completion{Succeeded: true, FinishedAt: now}
	server := newFake(nil, testTask(orcav1.TaskStatus{State: orcav1.TaskRunning, Active: []string{"a"}}))
	var stale orcav1.Task
	require.NoError(t, server.Get(t.Context(), key, &stale))

	// An earlier try recorded the run; the cache has not seen that write yet.
	r := &podReconciler{client: server, reader: server}
	require.NoError(t, r.record(t.Context(), pod, "t", c))
	cached := 0
	r.client = interceptor.NewClient(server, interceptor.Funcs{Get: func(ctx context.Context, _ client.WithWatch, _ client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
		cached++
		stale.DeepCopyInto(obj.(*orcav1.Task))
		return nil
	}})
	require.NoError(t, r.record(t.Context(), pod, "t", c))
	assert.Equal(t, 1, cached, "the cache is read on the first try only")

	var got orcav1.Task
	require.NoError(t, server.Get(t.Context(), key, &got))
	require.Len(t, got.Status.History, 1)
	assert.Equal(t, "a", got.Status.History[0].Pod)
	assert.Equal(t, orcav1.TaskPending, got.Status.State)
	assert.Empty(t, got.Status.Active)
	assert.True(t, now.Equal(got.Status.LastSuccess.Time), "last success %v", got.Status.LastSuccess)
}

func TestRecordReadsAMissingTaskFromTheAPIServer(t *testing.T) {
	server := newFake(nil, testTask(orcav1.TaskStatus{}))
	empty := newFake(nil)
	r := &podReconciler{client: interceptor.NewClient(empty, interceptor.Funcs{
		SubResource: func(_ client.WithWatch, sub string) client.SubResourceClient { return server.SubResource(sub) },
	}), reader: server}
	require.NoError(t, r.record(t.Context(), testPod("a", now, true), "t", completion{Succeeded: true, FinishedAt: now}))
	var got orcav1.Task
	require.NoError(t, server.Get(t.Context(), client.ObjectKey{Namespace: "ns", Name: "t"}, &got))
	assert.Len(t, got.Status.History, 1)

	// Gone from both: nothing to record, no error.
	r.reader = empty
	require.NoError(t, r.record(t.Context(), testPod("b", now, true), "t", completion{Succeeded: true, FinishedAt: now}))
}

func TestRecordLeavesANamesakeTaskAlone(t *testing.T) {
	namesake := testTask(orcav1.TaskStatus{})
	namesake.UID = "new-uid" // deleted and applied again; the Pod's Task was task-uid
	server := newFake(nil, namesake)
	r := &podReconciler{client: server, reader: server}
	require.NoError(t, r.record(t.Context(), testPod("a", now, true), "t", completion{FinishedAt: now, ExitCode: 1}))
	var got orcav1.Task
	require.NoError(t, server.Get(t.Context(), client.ObjectKey{Namespace: "ns", Name: "t"}, &got))
	assert.Empty(t, got.Status.History)
	assert.Zero(t, got.Status.FailuresCount)
}
