package watcher

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/scheme"
)

var (
	now     = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	theTask = types.NamespacedName{Namespace: "ns", Name: "t"}
)

func testTask(st orcav1.TaskStatus) *orcav1.Task {
	return &orcav1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "t", UID: "task-uid", Generation: 1}, Status: st}
}

// testPod is a Pod of testTask with the finalizer: running, or ended at end
// with exit code code.
func testPod(name string, end time.Time, code int32) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(name + "-uid"),
		Labels:      map[string]string{orcav1.LabelTask: "t"},
		Annotations: map[string]string{orcav1.AnnotationTask: "t", orcav1.AnnotationRun: "run-1", orcav1.AnnotationTaskUID: "task-uid"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: orcav1.GroupVersion.String(), Kind: "Task", Name: "t",
			UID: "task-uid", Controller: ptr.To(true)}},
		Finalizers: []string{orcav1.FinalizerCompletion},
	}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if !end.IsZero() {
		p.Status.Phase = corev1.PodSucceeded
		if code != 0 {
			p.Status.Phase = corev1.PodFailed
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: metav1.NewTime(end)}}}}
	}
	return p
}

func newFake(funcs *interceptor.Funcs, objs ...client.Object) client.WithWatch {
	b := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).
		WithStatusSubresource(&orcav1.Task{}).
		WithIndex(&corev1.Pod{}, indexTask, taskIndex)
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	return b.Build()
}

func at(s int) *metav1.Time { return ptr.To(metav1.NewTime(now.Add(time.Duration(s) * time.Second))) }

