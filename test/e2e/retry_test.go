package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// startNATSAt starts an embedded nats-server storing in store, on port (0: any).
func startNATSAt(t *testing.T, store string, port int) *bus.Embedded {
	t.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: store, Port: port})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	return srv
}

// retried is a Task that retries twice at once, and two Tasks that its final
// outcome starts.
const retried = `apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: flaky
spec:
  startOnIgnition: [go]
  failureActions: [notify]
  retry:
    limit: 2
    backoff: {duration: 0s}
  template:
    spec:
      containers:
      - name: main
        image: busybox
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: on-failure
spec:
  startOnFailure: [flaky]
  template:
    spec:
      containers:
      - name: main
        image: busybox
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: on-success
spec:
  startOnSuccess: [flaky]
  template:
    spec:
      containers:
      - name: main
        image: busybox
`

// nextEvent returns the next message of sub, decoded.
func nextEvent(t *testing.T, sub *nats.Subscription, data any) *nats.Msg {
	t.Helper()
	msg, err := sub.NextMsg(10 * time.Second)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(msg.Data, data))
	return msg
}

// noEvent checks that sub has no message now: what was published before the last
// event seen was delivered before it.
func noEvent(t *testing.T, sub *nats.Subscription) {
	t.Helper()
	msg, err := sub.NextMsg(200 * time.Millisecond)
	if err == nil {
		t.Errorf("unexpected event on %s: %s", msg.Subject, msg.Data)
	}
}

func attemptEnv(p corev1.Pod) string { return envOf(p.Spec.Containers[0])[orcav1.EnvAttempt] }

// webhook counts the task events POSTed to it.
type webhook struct {
	srv   *httptest.Server
	mu    sync.Mutex
	got   []bus.TaskResult
	types []string
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		var res bus.TaskResult
		_ = json.NewDecoder(r.Body).Decode(&res)
		w.mu.Lock()
		w.got, w.types = append(w.got, res), append(w.types, r.Header.Get("Ce-Type"))
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) calls() ([]bus.TaskResult, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]bus.TaskResult(nil), w.got...), append([]string(nil), w.types...)
}

