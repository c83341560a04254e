package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sirocco-cloud/orca/internal/admission"
	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// limitedTask is a Task started by the ignition "go" with the given extra spec
// lines; it keeps the Pods of its runs, so that the tests can count them.
func limitedTask(name, spec string) string {
	return fmt.Sprintf(`apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: %s
spec:
  startOnIgnition: [go]
  successfulRunsHistoryLimit: 100
  failedRunsHistoryLimit: 100
%s  template:
    spec:
      containers:
      - name: main
        image: busybox
`, name, spec)
}

// podOf returns the Pod that the ignition id (fired by fire) starts for task.
func podOf(ns, task, id string) client.ObjectKey {
	return client.ObjectKey{Namespace: ns, Name: dispatcher.PodName(task, "e2e-test", id)}
}

// running returns the Pods of the Task that have not ended.
func running(t *testing.T, ns, task string) []string {
	t.Helper()
	var out []string
	for _, p := range taskPods(t, ns, task) {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			out = append(out, p.Name)
		}
	}
	slices.Sort(out)
	return out
}

// podCap watches a Task's Pods until the test ends and records the most that
// were running at once.
type podCap struct {
	mu  sync.Mutex
	max int
}

func watchCap(t *testing.T, ns, task string) *podCap {
	c := &podCap{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			var pods corev1.PodList
			if env.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{orcav1.LabelTask: task}) == nil {
				n := 0
				for _, p := range pods.Items {
					if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
						n++
					}
				}
				c.mu.Lock()
				c.max = max(c.max, n)
				c.mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

func (c *podCap) most() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max
}

// creations watches the Pods of a Task and returns a func that lists the events
// that started them, in the order the API server created them.
func creations(t *testing.T, ns, task string) func() []string {
	t.Helper()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	require.NoError(t, err)
	w, err := wc.Watch(t.Context(), &corev1.PodList{}, client.InNamespace(ns), client.MatchingLabels{orcav1.LabelTask: task})
	require.NoError(t, err)
	t.Cleanup(w.Stop)
	var (
		mu  sync.Mutex
		ids []string
	)
	go func() {
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Added {
				mu.Lock()
				ids = append(ids, p.Annotations[orcav1.AnnotationEventID])
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(ids)
	}
}

// waitExists waits until the Pod exists and returns it.
func waitExists(t *testing.T, key client.ObjectKey) corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	err := testenv.Eventually(t.Context(), 20*time.Second, func(ctx context.Context) (bool, error) {
		return env.Client.Get(ctx, key, &pod) == nil, nil
	})
	require.NoError(t, err, "pod %s was not created", key)
	return pod
}

// taskEvents returns the Events recorded about a Task, by reason.
func taskEvents(t *testing.T, ns, task string) map[string][]eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	require.NoError(t, env.Client.List(t.Context(), &list, client.InNamespace(ns)))
	out := map[string][]eventsv1.Event{}
	for _, e := range list.Items {
		if e.Regarding.Kind == "Task" && e.Regarding.Name == task {
			out[e.Reason] = append(out[e.Reason], e)
		}
	}
	return out
}