func TestTaskStatus(t *testing.T) {
	pending := orcav1.TaskStatus{State: orcav1.TaskPending, ObservedGeneration: 1}
	running := orcav1.TaskStatus{State: orcav1.TaskRunning, Active: []string{"a"}, ObservedGeneration: 1}
	ran := func(pod string, s int, code int32) orcav1.RunRecord {
		r := orcav1.RunRecord{Pod: pod, Run: "run-1", Succeeded: code == 0, ExitCode: code, FinishedAt: *at(s)}
		if code != 0 {
			r.Reason = "Error"
		}
		return r
	}
	var many []*corev1.Pod // 25 runs, the last 5 failed
	var manyHistory []orcav1.RunRecord
	for i := range 25 {
		code := int32(0)
		if i >= 20 {
			code = 1
		}
		name := fmt.Sprintf("p%02d", i)
		many = append(many, testPod(name, at(i-30).Time, code))
		if i >= 15 {
			manyHistory = append([]orcav1.RunRecord{ran(name, i-30, code)}, manyHistory...)
		}
	}
	foreign := testPod("old", now, 1)
	foreign.Annotations[orcav1.AnnotationTaskUID] = "old-uid"
	foreign.OwnerReferences[0].UID = "old-uid"

	tests := []struct {
		name        string
		task        *orcav1.Task // nil: gone
		pods        []*corev1.Pod
		unpublished bool // the pod controller has not published the ended Pods
		conflict    bool // the status write meets a conflict
		want        orcav1.TaskStatus
		writes      int
		released    []string
		requeue     time.Duration
	}{{
		name:   "a new task: Pending",
		task:   testTask(orcav1.TaskStatus{}),
		want:   pending,
		writes: 1,
	}, {
		name: "a new task that reads Pending (the API server's default): no write",
		task: testTask(orcav1.TaskStatus{State: orcav1.TaskPending}),
		want: orcav1.TaskStatus{State: orcav1.TaskPending},
	}, {
		name: "a new generation alone: no write",
		task: testTask(orcav1.TaskStatus{State: orcav1.TaskRunning, Active: []string{"a"}}),
		pods: []*corev1.Pod{testPod("a", time.Time{}, 0)},
		want: orcav1.TaskStatus{State: orcav1.TaskRunning, Active: []string{"a"}},
	}, {
		name:   "a pod starts: Running",
		task:   testTask(pending),
		pods:   []*corev1.Pod{testPod("a", time.Time{}, 0)},
		want:   running,
		writes: 1,
	}, {
		name: "in step: no write",
		task: testTask(running),
		pods: []*corev1.Pod{testPod("a", time.Time{}, 0)},
		want: running,
	}, {
		name:        "the pod ended but is not published: not active, not counted, kept",
		task:        testTask(running),
		pods:        []*corev1.Pod{testPod("a", now, 0)},
		unpublished: true,
		want:        pending,
		writes:      1,
	}, {
		name: "the pod ended and is published: counted, then let go",
		task: testTask(running),
		pods: []*corev1.Pod{testPod("a", now, 0)},
		want: orcav1.TaskStatus{State: orcav1.TaskPending, ObservedGeneration: 1, LastSuccess: at(0),
			History: []orcav1.RunRecord{ran("a", 0, 0)}},
		writes:   1,
		released: []string{"a"},
	}, {
		name: "counted by a write whose pod was not let go: let go, not counted again",
		task: testTask(orcav1.TaskStatus{State: orcav1.TaskPending, ObservedGeneration: 1, LastFailure: at(0), FailuresCount: 1,
			History: []orcav1.RunRecord{ran("a", 0, 2)}}),
		pods: []*corev1.Pod{testPod("a", now, 2)},
		want: orcav1.TaskStatus{State: orcav1.TaskPending, ObservedGeneration: 1, LastFailure: at(0), FailuresCount: 1,
			History: []orcav1.RunRecord{ran("a", 0, 2)}},
		released: []string{"a"},
	}, {
		name: "25 runs: counted ten at a time, oldest first, all let go",
		task: testTask(running),
		pods: many,
		want: orcav1.TaskStatus{State: orcav1.TaskPending, ObservedGeneration: 1, LastSuccess: at(19 - 30),
			LastFailure: at(24 - 30), FailuresCount: 5, History: manyHistory},
		writes:   3,
		released: names(many),
	}, {
		name:     "a pod of a deleted task of the same name: let go, not counted",
		task:     testTask(pending),
		pods:     []*corev1.Pod{foreign},
		want:     pending,
		released: []string{"old"},
	}, {
		name:     "the task is gone: its ended pods are let go",
		pods:     []*corev1.Pod{testPod("a", now, 0)},
		released: []string{"a"},
	}, {
		name:     "a conflict: nothing counted, nothing let go, looked at again",
		task:     testTask(running),
		pods:     []*corev1.Pod{testPod("a", now, 0)},
		conflict: true,
		want:     running,
		requeue:  time.Second,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var objs []client.Object
			if tt.task != nil {
				objs = append(objs, tt.task)
			}
			l := newLedger()
			for _, p := range tt.pods {
				objs = append(objs, p)
				if !tt.unpublished {
					publishEnded(l, p)
				}
			}
			writes := 0
			c := newFake(&interceptor.Funcs{SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
				if tt.conflict {
					return apierrors.NewConflict(schema.GroupResource{Resource: "tasks"}, obj.GetName(), fmt.Errorf("stale"))
				}
				writes++
				return c.SubResource(sub).Update(ctx, obj, opts...)
			}}, objs...)
			r := &taskReconciler{client: c, reader: c, ledger: l, recorder: events.NewFakeRecorder(100), now: func() time.Time { return now }, interval: time.Second,
				budget: flowcontrol.NewFakeAlwaysRateLimiter()}
			res, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: theTask})
			require.NoError(t, err)
			assert.Equal(t, tt.requeue, res.RequeueAfter)
			assert.Equal(t, tt.writes, writes, "status writes")
			var released []string
			for _, p := range tt.pods {
				var cur corev1.Pod
				require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(p), &cur))
				if !controllerutil.ContainsFinalizer(&cur, orcav1.FinalizerCompletion) {
					released = append(released, p.Name)
				}
			}
			assert.ElementsMatch(t, tt.released, released, "pods let go")
			if tt.task == nil {
				return
			}
			var got orcav1.Task
			require.NoError(t, c.Get(t.Context(), theTask, &got))
			assertStatus(t, tt.want, got.Status)
		})
	}
}