func TestRetriedTaskPublishesOnlyItsFinalOutcome(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	hook := newWebhook(t)
	startAll(t, srv.URL())
	apply(t, ns, retried+"---\napiVersion: sirocco.cloud/v1alpha1\nkind: Action\nmetadata:\n  name: notify\nspec:\n  webhook:\n    url: "+hook.srv.URL+"\n")
	retrying := subscribe(t, srv.URL(), bus.SubjectTaskRetrying+"."+ns+".>")
	outcomes := subscribe(t, srv.URL(), "orca.task.*."+ns+".flaky")
	successes := subscribe(t, srv.URL(), bus.SubjectTaskSucceeded+"."+ns+".>")

	fire(t, srv.URL(), ns, "go", "retry-1", "the input")
	var pods []corev1.Pod
	for n := 1; n <= 3; n++ {
		p := waitNewPod(t, ns, "flaky", pods...)
		pods = append(pods, p)
		env := envOf(p.Spec.Containers[0])
		assert.Equal(t, "the input", env[orcav1.EnvData], "attempt %d runs with the run's data", n)
		assert.Equal(t, "go", env[orcav1.EnvInitiator])
		assert.Equal(t, "retry-1", env[orcav1.EnvRun])
		assert.Equal(t, string(rune('0'+n)), env[orcav1.EnvAttempt])
		assert.Equal(t, string(rune('0'+n)), p.Annotations[orcav1.AnnotationAttempt])
		require.NoError(t, kubelet().End(t.Context(), key(p), int32(10+n), "attempt failed"))
		if n < 3 {
			var r bus.TaskRetry
			msg := nextEvent(t, retrying, &r)
			assert.Equal(t, bus.TypeTaskRetrying, msg.Header.Get("ce-type"))
			assert.Equal(t, string(p.UID), msg.Header.Get("ce-id"))
			assert.Equal(t, "retry-1", msg.Header.Get("ce-"+bus.ExtensionRun))
			assert.Equal(t, int32(n), r.Attempt)
			assert.Equal(t, int32(n+1), r.NextAttempt)
			assert.Equal(t, int32(n), r.FailedAttempts)
			assert.Equal(t, int32(10+n), r.ExitCode)
			assert.Equal(t, p.Name, r.Pod)
		}
	}
	var final bus.TaskResult
	for _, want := range []string{"retrying", "retrying", "failed"} {
		msg := nextEvent(t, outcomes, &final)
		assert.Equal(t, "orca.task."+want+"."+ns+".flaky", msg.Subject)
	}
	assert.Equal(t, int32(3), final.Attempt)
	assert.Equal(t, int32(13), final.ExitCode)
	assert.Equal(t, pods[2].Name, final.Pod)

	next := waitPods(t, ns, "on-failure", 1)[0]
	assert.Equal(t, "attempt failed", envOf(next.Spec.Containers[0])[orcav1.EnvData])
	assert.Equal(t, "1", attemptEnv(next), "another Task's run starts at its first attempt")
	err := testenv.Eventually(t.Context(), 20*time.Second, func(context.Context) (bool, error) {
		got, _ := hook.calls()
		return len(got) > 0, nil
	})
	require.NoError(t, err, "the failure Action ran")

	tk := waitTask(t, ns, "flaky", func(tk *orcav1.Task) bool { return len(tk.Status.History) == 3 && tk.Status.FailuresCount == 1 })
	for i, h := range tk.Status.History { // newest first
		assert.Equal(t, int32(3-i), h.Attempt)
		assert.Equal(t, i > 0, h.Retried, "attempt %d", h.Attempt)
	}
	settled(t, srv.URL(), "orca-actions")
	settled(t, srv.URL(), "orca-dispatcher")
	noEvent(t, retrying)
	noEvent(t, outcomes)
	noEvent(t, successes)
	got, types := hook.calls()
	require.Len(t, got, 1, "the failure Action ran once, for the final outcome")
	assert.Equal(t, bus.TypeTaskFailed, types[0])
	assert.Equal(t, int32(3), got[0].Attempt)
	assert.Len(t, taskPods(t, ns, "on-failure"), 1)
	assert.Empty(t, taskPods(t, ns, "on-success"))
	assert.Len(t, taskPods(t, ns, "flaky"), 3, "limit 2: three attempts")

	var events eventsv1.EventList
	require.NoError(t, env.Client.List(t.Context(), &events, client.InNamespace(ns)))
	reasons := map[string]int{}
	for _, e := range events.Items {
		if e.Regarding.Name == "flaky" && e.Reason != "ActionSucceeded" {
			reasons[e.Reason] += max(1, int(e.DeprecatedCount))
		}
	}
	assert.Equal(t, map[string]int{"Retrying": 2, "RunFailed": 1}, reasons)
}

func TestRetriedTaskThatSucceedsStartsItsSuccessors(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	startWatcher(t, srv.URL())
	apply(t, ns, retried)
	outcomes := subscribe(t, srv.URL(), "orca.task.*."+ns+".flaky")

	fire(t, srv.URL(), ns, "go", "retry-2", "x")
	first := waitNewPod(t, ns, "flaky")
	// A per-attempt deadline the kubelet enforces: a failure without exit code.
	require.NoError(t, kubelet().SetStatus(t.Context(), key(first), func(st *corev1.PodStatus) {
		st.Phase, st.Reason, st.Message = corev1.PodFailed, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"
	}))
	second := waitNewPod(t, ns, "flaky", first)
	require.NoError(t, kubelet().Succeed(t.Context(), key(second), "fine now"))

	var r bus.TaskResult
	msg := nextEvent(t, outcomes, &r)
	assert.Equal(t, "orca.task.retrying."+ns+".flaky", msg.Subject)
	assert.Equal(t, "DeadlineExceeded", r.Reason)
	assert.Equal(t, int32(-1), r.ExitCode)
	msg = nextEvent(t, outcomes, &r)
	assert.Equal(t, "orca.task.succeeded."+ns+".flaky", msg.Subject)
	assert.Equal(t, int32(2), r.Attempt)
	next := waitPods(t, ns, "on-success", 1)[0]
	assert.Equal(t, "fine now", envOf(next.Spec.Containers[0])[orcav1.EnvData])
	tk := waitTask(t, ns, "flaky", func(tk *orcav1.Task) bool { return tk.Status.LastSuccess != nil })
	assert.Zero(t, tk.Status.FailuresCount, "a retried attempt is not a failed run")
	assert.Nil(t, tk.Status.LastFailure)
	settled(t, srv.URL(), "orca-dispatcher")
	assert.Empty(t, taskPods(t, ns, "on-failure"))
}