func TestParallelismRunsStartsInArrivalOrderAcrossRestarts(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, limitedTask("limited", "  parallelism: 2\n"))
	cap := watchCap(t, ns, "limited")
	created := creations(t, ns, "limited")
	first := startDispatcher(t, srv.URL(), dispatcher.Options{})
	startWatcher(t, srv.URL())

	ids := []string{"q-1", "q-2", "q-3", "q-4", "q-5", "q-6"}
	for _, id := range ids {
		fire(t, srv.URL(), ns, "go", id, "data "+id)
	}
	waitExists(t, podOf(ns, "limited", "q-1"))
	waitExists(t, podOf(ns, "limited", "q-2"))
	// Every ignition was handled and acknowledged: the waiting starts live in the
	// bus's records, not as unacknowledged messages.
	consumerSettled(t, srv.URL())
	require.Len(t, taskPods(t, ns, "limited"), 2)

	// A restart loses no waiting start.
	first.stop()
	second := startDispatcher(t, srv.URL(), dispatcher.Options{})
	require.NoError(t, kubelet().Succeed(t.Context(), podOf(ns, "limited", "q-1"), "ok"))
	p3 := waitExists(t, podOf(ns, "limited", "q-3"))
	assert.Equal(t, "data q-3", envOf(p3.Spec.Containers[0])[orcav1.EnvData], "the waiting start kept its data")
	assert.Equal(t, "q-3", envOf(p3.Spec.Containers[0])[orcav1.EnvRun])
	require.NoError(t, kubelet().End(t.Context(), podOf(ns, "limited", "q-2"), 3, "failed"))
	waitExists(t, podOf(ns, "limited", "q-4"))

	// A Pod that ends while no dispatcher runs frees its slot when one is back.
	second.stop()
	require.NoError(t, kubelet().Succeed(t.Context(), podOf(ns, "limited", "q-3"), "ok"))
	waitFinalizerGone(t, p3) // reported while the dispatcher is down
	assert.Len(t, taskPods(t, ns, "limited"), 4)
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	waitExists(t, podOf(ns, "limited", "q-5"))
	require.NoError(t, kubelet().Succeed(t.Context(), podOf(ns, "limited", "q-4"), "ok"))
	waitExists(t, podOf(ns, "limited", "q-6"))
	for _, id := range ids[4:] {
		require.NoError(t, kubelet().Succeed(t.Context(), podOf(ns, "limited", id), "ok"))
	}
	waitTask(t, ns, "limited", func(tk *orcav1.Task) bool { return len(tk.Status.History) == 6 })
	consumerSettled(t, srv.URL())

	require.Len(t, taskPods(t, ns, "limited"), 6, "every start ran exactly once")
	assert.Equal(t, ids, created(), "the starts ran in the order their ignitions were stored")
	assert.LessOrEqual(t, cap.most(), 2, "never more than parallelism Pods ran at once")
}

func TestAFanOutDoesNotWaitForATaskAtCapacity(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, limitedTask("narrow", "  parallelism: 1\n"))
	apply(t, ns, limitedTask("wide", ""))
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	startWatcher(t, srv.URL())

	fire(t, srv.URL(), ns, "go", "a-1", "")
	waitExists(t, podOf(ns, "narrow", "a-1"))
	fire(t, srv.URL(), ns, "go", "a-2", "")
	waitExists(t, podOf(ns, "wide", "a-1"))
	waitExists(t, podOf(ns, "wide", "a-2"))
	consumerSettled(t, srv.URL())
	assert.Equal(t, []string{podOf(ns, "narrow", "a-1").Name}, running(t, ns, "narrow"), "narrow waits")

	// Raising the parallelism lets the waiting start run without waiting for a Pod.
	var task orcav1.Task
	require.NoError(t, env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "narrow"}, &task))
	task.Spec.Parallelism = new(int32(2))
	require.NoError(t, env.Client.Update(t.Context(), &task))
	waitExists(t, podOf(ns, "narrow", "a-2"))
	assert.Len(t, taskPods(t, ns, "narrow"), 2)
}

func TestASlotWhosePodVanishedIsFreed(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, limitedTask("one", "  parallelism: 1\n"))
	startDispatcher(t, srv.URL(), dispatcher.Options{SlotRepairAfter: time.Second})
	// No watcher: nothing reports the first Pod's end.
	fire(t, srv.URL(), ns, "go", "v-1", "")
	p1 := waitExists(t, podOf(ns, "one", "v-1"))
	fire(t, srv.URL(), ns, "go", "v-2", "")
	consumerSettled(t, srv.URL())
	assert.Len(t, taskPods(t, ns, "one"), 1)

	// Someone takes the finalizer off and deletes the Pod: no completion event.
	p1.Finalizers = nil
	require.NoError(t, env.Client.Update(t.Context(), &p1))
	require.NoError(t, env.Client.Delete(t.Context(), &p1))
	waitExists(t, podOf(ns, "one", "v-2"))
}

