package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/sirocco-cloud/orca/internal/actions"
	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/scheduler"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// joinTasks writes Tasks: "name: startWhen-or-trigger YAML" for each line.
func joinTasks(specs ...string) string {
	var b strings.Builder
	for _, s := range specs {
		name, spec, _ := strings.Cut(s, ": ")
		fmt.Fprintf(&b, `---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: %s
spec:
  %s
  template:
    spec:
      containers:
      - name: main
        image: busybox
`, name, spec)
	}
	return b.String()
}

// startOthers starts the scheduler, the watcher and the actions service, and
// returns a function that starts a dispatcher: with the four, all of Orca runs.
func startOthers(t *testing.T, natsURL string) {
	startService(t, natsURL, "scheduler", func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
		return scheduler.Setup(ctx, mgr, b, scheduler.Options{})
	})
	startWatcher(t, natsURL)
	startService(t, natsURL, "actions", func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
		return actions.Setup(ctx, mgr, b, actions.Options{})
	})
}

// events subscribes to subjects with core NATS.
type events struct {
	mu   sync.Mutex
	msgs []*nats.Msg
}

func collectEvents(t *testing.T, natsURL, subject string) *events {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	ev := &events{}
	_, err = nc.Subscribe(subject, func(m *nats.Msg) {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		ev.msgs = append(ev.msgs, m)
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return ev
}

// wait returns the message on subject in run, waiting for it.
func (ev *events) wait(t *testing.T, subject, run string) *nats.Msg {
	t.Helper()
	var found *nats.Msg
	err := testenv.Eventually(t.Context(), 20*time.Second, func(context.Context) (bool, error) {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		for _, m := range ev.msgs {
			if m.Subject == subject && m.Header.Get("ce-orcarun") == run {
				found = m
				return true, nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "no %s in run %s", subject, run)
	return found
}

// count returns how many messages on subject in run arrived.
func (ev *events) count(subject, run string) int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	n := 0
	for _, m := range ev.msgs {
		if m.Subject == subject && m.Header.Get("ce-orcarun") == run {
			n++
		}
	}
	return n
}

// runPods returns the Pods of task in run.
func runPods(t *testing.T, ns, task, run string) []corev1.Pod {
	t.Helper()
	var out []corev1.Pod
	for _, p := range taskPods(t, ns, task) {
		if p.Annotations[orcav1.AnnotationRun] == run {
			out = append(out, p)
		}
	}
	return out
}

// waitRunPod waits for the one Pod of task in run.
func waitRunPod(t *testing.T, ns, task, run string) corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	err := testenv.Eventually(t.Context(), 20*time.Second, func(context.Context) (bool, error) {
		pods = runPods(t, ns, task, run)
		return len(pods) > 0, nil
	})
	require.NoError(t, err, "no pod of %s in run %s", task, run)
	require.Len(t, pods, 1, "one pod of %s in run %s", task, run)
	return pods[0]
}

func inputsOf(t *testing.T, p corev1.Pod) map[string]map[string]any {
	t.Helper()
	var in map[string]map[string]any
	require.NoError(t, json.Unmarshal([]byte(envOf(p.Spec.Containers[0])["ORCA_INPUTS"]), &in), p.Name)
	return in
}

func skippedData(t *testing.T, m *nats.Msg) bus.TaskResult {
	t.Helper()
	assert.Equal(t, bus.TypeTaskSkipped, m.Header.Get("ce-type"))
	assert.Equal(t, dispatcher.SourceDispatcher, m.Header.Get("ce-source"))
	var r bus.TaskResult
	require.NoError(t, json.Unmarshal(m.Data, &r))
	return r
}

// TestJoinsAndOrNot runs an AND, an OR and a NOT over two Tasks through the four
// services, in two runs: the OR starts on the first success without waiting for
// the other, the AND is skipped on the first failure, the NOT follows a.
func TestJoinsAndOrNot(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	startOthers(t, srv.URL())
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	skips := collectEvents(t, srv.URL(), "orca.task.skipped.>")
	apply(t, ns, joinTasks(
		"a: startOnIgnition: [go]",
		"b: startOnIgnition: [go]",
		"both: startWhen: {condition: a.succeeded && b.succeeded}",
		"either: startWhen: {anySucceeded: [a, b]}",
		"unless-a-failed: startWhen: {condition: '!a.failed'}",
	))

	// Run 1: a succeeds, then b fails.
	fire(t, srv.URL(), ns, "go", "r1", "")
	require.NoError(t, kubelet().Succeed(t.Context(), key(waitRunPod(t, ns, "a", "r1")), "from a"))
	either := waitRunPod(t, ns, "either", "r1")
	assert.Equal(t, "a", envOf(either.Spec.Containers[0])["ORCA_INITIATOR"], "a's success alone starts the OR")
	assert.Equal(t, "from a", envOf(either.Spec.Containers[0])["ORCA_DATA"])
	assert.Equal(t, "r1", envOf(either.Spec.Containers[0])["ORCA_RUN"])
	assert.Equal(t, map[string]map[string]any{"a": {"result": "succeeded", "message": "from a"}}, inputsOf(t, either))
	waitRunPod(t, ns, "unless-a-failed", "r1")
	consumerSettled(t, srv.URL())
	assert.Empty(t, runPods(t, ns, "both", "r1"), "the AND waits for b")

	require.NoError(t, kubelet().End(t.Context(), key(waitRunPod(t, ns, "b", "r1")), 3, "b broke"))
	r := skippedData(t, skips.wait(t, "orca.task.skipped."+ns+".both", "r1"))
	assert.Equal(t, "ConditionFalse", r.Reason)
	assert.Equal(t, "the condition is false: a succeeded, b failed", r.Message)
	assert.Equal(t, "r1", r.Run)
	consumerSettled(t, srv.URL())
	assert.Empty(t, runPods(t, ns, "both", "r1"))
	assert.Len(t, runPods(t, ns, "either", "r1"), 1, "b's end starts no second OR")

	// Run 2: a fails: the AND and the NOT are skipped at once, the OR waits for b.
	fire(t, srv.URL(), ns, "go", "r2", "")
	require.NoError(t, kubelet().End(t.Context(), key(waitRunPod(t, ns, "a", "r2")), 1, "a broke"))
	skips.wait(t, "orca.task.skipped."+ns+".both", "r2")
	skips.wait(t, "orca.task.skipped."+ns+".unless-a-failed", "r2")
	consumerSettled(t, srv.URL())
	assert.Empty(t, runPods(t, ns, "either", "r2"))
	require.NoError(t, kubelet().Succeed(t.Context(), key(waitRunPod(t, ns, "b", "r2")), "from b"))
	either = waitRunPod(t, ns, "either", "r2")
	assert.Equal(t, "b", envOf(either.Spec.Containers[0])["ORCA_INITIATOR"])
	assert.Equal(t, map[string]map[string]any{
		"a": {"result": "failed", "message": "a broke", "exitCode": float64(1), "reason": "Error"},
		"b": {"result": "succeeded", "message": "from b"},
	}, inputsOf(t, either))
	assert.Empty(t, runPods(t, ns, "unless-a-failed", "r2"))

	for _, p := range append(runPods(t, ns, "either", "r1"), either) {
		require.NoError(t, kubelet().Succeed(t.Context(), key(p), "done"))
	}
	tk := waitTask(t, ns, "either", func(tk *orcav1.Task) bool { return tk.Status.LastSuccess != nil })
	assert.True(t, meta.IsStatusConditionTrue(tk.Status.Conditions, dispatcher.ConditionStartWhenValid))
	assert.Equal(t, 1, skips.count("orca.task.skipped."+ns+".both", "r1"), "one skip per run")
}

// TestJoinDiamondStartsDOncePerRunAndRunsNeverMix runs a diamond (a -> b, a -> c,
// b AND c -> d) twice at once, with the results of the two runs interleaved.
func TestJoinDiamondStartsDOncePerRunAndRunsNeverMix(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	startOthers(t, srv.URL())
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	apply(t, ns, joinTasks(
		"a: startOnIgnition: [go]",
		"b: startOnSuccess: [a]",
		"c: startOnSuccess: [a]",
		"d: startWhen: {allSucceeded: [b, c]}",
	))
	fire(t, srv.URL(), ns, "go", "r1", "")
	fire(t, srv.URL(), ns, "go", "r2", "")
	for _, run := range []string{"r1", "r2"} {
		require.NoError(t, kubelet().Succeed(t.Context(), key(waitRunPod(t, ns, "a", run)), "a "+run))
	}
	end := func(task, run string) {
		require.NoError(t, kubelet().Succeed(t.Context(), key(waitRunPod(t, ns, task, run)), task+" "+run))
	}
	end("b", "r1")
	end("c", "r2")
	consumerSettled(t, srv.URL())
	assert.Empty(t, runPods(t, ns, "d", "r1"))
	assert.Empty(t, runPods(t, ns, "d", "r2"), "r1's b and r2's c make no join")
	tk := waitTask(t, ns, "d", func(tk *orcav1.Task) bool { return tk.Status.Join != nil && tk.Status.Join.Waiting == 2 })
	assert.Contains(t, []string{"r1", "r2"}, tk.Status.Join.OldestRun)
	assert.NotNil(t, tk.Status.Join.OldestSince)

	end("c", "r1")
	d1 := waitRunPod(t, ns, "d", "r1")
	assert.Equal(t, map[string]map[string]any{"b": {"result": "succeeded", "message": "b r1"}, "c": {"result": "succeeded", "message": "c r1"}}, inputsOf(t, d1))
	assert.Equal(t, "c r1", envOf(d1.Spec.Containers[0])["ORCA_DATA"])
	tk = waitTask(t, ns, "d", func(tk *orcav1.Task) bool { return tk.Status.Join != nil && tk.Status.Join.Waiting == 1 })
	assert.Equal(t, "r2", tk.Status.Join.OldestRun)

	end("b", "r2")
	d2 := waitRunPod(t, ns, "d", "r2")
	assert.Equal(t, map[string]map[string]any{"b": {"result": "succeeded", "message": "b r2"}, "c": {"result": "succeeded", "message": "c r2"}}, inputsOf(t, d2))
	waitTask(t, ns, "d", func(tk *orcav1.Task) bool { return tk.Status.Join != nil && tk.Status.Join.Waiting == 0 })
	consumerSettled(t, srv.URL())
	assert.Len(t, taskPods(t, ns, "d"), 2, "one d per run")
}

// TestJoinSkipsPropagateThroughTwoLevels: a fails, so b (a.succeeded) is skipped,
// so c (b.succeeded) is skipped, and d (c.skipped) starts.
func TestJoinSkipsPropagateThroughTwoLevels(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	startOthers(t, srv.URL())
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	skips := collectEvents(t, srv.URL(), "orca.task.skipped.>")
	apply(t, ns, joinTasks(
		"a: startOnIgnition: [go]",
		"b: startWhen: {condition: a.succeeded}",
		"c: startWhen: {allSucceeded: [b]}",
		"d: startWhen: {condition: c.skipped}",
	))
	fire(t, srv.URL(), ns, "go", "r1", "")
	require.NoError(t, kubelet().End(t.Context(), key(waitRunPod(t, ns, "a", "r1")), 2, "no"))
	assert.Equal(t, "the condition is false: a failed", skippedData(t, skips.wait(t, "orca.task.skipped."+ns+".b", "r1")).Message)
	assert.Equal(t, "the condition is false: b skipped", skippedData(t, skips.wait(t, "orca.task.skipped."+ns+".c", "r1")).Message)
	d := waitRunPod(t, ns, "d", "r1")
	assert.Equal(t, "c", envOf(d.Spec.Containers[0])["ORCA_INITIATOR"])
	assert.Equal(t, map[string]map[string]any{"c": {"result": "skipped", "message": "the condition is false: b skipped", "reason": "ConditionFalse"}}, inputsOf(t, d))
	consumerSettled(t, srv.URL())
	assert.Empty(t, taskPods(t, ns, "b"))
	assert.Empty(t, taskPods(t, ns, "c"))
}

// TestJoinTimeoutsSkipFailOrStart: b never ends, and each join times out 2s after
// a's result with its policy.
func TestJoinTimeoutsSkipFailOrStart(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	startOthers(t, srv.URL())
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	skips := collectEvents(t, srv.URL(), "orca.task.>")
	apply(t, ns, joinTasks(
		"a: startOnIgnition: [go]",
		"b: startOnIgnition: [go]",
		"skip-on-timeout: startWhen: {allSucceeded: [a, b], timeout: 2s}",
		"fail-on-timeout: startWhen: {allSucceeded: [a, b], timeout: 2s, onTimeout: Fail}",
		"start-on-timeout: startWhen: {allSucceeded: [a, b], timeout: 2s, onTimeout: Start}",
		"after-failure: startOnFailure: [fail-on-timeout]",
	))
	fire(t, srv.URL(), ns, "go", "r1", "")
	ended := time.Now()
	require.NoError(t, kubelet().Succeed(t.Context(), key(waitRunPod(t, ns, "a", "r1")), "from a"))

	r := skippedData(t, skips.wait(t, "orca.task.skipped."+ns+".skip-on-timeout", "r1"))
	assert.GreaterOrEqual(t, time.Since(ended), 2*time.Second, "not before the timeout")
	assert.Equal(t, "JoinTimedOut", r.Reason)
	assert.Equal(t, "no decision within 2s of the first result: a succeeded, b not reported", r.Message)

	m := skips.wait(t, "orca.task.failed."+ns+".fail-on-timeout", "r1")
	assert.Equal(t, dispatcher.SourceDispatcher, m.Header.Get("ce-source"))
	after := waitRunPod(t, ns, "after-failure", "r1")
	assert.Equal(t, "fail-on-timeout", envOf(after.Spec.Containers[0])["ORCA_INITIATOR"], "a timeout that fails starts what follows a failure")

	started := waitRunPod(t, ns, "start-on-timeout", "r1")
	assert.Equal(t, "a", envOf(started.Spec.Containers[0])["ORCA_INITIATOR"])
	assert.Equal(t, map[string]map[string]any{"a": {"result": "succeeded", "message": "from a"}}, inputsOf(t, started))

	var evs eventsv1.EventList
	err := testenv.Eventually(t.Context(), 10*time.Second, func(ctx context.Context) (bool, error) {
		err := env.Client.List(ctx, &evs, client.InNamespace(ns))
		n := 0
		for _, e := range evs.Items {
			if e.Reason == dispatcher.ReasonJoinTimedOut && e.Type == corev1.EventTypeWarning {
				n++
			}
		}
		return n == 3, err
	})
	require.NoError(t, err, "a Warning Event for each timeout")

	// b's late result changes nothing.
	require.NoError(t, kubelet().Succeed(t.Context(), key(waitRunPod(t, ns, "b", "r1")), "late"))
	waitTask(t, ns, "b", func(tk *orcav1.Task) bool { return tk.Status.LastSuccess != nil })
	consumerSettled(t, srv.URL())
	assert.Empty(t, runPods(t, ns, "skip-on-timeout", "r1"))
	assert.Empty(t, runPods(t, ns, "fail-on-timeout", "r1"))
	assert.Len(t, runPods(t, ns, "start-on-timeout", "r1"), 1)
	assert.Equal(t, 1, skips.count("orca.task.skipped."+ns+".skip-on-timeout", "r1"))
}

// TestJoinSurvivesDispatcherRestarts stops the dispatcher between the two results
// of a run, and kills one between creating the join's Pod and acknowledging the
// event: the join starts once, and never again in that run.
func TestJoinSurvivesDispatcherRestarts(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	startOthers(t, srv.URL())
	first := startDispatcher(t, srv.URL(), dispatcher.Options{})
	apply(t, ns, joinTasks(
		"a: startOnIgnition: [go]",
		"b: startOnIgnition: [go]",
		"d: startWhen: {allSucceeded: [a, b]}",
	))
	fire(t, srv.URL(), ns, "go", "r1", "")
	require.NoError(t, kubelet().Succeed(t.Context(), key(waitRunPod(t, ns, "a", "r1")), "from a"))
	waitTask(t, ns, "d", func(tk *orcav1.Task) bool { return tk.Status.Join != nil && tk.Status.Join.Waiting == 1 })
	first.stop()

	// A dispatcher that dies after creating d's Pod, before the ack.
	var once sync.Once
	var second *service
	killed := make(chan struct{})
	second = startDispatcher(t, srv.URL(), dispatcher.Options{
		Consumer: bus.ConsumerOptions{AckWait: time.Second},
		AfterCreate: func(p *corev1.Pod) {
			if p.Annotations[orcav1.AnnotationTask] == "d" {
				once.Do(func() { second.bus.Conn().Close(); close(killed) })
			}
		},
	})
	require.NoError(t, kubelet().Succeed(t.Context(), key(waitRunPod(t, ns, "b", "r1")), "from b"))
	<-killed
	second.stop()
	d := waitRunPod(t, ns, "d", "r1")
	assert.Equal(t, map[string]map[string]any{"a": {"result": "succeeded", "message": "from a"}, "b": {"result": "succeeded", "message": "from b"}}, inputsOf(t, d),
		"a's result outlived the dispatcher that recorded it")

	startDispatcher(t, srv.URL(), dispatcher.Options{Consumer: bus.ConsumerOptions{AckWait: time.Second}})
	consumerSettled(t, srv.URL())
	waitTask(t, ns, "d", func(tk *orcav1.Task) bool { return tk.Status.Join != nil && tk.Status.Join.Waiting == 0 })
	assert.Len(t, runPods(t, ns, "d", "r1"), 1, "the redelivered event found the Pod")

	// With its Pod gone, a later result of the run (a retry of b, say) starts no
	// second d: the run's decision was recorded as carried out.
	require.NoError(t, kubelet().Succeed(t.Context(), key(d), "d done"))
	waitFinalizerGone(t, d)
	require.NoError(t, env.Client.Delete(t.Context(), &d))
	b := waitRunPod(t, ns, "b", "r1")
	pub := startService(t, srv.URL(), "republisher", func(context.Context, manager.Manager, *bus.Bus) error { return nil })
	require.NoError(t, pub.bus.PublishTaskEvent(t.Context(), bus.TaskEvent{ID: "b-retry", Source: "e2e-test", Succeeded: true,
		Result: bus.TaskResult{Task: "b", Namespace: ns, TaskUID: b.Annotations[orcav1.AnnotationTaskUID], Run: "r1", Message: "again"}}))
	consumerSettled(t, srv.URL())
	assert.Empty(t, runPods(t, ns, "d", "r1"))
}

// TestJoinConditionsAreCheckedWhenApplied: a condition that does not compile, or
// names a Task the namespace lacks, shows in the Task's condition and a Warning
// Event; applying the missing Task makes it valid.
func TestJoinConditionsAreCheckedWhenApplied(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	apply(t, ns, joinTasks(
		"a: startOnIgnition: [go]",
		"typo: startWhen: {condition: a.succeded}",
		"itself: startWhen: {condition: a.succeeded || itself.failed}",
		"later: startWhen: {condition: a.succeeded && load_data.succeeded}",
	))
	cond := func(name, reason, msg string) {
		t.Helper()
		tk := waitTask(t, ns, name, func(tk *orcav1.Task) bool {
			c := meta.FindStatusCondition(tk.Status.Conditions, dispatcher.ConditionStartWhenValid)
			return c != nil && c.Reason == reason
		})
		c := meta.FindStatusCondition(tk.Status.Conditions, dispatcher.ConditionStartWhenValid)
		assert.Contains(t, c.Message, msg)
	}
	cond("typo", dispatcher.ReasonInvalidCondition, "undefined field 'succeded'")
	cond("itself", dispatcher.ReasonInvalidCondition, "names the Task itself")
	cond("later", dispatcher.ReasonUnknownTask, "names load-data: no such Task in namespace "+ns)

	var evs eventsv1.EventList
	err := testenv.Eventually(t.Context(), 10*time.Second, func(ctx context.Context) (bool, error) {
		err := env.Client.List(ctx, &evs, client.InNamespace(ns))
		seen := map[string]bool{}
		for _, e := range evs.Items {
			if e.Type == corev1.EventTypeWarning {
				seen[e.Regarding.Name+"/"+e.Reason] = true
			}
		}
		return seen["typo/InvalidCondition"] && seen["itself/InvalidCondition"] && seen["later/UnknownTask"], err
	})
	require.NoError(t, err, "a Warning Event for each")

	apply(t, ns, joinTasks("load-data: startOnIgnition: [go]"))
	cond("later", dispatcher.ReasonValid, "AND over a, load-data")
	tk := waitTask(t, ns, "later", func(tk *orcav1.Task) bool { return tk.Status.Join != nil })
	assert.Equal(t, int32(0), tk.Status.Join.Waiting)
}