// policyTask is a Task named name that starts on ignition "go" with spec lines
// added (indented by two spaces).
func policyTask(name, spec string) string {
	return "apiVersion: sirocco.cloud/v1alpha1\nkind: Task\nmetadata:\n  name: " + name + "\nspec:\n  startOnIgnition: [go]\n" + spec +
		"  template:\n    spec:\n      containers:\n      - name: main\n        image: busybox\n"
}

func TestRetryFollowsExitCodesAndDisruptions(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	startWatcher(t, srv.URL())
	apply(t, ns, policyTask("codes", "  retry:\n    limit: 1\n    backoff: {duration: 0s}\n    onExitCodes: {operator: In, values: [3]}\n"))
	outcomes := subscribe(t, srv.URL(), "orca.task.*."+ns+".codes")

	fire(t, srv.URL(), ns, "go", "codes-1", "")
	first := waitNewPod(t, ns, "codes")
	// Evicted: retried without counting, whatever the exit codes say.
	require.NoError(t, kubelet().SetStatus(t.Context(), key(first), func(st *corev1.PodStatus) {
		st.Phase, st.Reason = corev1.PodFailed, "Evicted"
		st.Conditions = append(st.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
			Reason: "EvictionByEvictionAPI", LastTransitionTime: metav1.Now()})
	}))
	second := waitNewPod(t, ns, "codes", first)
	assert.Equal(t, "2", attemptEnv(second))
	assert.NotContains(t, second.Annotations, orcav1.AnnotationFailedAttempts, "the eviction did not count")
	require.NoError(t, kubelet().End(t.Context(), key(second), 3, ""))
	third := waitNewPod(t, ns, "codes", first, second)
	assert.Equal(t, "1", third.Annotations[orcav1.AnnotationFailedAttempts])
	require.NoError(t, kubelet().End(t.Context(), key(third), 3, ""))

	var r bus.TaskResult
	for _, want := range []string{"retrying", "retrying", "failed"} {
		msg := nextEvent(t, outcomes, &r)
		assert.Equal(t, "orca.task."+want+"."+ns+".codes", msg.Subject)
	}
	assert.Equal(t, int32(3), r.Attempt, "limit 1: one counted retry, and the eviction's")

	// Exit code 1 is not In [3]: the run fails at once.
	fire(t, srv.URL(), ns, "go", "codes-2", "")
	p := waitNewPod(t, ns, "codes", first, second, third)
	require.NoError(t, kubelet().End(t.Context(), key(p), 1, ""))
	msg := nextEvent(t, outcomes, &r)
	assert.Equal(t, "orca.task.failed."+ns+".codes", msg.Subject)
	assert.Equal(t, int32(1), r.Attempt)
	settled(t, srv.URL(), "orca-dispatcher")
	assert.Len(t, taskPods(t, ns, "codes"), 4)
}

// The backoff wait lives in the stream: the dispatcher, the watcher and the NATS
// server all restart during it, and the next attempt still starts at its time,
// not before.
func TestBackoffSurvivesRestartsOfEveryService(t *testing.T) {
	store := t.TempDir()
	srv := startNATSAt(t, store, 0)
	port, err := strconv.Atoi(srv.URL()[strings.LastIndex(srv.URL(), ":")+1:])
	require.NoError(t, err)
	ns := namespace(t)
	d, w := startDispatcher(t, srv.URL(), dispatcher.Options{}), startWatcher(t, srv.URL())
	apply(t, ns, policyTask("patient", "  retry:\n    limit: 1\n    backoff: {duration: 4s}\n"))
	retrying := subscribe(t, srv.URL(), bus.SubjectTaskRetrying+"."+ns+".>")

	fire(t, srv.URL(), ns, "go", "patient-1", "")
	first := waitNewPod(t, ns, "patient")
	require.NoError(t, kubelet().End(t.Context(), key(first), 1, ""))
	var r bus.TaskRetry
	nextEvent(t, retrying, &r)
	assert.WithinDuration(t, time.Now().Add(4*time.Second), r.RetryAt, 2*time.Second)

	d.stop()
	w.stop()
	srv.Shutdown()
	srv = startNATSAt(t, store, port)
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	startWatcher(t, srv.URL())

	second := waitNewPod(t, ns, "patient", first)
	seen := time.Now()
	assert.False(t, seen.Before(r.RetryAt), "attempt 2 started at %s, before its time %s", seen, r.RetryAt)
	assert.WithinDuration(t, r.RetryAt, seen, 3*time.Second, "and not much after it")
	assert.Equal(t, "2", attemptEnv(second))
}