func TestForbidSkipsAStartVisibly(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, limitedTask("exclusive", "  concurrencyPolicy: Forbid\n"))
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	startWatcher(t, srv.URL())
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	forbidden, err := nc.SubscribeSync(bus.SubjectTaskForbidden + ".>")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	before := counterValue(t, "orca_dispatcher_limited_starts_total", map[string]string{"outcome": "forbidden"})

	fire(t, srv.URL(), ns, "go", "f-1", "")
	p1 := waitExists(t, podOf(ns, "exclusive", "f-1"))
	fire(t, srv.URL(), ns, "go", "f-2", "")

	msg, err := forbidden.NextMsg(10 * time.Second)
	require.NoError(t, err, "the skipped start is published")
	assert.Equal(t, "orca.task.forbidden."+ns+".exclusive", msg.Subject)
	assert.Equal(t, bus.TypeTaskForbidden, msg.Header.Get("ce-type"))
	assert.Equal(t, "f-2", msg.Header.Get("ce-orcarun"))
	var f bus.ForbiddenStart
	require.NoError(t, json.Unmarshal(msg.Data, &f))
	assert.Equal(t, podOf(ns, "exclusive", "f-2").Name, f.Pod)
	assert.Equal(t, []string{p1.Name}, f.Running)
	assert.Equal(t, 1, f.Parallelism)
	assert.Equal(t, "go", f.Initiator)
	assert.Equal(t, "f-2", f.TriggerID)
	err = testenv.Eventually(t.Context(), 10*time.Second, func(context.Context) (bool, error) {
		return counterValue(t, "orca_dispatcher_limited_starts_total", map[string]string{"outcome": "forbidden"}) == before+1, nil
	})
	require.NoError(t, err, "the metric counts it")
	err = testenv.Eventually(t.Context(), 10*time.Second, func(context.Context) (bool, error) {
		return len(taskEvents(t, ns, "exclusive")[dispatcher.ReasonForbidden]) == 1, nil
	})
	require.NoError(t, err, "a Warning Event says so")
	ev := taskEvents(t, ns, "exclusive")[dispatcher.ReasonForbidden][0]
	assert.Equal(t, corev1.EventTypeWarning, ev.Type)
	assert.Contains(t, ev.Note, p1.Name)

	// The Pod ends; the skipped trigger comes back (same source and id) and
	// stays skipped, while a new ignition starts the Task.
	require.NoError(t, kubelet().Succeed(t.Context(), key(p1), "ok"))
	waitTask(t, ns, "exclusive", func(tk *orcav1.Task) bool { return len(tk.Status.History) == 1 })
	fireFrom(t, srv.URL(), ns, "go", "e2e-test", "f-2", "", "again f-2")
	fire(t, srv.URL(), ns, "go", "f-3", "")
	waitExists(t, podOf(ns, "exclusive", "f-3"))
	consumerSettled(t, srv.URL())
	assert.Len(t, taskPods(t, ns, "exclusive"), 2, "f-2 never started")
	assert.Len(t, taskEvents(t, ns, "exclusive")[dispatcher.ReasonForbidden], 1)
}

func TestReplaceDeletesTheRunningPodAndReportsItReplaced(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, limitedTask("latest", "  concurrencyPolicy: Replace\n"))
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	startWatcher(t, srv.URL())
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	failed, err := nc.SubscribeSync(bus.SubjectTaskFailed + ".>")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	fire(t, srv.URL(), ns, "go", "r-1", "")
	p1 := waitExists(t, podOf(ns, "latest", "r-1"))
	require.NoError(t, kubelet().Start(t.Context(), key(p1)))
	fire(t, srv.URL(), ns, "go", "r-2", "")
	p2 := waitExists(t, podOf(ns, "latest", "r-2"))
	assert.Equal(t, p1.Name, p2.Annotations[orcav1.AnnotationReplaces])

	msg, err := failed.NextMsg(10 * time.Second)
	require.NoError(t, err, "the replaced Pod's end is reported")
	var res bus.TaskResult
	require.NoError(t, json.Unmarshal(msg.Data, &res))
	assert.Equal(t, p1.Name, res.Pod)
	assert.Equal(t, "Replaced", res.Reason)
	tk := waitTask(t, ns, "latest", func(tk *orcav1.Task) bool { return len(tk.Status.History) == 1 })
	assert.Equal(t, "Replaced", tk.Status.History[0].Reason)
	err = testenv.Eventually(t.Context(), 10*time.Second, func(ctx context.Context) (bool, error) {
		var gone corev1.Pod
		return env.Client.Get(ctx, key(p1), &gone) != nil, nil
	})
	require.NoError(t, err, "the replaced Pod is deleted")
	assert.Equal(t, []string{p2.Name}, running(t, ns, "latest"))
	assert.NotEmpty(t, taskEvents(t, ns, "latest")[dispatcher.ReasonReplacing])
}

