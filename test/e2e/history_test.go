package e2e_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// historyTask is a Task started by the ignition "go" with the given extra spec
// lines.
func historyTask(name, spec string) string {
	return "apiVersion: sirocco.cloud/v1alpha1\nkind: Task\nmetadata:\n  name: " + name +
		"\nspec:\n  startOnIgnition: [go]\n" + spec +
		"  template:\n    spec:\n      containers:\n      - name: main\n        image: busybox\n"
}

// endAt ends the Pod with exitCode, its containers finished at the given time.
func endAt(t *testing.T, key client.ObjectKey, exitCode int32, at time.Time) {
	t.Helper()
	require.NoError(t, kubelet().End(t.Context(), key, exitCode, "done"))
	require.NoError(t, kubelet().SetStatus(t.Context(), key, func(st *corev1.PodStatus) {
		for i := range st.ContainerStatuses {
			st.ContainerStatuses[i].State.Terminated.FinishedAt = metav1.NewTime(at)
		}
	}))
}

// storedEnds returns the Pods whose task events the stream stored.
func storedEnds(t *testing.T, natsURL string) map[string]bool {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	cons, err := js.OrderedConsumer(t.Context(), bus.DefaultStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"orca.task.>"}})
	require.NoError(t, err)
	seen := map[string]bool{}
	for {
		batch, err := cons.FetchNoWait(100)
		require.NoError(t, err)
		n := 0
		for msg := range batch.Messages() {
			n++
			var r bus.TaskResult
			if json.Unmarshal(msg.Data(), &r) == nil {
				seen[r.Pod] = true
			}
		}
		if n == 0 {
			return seen
		}
	}
}

// startedBy returns the ids of the events that started the Task's Pods.
func startedBy(t *testing.T, ns, task string) []string {
	t.Helper()
	var out []string
	for _, p := range taskPods(t, ns, task) {
		out = append(out, p.Annotations[orcav1.AnnotationEventID])
	}
	return out
}

// gone waits until the Pod no longer exists.
func gone(t *testing.T, key client.ObjectKey) {
	t.Helper()
	err := testenv.Eventually(t.Context(), 20*time.Second, func(ctx context.Context) (bool, error) {
		var p corev1.Pod
		return env.Client.Get(ctx, key, &p) != nil, nil
	})
	require.NoError(t, err, "pod %s is still there", key)
}

func TestHistoryLimitsKeepTheNewestPodsAndLoseNoCompletion(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, historyTask("kept", "  successfulRunsHistoryLimit: 2\n  failedRunsHistoryLimit: 1\n"))
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	startWatcher(t, srv.URL())

	// Five runs end, oldest first: ok, failed, ok, failed, ok.
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i, id := range []string{"h-1", "h-2", "h-3", "h-4", "h-5"} {
		fire(t, srv.URL(), ns, "go", id, "")
		p := waitExists(t, podOf(ns, "kept", id))
		endAt(t, key(p), int32(i%2), base.Add(time.Duration(i)*time.Minute))
		waitFinalizerGone(t, p)
	}
	gone(t, podOf(ns, "kept", "h-1"))
	gone(t, podOf(ns, "kept", "h-2"))
	assert.ElementsMatch(t, []string{"h-3", "h-4", "h-5"}, startedBy(t, ns, "kept"), "the 2 newest succeeded runs and the newest failed one")

	// Every run was reported, the deleted ones too, and the status keeps them all.
	got := storedEnds(t, srv.URL())
	for _, id := range []string{"h-1", "h-2", "h-3", "h-4", "h-5"} {
		assert.True(t, got[podOf(ns, "kept", id).Name], "the end of %s was stored", id)
	}
	tk := waitTask(t, ns, "kept", func(tk *orcav1.Task) bool { return len(tk.Status.History) == 5 })
	assert.Equal(t, int32(0), tk.Status.FailuresCount)
	assert.NotNil(t, tk.Status.LastFailure)
	assert.Equal(t, orcav1.TaskPending, tk.Status.State)

	// The first trigger comes back (a replay): its deleted Pod is not made again.
	fireFrom(t, srv.URL(), ns, "go", "e2e-test", "h-1", "", "replayed h-1")
	consumerSettled(t, srv.URL())
	assert.ElementsMatch(t, []string{"h-3", "h-4", "h-5"}, startedBy(t, ns, "kept"), "a replayed trigger does not run a deleted Pod's start again")
}

func TestTTLDeletesAPodOnlyOnceItsCompletionIsStored(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, historyTask("brief", "  ttlSecondsAfterFinished: 0\n"))
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	startWatcher(t, srv.URL())

	fire(t, srv.URL(), ns, "go", "t-1", "")
	p1 := waitExists(t, podOf(ns, "brief", "t-1"))
	require.NoError(t, kubelet().Succeed(t.Context(), key(p1), "ok"))
	gone(t, key(p1))
	assert.True(t, storedEnds(t, srv.URL())[p1.Name], "deleted after its end was stored")

	// The stream refuses new events: the next Pod's end cannot be stored, so the
	// Pod keeps its finalizer and stays, TTL 0 or not.
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	fire(t, srv.URL(), ns, "go", "t-2", "")
	p2 := waitExists(t, podOf(ns, "brief", "t-2"))
	consumerSettled(t, srv.URL())
	setMaxMsgs := func(n int64) {
		s, err := js.Stream(t.Context(), bus.DefaultStream)
		require.NoError(t, err)
		cfg := s.CachedInfo().Config
		if n == 0 {
			n = int64(s.CachedInfo().State.Msgs)
		}
		cfg.MaxMsgs = n
		_, err = js.UpdateStream(t.Context(), cfg)
		require.NoError(t, err)
	}
	setMaxMsgs(0)
	require.NoError(t, kubelet().Succeed(t.Context(), key(p2), "ok"))
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		var cur corev1.Pod
		require.NoError(t, env.Client.Get(t.Context(), key(p2), &cur))
		require.Nil(t, cur.DeletionTimestamp, "a Pod whose end is not stored is not deleted")
		time.Sleep(100 * time.Millisecond)
	}
	assert.False(t, storedEnds(t, srv.URL())[p2.Name])

	setMaxMsgs(-1)
	gone(t, key(p2))
	assert.True(t, storedEnds(t, srv.URL())[p2.Name], "stored before it was deleted")
	tk := waitTask(t, ns, "brief", func(tk *orcav1.Task) bool { return len(tk.Status.History) == 2 })
	assert.NotNil(t, tk.Status.LastSuccess)
}