func TestRunDeadlineEndsTheRun(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	startWatcher(t, srv.URL())
	apply(t, ns, policyTask("slow", "  activeDeadlineSeconds: 3\n  retry:\n    limit: 5\n    backoff: {duration: 500ms}\n"))
	apply(t, ns, policyTask("hopeless", "  activeDeadlineSeconds: 5\n  retry:\n    limit: 5\n    backoff: {duration: 10s}\n"))
	outcomes := subscribe(t, srv.URL(), "orca.task.*."+ns+".*")

	fire(t, srv.URL(), ns, "go", "deadline-1", "")
	first := waitNewPod(t, ns, "slow")
	assert.LessOrEqual(t, *first.Spec.ActiveDeadlineSeconds, int64(3), "the kubelet ends the attempt at the run's deadline too")
	require.NoError(t, kubelet().End(t.Context(), key(first), 1, ""))
	second := waitNewPod(t, ns, "slow", first)
	assert.Equal(t, first.Annotations[orcav1.AnnotationDeadline], second.Annotations[orcav1.AnnotationDeadline], "one deadline for the whole run")
	require.NoError(t, kubelet().Start(t.Context(), key(second)))

	// hopeless's first failure would retry after 10s, past its 5s deadline: the run
	// fails at once.
	h := waitNewPod(t, ns, "hopeless")
	require.NoError(t, kubelet().End(t.Context(), key(h), 2, ""))

	got := map[string]bus.TaskResult{}
	for len(got) < 3 {
		var r bus.TaskResult
		msg := nextEvent(t, outcomes, &r)
		got[strings.Join(strings.Split(msg.Subject, ".")[2:4:4], " ")+" "+r.Task] = r
	}
	assert.Contains(t, got, "retrying "+ns+" slow")
	require.Contains(t, got, "failed "+ns+" hopeless")
	assert.Equal(t, orcav1.ReasonDeadlineExceeded, got["failed "+ns+" hopeless"].Reason)
	assert.Equal(t, int32(2), got["failed "+ns+" hopeless"].ExitCode)
	require.Contains(t, got, "failed "+ns+" slow", "the watcher ended the running attempt at the deadline")
	slow := got["failed "+ns+" slow"]
	assert.Equal(t, orcav1.ReasonDeadlineExceeded, slow.Reason)
	assert.Equal(t, int32(2), slow.Attempt)
	deadline, err := time.Parse(time.RFC3339Nano, second.Annotations[orcav1.AnnotationDeadline])
	require.NoError(t, err)
	assert.WithinDuration(t, deadline, slow.FinishedAt, 2*time.Second)

	var p corev1.Pod
	require.NoError(t, env.Client.Get(t.Context(), key(second), &p))
	assert.LessOrEqual(t, *p.Spec.ActiveDeadlineSeconds, int64(time.Since(p.Status.StartTime.Time).Seconds())+1,
		"the Pod is told to stop now: its kubelet ends a Pod active for longer than its activeDeadlineSeconds")
	waitFinalizerGone(t, second)
	tk := waitTask(t, ns, "slow", func(tk *orcav1.Task) bool {
		return tk.Status.FailuresCount == 1 && len(tk.Status.Active) == 0 && tk.Status.State == orcav1.TaskPending
	})
	assert.Equal(t, orcav1.ReasonDeadlineExceeded, tk.Status.History[0].Reason)
}