func names(pods []*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

// assertStatus compares statuses as the API server stores them.
func assertStatus(t *testing.T, want, got orcav1.TaskStatus) {
	t.Helper()
	w, err := json.Marshal(want)
	require.NoError(t, err)
	g, err := json.Marshal(got)
	require.NoError(t, err)
	assert.JSONEq(t, string(w), string(g))
}

func TestTaskMissingFromTheCacheIsReadFromTheAPIServer(t *testing.T) {
	pod := testPod("a", now, 0)
	server := newFake(nil, testTask(orcav1.TaskStatus{}), pod)
	cache := newFake(nil, pod)
	l := newLedger()
	publishEnded(l, pod)
	r := &taskReconciler{client: interceptor.NewClient(cache, interceptor.Funcs{
		SubResource: func(_ client.WithWatch, sub string) client.SubResourceClient { return server.SubResource(sub) },
	}), reader: server, ledger: l, recorder: events.NewFakeRecorder(10), now: func() time.Time { return now },
		budget: flowcontrol.NewFakeAlwaysRateLimiter()}
	_, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: theTask})
	require.NoError(t, err)
	var got orcav1.Task
	require.NoError(t, server.Get(t.Context(), theTask, &got))
	require.Len(t, got.Status.History, 1, "the run is counted on the task the cache has not got yet")
	assert.Equal(t, "a", got.Status.History[0].Pod)
}

func TestReleaseRemovesOnlyTheFinalizerWhereverItIs(t *testing.T) {
	for _, finalizers := range [][]string{
		{orcav1.FinalizerCompletion},
		{"example.com/other", orcav1.FinalizerCompletion}, // the cache's copy is behind
	} {
		cached := testPod("a", now, 0)
		onServer := cached.DeepCopy()
		onServer.Finalizers = finalizers
		c := newFake(nil, onServer)
		r := &taskReconciler{client: c, ledger: newLedger()}
		require.NoError(t, r.release(t.Context(), theTask, cached))
		var got corev1.Pod
		require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(cached), &got))
		assert.ElementsMatch(t, slices.DeleteFunc(slices.Clone(finalizers), func(f string) bool { return f == orcav1.FinalizerCompletion }),
			got.Finalizers)
		assert.True(t, r.ledger.has(theTask, cached.UID, released))
	}
}

// spent is a budget with no token left: Wait runs during before it returns.
type spent struct {
	flowcontrol.RateLimiter
	during func()
	waits  int
}

func (b *spent) TryAccept() bool { return false }

func (b *spent) Wait(context.Context) error {
	b.waits++
	b.during()
	return nil
}

func TestAWriteThatWaitedForTheBudgetCarriesWhatChangedMeanwhile(t *testing.T) {
	a := testPod("a", time.Time{}, 0)
	c := newFake(nil, testTask(orcav1.TaskStatus{State: orcav1.TaskPending, ObservedGeneration: 1}), a)
	writes := 0
	c = interceptor.NewClient(c, interceptor.Funcs{SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
		writes++
		return c.SubResource(sub).Update(ctx, obj, opts...)
	}})
	budget := &spent{during: func() { require.NoError(t, c.Create(t.Context(), testPod("b", time.Time{}, 0))) }}
	r := &taskReconciler{client: c, reader: c, ledger: newLedger(), recorder: events.NewFakeRecorder(10),
		now: func() time.Time { return now }, budget: budget}
	_, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: theTask})
	require.NoError(t, err)
	assert.Equal(t, 1, budget.waits)
	assert.Equal(t, 1, writes)
	var got orcav1.Task
	require.NoError(t, c.Get(t.Context(), theTask, &got))
	assert.Equal(t, []string{"a", "b"}, got.Status.Active)
}

// publishEnded marks pod published in l, as the pod controller does, when it
// ended.
func publishEnded(l *ledger, pod *corev1.Pod) {
	if c, ended, _ := classify(pod, now); ended {
		l.publish(theTask, pod.UID, c)
	}
}
