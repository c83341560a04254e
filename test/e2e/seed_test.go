package e2e_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/sirocco-cloud/orca/internal/actions"
	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/scheduler"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// startAll starts the four services.
func startAll(t *testing.T, natsURL string) {
	startService(t, natsURL, "scheduler", func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
		return scheduler.Setup(ctx, mgr, b, scheduler.Options{})
	})
	startDispatcher(t, natsURL, dispatcher.Options{})
	startWatcher(t, natsURL)
	startService(t, natsURL, "actions", func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
		// The test's webhook receivers listen on this host, which webhooks may not
		// reach unless allowed.
		return actions.Setup(ctx, mgr, b, actions.Options{Egress: actions.EgressOptions{AllowedCIDRs: actions.LoopbackCIDRs}})
	})
}

// TestSeedWorkflowThroughTheFourServices runs the seed's Ignitor and Tasks, with a
// webhook Action on task1's success, through all four services.
func TestSeedWorkflowThroughTheFourServices(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	hooks := make(chan http.Header, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		hooks <- r.Header.Clone()
	}))
	defer hook.Close()
	startAll(t, srv.URL())

	apply(t, ns, seedTasks)
	apply(t, ns, `apiVersion: sirocco.cloud/v1alpha1
kind: Action
metadata:
  name: notify
spec:
  webhook:
    url: `+hook.URL+`
`)
	_, err := env.KubectlInput(t.Context(), `{"apiVersion":"sirocco.cloud/v1alpha1","kind":"Task","metadata":{"name":"task1"},"spec":{"successActions":["notify"]}}`,
		"patch", "-n", ns, "task", "task1", "--type=merge", "--patch-file=/dev/stdin")
	require.NoError(t, err)
	apply(t, ns, `apiVersion: sirocco.cloud/v1alpha1
kind: Ignitor
metadata:
  name: ignitor1
spec:
  description: Initiate the workflow ABC
  scheduled: "NOW"
  data: "hello from ignitor1"
`)

	task1 := waitNewPod(t, ns, "task1")
	assert.Equal(t, "ignitor1", envOf(task1.Spec.Containers[0])["ORCA_INITIATOR"])
	assert.Equal(t, "hello from ignitor1", envOf(task1.Spec.Containers[0])["ORCA_DATA"])
	require.NoError(t, kubelet().Succeed(t.Context(), key(task1), "42"))

	task2 := waitNewPod(t, ns, "task2")
	assert.Equal(t, "task1", envOf(task2.Spec.Containers[0])["ORCA_INITIATOR"])
	assert.Equal(t, "42", envOf(task2.Spec.Containers[0])["ORCA_DATA"])

	select {
	case h := <-hooks:
		assert.Equal(t, bus.TypeTaskSucceeded, h.Get("Ce-Type"))
		assert.Equal(t, string(task1.UID), h.Get("Ce-Id"))
	case <-time.After(20 * time.Second):
		t.Fatal("the webhook action was not called")
	}
	out, err := env.Kubectl(t.Context(), "get", "ignitors", "-n", ns, "-o", "jsonpath={.items[0].status.lastFired}")
	require.NoError(t, err)
	assert.NotEmpty(t, out, "LASTFIRED set")
}

// TestWatcherRestartsNeitherLoseNorDoubleACompletion ends a Pod while no watcher
// runs, then starts watchers one after the other.
func TestWatcherRestartsNeitherLoseNorDoubleACompletion(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, oneTask)
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	w := startWatcher(t, srv.URL())
	fire(t, srv.URL(), ns, "go", "w-1", "")
	pod := waitNewPod(t, ns, "only")
	waitTask(t, ns, "only", func(tk *orcav1.Task) bool { return tk.Status.State == orcav1.TaskRunning })

	w.stop()
	require.NoError(t, kubelet().End(t.Context(), key(pod), 3, "failed while no watcher ran"))
	startWatcher(t, srv.URL())
	tk := waitTask(t, ns, "only", func(tk *orcav1.Task) bool { return tk.Status.FailuresCount == 1 })
	assert.Equal(t, orcav1.TaskPending, tk.Status.State)
	waitFinalizerGone(t, pod)
	startWatcher(t, srv.URL()).stop()

	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	stream, err := js.Stream(t.Context(), bus.DefaultStream)
	require.NoError(t, err)
	subject := bus.TaskSubject(false, ns, "only")
	err = testenv.Eventually(t.Context(), 5*time.Second, func(ctx context.Context) (bool, error) {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			return false, err
		}
		return info.State.Subjects[subject] == 1, nil
	})
	require.NoError(t, err, "exactly one completion event stored")
	tk = waitTask(t, ns, "only", func(*orcav1.Task) bool { return true })
	assert.Equal(t, int32(1), tk.Status.FailuresCount)
	assert.Len(t, tk.Status.History, 1)
}