// A run holds one slot of its Task across its attempts: a retried attempt
// starts in its run's slot when it is due, before the starts that wait, and
// without waiting for slot repair to free the slot of the failed attempt.
func TestARetriedRunKeepsItsSlot(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, limitedTask("single", "  parallelism: 1\n  retry:\n    limit: 2\n    backoff: {duration: 0s}\n"))
	cap := watchCap(t, ns, "single")
	created := creations(t, ns, "single")
	startDispatcher(t, srv.URL(), dispatcher.Options{}) // slot repair after a minute
	startWatcher(t, srv.URL())

	fire(t, srv.URL(), ns, "go", "k-1", "")
	first := waitExists(t, podOf(ns, "single", "k-1"))
	fire(t, srv.URL(), ns, "go", "k-2", "")
	consumerSettled(t, srv.URL())
	require.NoError(t, kubelet().End(t.Context(), key(first), 1, "boom"))
	second := waitExists(t, client.ObjectKey{Namespace: ns, Name: dispatcher.AttemptPodName("single", "e2e-test", "k-1", 2)})
	assert.Equal(t, "2", second.Annotations[orcav1.AnnotationAttempt])
	assert.Equal(t, []string{second.Name}, running(t, ns, "single"), "k-2 still waits")

	require.NoError(t, kubelet().Succeed(t.Context(), key(second), "ok"))
	next := waitExists(t, podOf(ns, "single", "k-2"))
	require.NoError(t, kubelet().Succeed(t.Context(), key(next), "ok"))
	waitTask(t, ns, "single", func(tk *orcav1.Task) bool { return len(tk.Status.History) == 3 })
	consumerSettled(t, srv.URL())

	assert.Equal(t, []string{"k-1", "k-1", "k-2"}, created(), "the retry went before the waiting start")
	assert.Len(t, taskPods(t, ns, "single"), 3)
	assert.LessOrEqual(t, cap.most(), 1)
}

// A Pod that a later start replaced ends its run: spec.retry does not try it
// again (its retry would replace the Pod that replaced it).
func TestAReplacedRunIsNotRetried(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, limitedTask("newest", "  concurrencyPolicy: Replace\n  retry:\n    limit: 2\n    backoff: {duration: 0s}\n"))
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	startWatcher(t, srv.URL())
	outcomes := subscribe(t, srv.URL(), "orca.task.*."+ns+".newest")

	fire(t, srv.URL(), ns, "go", "n-1", "")
	p1 := waitExists(t, podOf(ns, "newest", "n-1"))
	require.NoError(t, kubelet().Start(t.Context(), key(p1)))
	fire(t, srv.URL(), ns, "go", "n-2", "")
	p2 := waitExists(t, podOf(ns, "newest", "n-2"))

	var r bus.TaskResult
	msg := nextEvent(t, outcomes, &r)
	assert.Equal(t, "orca.task.failed."+ns+".newest", msg.Subject, "the replaced run ends")
	assert.Equal(t, p1.Name, r.Pod)
	assert.Equal(t, "Replaced", r.Reason)
	err := testenv.Eventually(t.Context(), 10*time.Second, func(ctx context.Context) (bool, error) {
		var gone corev1.Pod
		return env.Client.Get(ctx, key(p1), &gone) != nil, nil
	})
	require.NoError(t, err, "the replaced Pod is deleted")
	consumerSettled(t, srv.URL())
	assert.Equal(t, []string{p2.Name}, running(t, ns, "newest"), "nothing replaced the replacer")
	assert.Len(t, taskPods(t, ns, "newest"), 1)
}

// A trigger that comes back after its start ran (a redelivery, a replay) is a
// duplicate for a limited Task too: it neither waits for a slot (and then holds
// one that nothing frees), nor is forbidden, nor replaces a running Pod.
func TestAReplayedStartThatRanTakesNoSlot(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, limitedTask("queued", "  parallelism: 1\n"))
	apply(t, ns, limitedTask("latest", "  concurrencyPolicy: Replace\n"))
	apply(t, ns, limitedTask("exclusive", "  concurrencyPolicy: Forbid\n"))
	tasks := []string{"queued", "latest", "exclusive"}
	startDispatcher(t, srv.URL(), dispatcher.Options{}) // slot repair after a minute
	startWatcher(t, srv.URL())
	forbidden := subscribe(t, srv.URL(), bus.SubjectTaskForbidden+".>")

	fire(t, srv.URL(), ns, "go", "d-1", "")
	for _, task := range tasks {
		p := waitExists(t, podOf(ns, task, "d-1"))
		require.NoError(t, kubelet().Succeed(t.Context(), key(p), "ok"))
		waitFinalizerGone(t, p)
	}
	fire(t, srv.URL(), ns, "go", "d-2", "")
	for _, task := range tasks {
		p := waitExists(t, podOf(ns, task, "d-2"))
		require.NoError(t, kubelet().Start(t.Context(), key(p)))
	}
	consumerSettled(t, srv.URL())

	// d-1 comes back while d-2 runs: nothing happens.
	fireFrom(t, srv.URL(), ns, "go", "e2e-test", "d-1", "", "replayed d-1")
	consumerSettled(t, srv.URL())
	_, err := forbidden.NextMsg(500 * time.Millisecond)
	assert.ErrorIs(t, err, nats.ErrTimeout, "a start that ran is not reported forbidden")
	for _, task := range tasks {
		assert.Equal(t, []string{podOf(ns, task, "d-2").Name}, running(t, ns, task), "%s: d-2 runs on", task)
	}

	// d-2 ends, but latest's: d-3 starts at once in the slot that d-1's replay
	// did not take, and replaces latest's d-2, which still holds its slot.
	for _, task := range []string{"queued", "exclusive"} {
		require.NoError(t, kubelet().Succeed(t.Context(), podOf(ns, task, "d-2"), "ok"))
	}
	fire(t, srv.URL(), ns, "go", "d-3", "")
	for _, task := range tasks {
		waitExists(t, podOf(ns, task, "d-3"))
	}
	gone(t, podOf(ns, "latest", "d-2"))
	for _, task := range tasks {
		assert.Equal(t, []string{podOf(ns, task, "d-3").Name}, running(t, ns, task), task)
	}
}

// Two dispatchers may create the Pods of the same promoted starts at once: the
// one that finds the stored start gone (the other created the Pod, marked it and
// deleted the start) must not free the slot of that running Pod.
func TestAPromotedStartWhosePodAnotherDispatcherMadeKeepsItsSlot(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, limitedTask("single", "  parallelism: 1\n"))
	first := startDispatcher(t, srv.URL(), dispatcher.Options{})
	startWatcher(t, srv.URL())
	fire(t, srv.URL(), ns, "go", "p-1", "")
	p1 := waitExists(t, podOf(ns, "single", "p-1"))
	fire(t, srv.URL(), ns, "go", "p-2", "")
	consumerSettled(t, srv.URL())
	first.stop()

	// What the second dispatcher sees: p-1 ended and freed its slot, p-2 was
	// promoted into it (Queued), while the first dispatcher created p-2's Pod and
	// deleted its stored start (its mark of p-2 as created not seen yet).
	var task orcav1.Task
	require.NoError(t, env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "single"}, &task))
	p2 := p1.DeepCopy()
	p2.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: podOf(ns, "single", "p-2").Name, Labels: p1.Labels,
		Annotations: maps.Clone(p1.Annotations), OwnerReferences: p1.OwnerReferences, Finalizers: p1.Finalizers}
	p2.Annotations[orcav1.AnnotationEventID], p2.Annotations[orcav1.AnnotationRun] = "p-2", "p-2"
	p2.Status = corev1.PodStatus{}
	require.NoError(t, env.Client.Create(t.Context(), p2))
	require.NoError(t, kubelet().Succeed(t.Context(), key(p1), "ok"))
	waitFinalizerGone(t, p1)
	b, err := bus.Connect(t.Context(), bus.Options{URLs: []string{srv.URL()}, Name: t.Name()})
	require.NoError(t, err)
	defer b.Close()
	records := b.Records(dispatcher.RecordsAdmission)
	uid := string(task.UID)
	require.NoError(t, records.Delete(t.Context(), "start."+uid+"."+p2.Name))
	state, err := json.Marshal(admission.State{Task: ns + "/single", Holders: []admission.Holder{{Pod: p2.Name, Since: time.Now(), Queued: true}}})
	require.NoError(t, err)
	require.NoError(t, records.Put(t.Context(), "slots."+uid, state))

	startDispatcher(t, srv.URL(), dispatcher.Options{})
	fire(t, srv.URL(), ns, "go", "p-3", "")
	consumerSettled(t, srv.URL())
	assert.Equal(t, []string{p2.Name}, running(t, ns, "single"), "p-3 waits for p-2's slot")
	require.NoError(t, kubelet().Succeed(t.Context(), key(*p2), "ok"))
	waitExists(t, podOf(ns, "single", "p-3"))
}
