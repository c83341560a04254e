package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sirocco-cloud/orca/internal/actions"
	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// settled waits until the durable consumer has nothing pending or unacked.
func settled(t *testing.T, natsURL, consumer string) {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	err = testenv.Eventually(t.Context(), 20*time.Second, func(ctx context.Context) (bool, error) {
		c, err := js.Consumer(ctx, bus.DefaultStream, consumer)
		if err != nil {
			return false, err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return false, err
		}
		return info.NumAckPending == 0 && info.NumPending == 0, nil
	})
	require.NoError(t, err, "consumer %s did not settle", consumer)
}

// subscribe subscribes to subject on core NATS, as an outside subscriber would.
func subscribe(t *testing.T, natsURL, subject string) *nats.Subscription {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync(subject)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return sub
}

// counter returns the value of a counter of the process's metrics registry.
func counter(t *testing.T, name string) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	require.NoError(t, err)
	var sum float64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestEventsOfTwoSourcesWithOneIDBothStartTheTask: CloudEvents makes (source, id)
// unique, so two publishers that both number their events from 1 start the Task
// once each. The same event published again starts nothing, and is counted.
func TestEventsOfTwoSourcesWithOneIDBothStartTheTask(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, oneTask)
	startDispatcher(t, srv.URL(), dispatcher.Options{})

	// Two external publishers that set Nats-Msg-Id as the README says...
	fireFrom(t, srv.URL(), ns, "go", "system-a", "1", "from system-a", "system-a 1")
	fireFrom(t, srv.URL(), ns, "go", "system-b", "1", "from system-b", "system-b 1")
	// ... and two of Orca's own publishers.
	b, err := bus.Connect(t.Context(), bus.Options{URLs: []string{srv.URL()}, Name: t.Name()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	orcaFire := func(source string) error {
		return b.PublishIgnition(t.Context(), bus.Ignition{ID: "2", Source: source, Namespace: ns, Name: "go", Data: []byte("from " + source)})
	}
	require.NoError(t, orcaFire("orca/cli"))
	require.NoError(t, orcaFire("orca/scheduler"))

	pods := waitPods(t, ns, "only", 4)
	var data []string
	for _, p := range pods {
		data = append(data, envOf(p.Spec.Containers[0])["ORCA_DATA"])
	}
	assert.ElementsMatch(t, []string{"from system-a", "from system-b", "from orca/cli", "from orca/scheduler"}, data)

	// The same events again. The stream drops a republish within its duplicate
	// window; one it stores (no Nats-Msg-Id, or after the window) meets its Pod.
	before := counter(t, "orca_dispatcher_duplicates_total")
	fireFrom(t, srv.URL(), ns, "go", "system-a", "1", "from system-a", "system-a 1")
	require.NoError(t, orcaFire("orca/cli"))
	fireFrom(t, srv.URL(), ns, "go", "system-b", "1", "from system-b", "")
	settled(t, srv.URL(), dispatcher.ConsumerName)
	assert.Equal(t, 4, len(taskPods(t, ns, "only")), "a republished event starts nothing")
	assert.Equal(t, before+1, counter(t, "orca_dispatcher_duplicates_total"), "the dropped duplicate is counted")
}

const replacedTasks = `apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: flaky
spec:
  startOnIgnition: [go]
  startOnFailure: [flaky]
  failureActions: [hook]
  template:
    spec:
      containers:
      - name: main
        image: busybox
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: cleanup
spec:
  startOnFailure: [flaky]
  template:
    spec:
      containers:
      - name: main
        image: busybox
`

// TestCompletionBelongsToTheTaskObjectThatStartedIt deletes a Task and applies it
// again (same name, new uid) while its Pod runs. The old Pod's failure is
// published, marked with the old uid, and neither recorded on the new Task nor
// starts its startOnFailure chain or its failure Actions.
func TestCompletionBelongsToTheTaskObjectThatStartedIt(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	var (
		mu    sync.Mutex
		hooks []string
	)
	hook := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		hooks = append(hooks, r.Header.Get("Ce-Id"))
	}))
	defer hook.Close()
	hookCalls := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), hooks...)
	}
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	startWatcher(t, srv.URL())
	startService(t, srv.URL(), "actions", func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
		// The hook listens on this host, which webhooks may not reach unless allowed.
		return actions.Setup(ctx, mgr, b, actions.Options{Egress: actions.EgressOptions{AllowedCIDRs: actions.LoopbackCIDRs}})
	})
	apply(t, ns, replacedTasks)
	apply(t, ns, "apiVersion: sirocco.cloud/v1alpha1\nkind: Action\nmetadata:\n  name: hook\nspec:\n  webhook:\n    url: "+hook.URL+"\n")
	events := subscribe(t, srv.URL(), "orca.task.>")

	fire(t, srv.URL(), ns, "go", "replaced-1", "")
	old := waitNewPod(t, ns, "flaky")
	var first orcav1.Task
	require.NoError(t, env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "flaky"}, &first))
	require.NoError(t, env.Client.Delete(t.Context(), &first))
	apply(t, ns, replacedTasks)
	second := waitTask(t, ns, "flaky", func(tk *orcav1.Task) bool { return tk.UID != first.UID })

	require.NoError(t, kubelet().End(t.Context(), key(old), 1, "the old pod failed"))
	msg, err := events.NextMsg(20 * time.Second)
	require.NoError(t, err, "the old pod's failure is published")
	assert.Equal(t, "orca.task.failed."+ns+".flaky", msg.Subject)
	var data map[string]any
	require.NoError(t, json.Unmarshal(msg.Data, &data))
	assert.Equal(t, string(first.UID), data["taskUID"], "the event names the task object that ran the pod")
	waitFinalizerGone(t, old)
	settled(t, srv.URL(), dispatcher.ConsumerName)
	settled(t, srv.URL(), actions.ConsumerName)

	tk := waitTask(t, ns, "flaky", func(*orcav1.Task) bool { return true })
	assert.Equal(t, second.UID, tk.UID)
	assert.Zero(t, tk.Status.FailuresCount, "the old pod's failure is not counted on the new task")
	assert.Nil(t, tk.Status.LastFailure)
	assert.Empty(t, tk.Status.History)
	assert.Equal(t, 1, len(taskPods(t, ns, "flaky")), "no retry of the new task")
	assert.Equal(t, 0, len(taskPods(t, ns, "cleanup")), "no failure chain of the new task")
	assert.Empty(t, hookCalls(), "no failure action of the new task")

	// The new Task's own failure does all of that.
	fire(t, srv.URL(), ns, "go", "replaced-2", "")
	own := waitNewPod(t, ns, "flaky", old)
	require.NoError(t, kubelet().End(t.Context(), key(own), 1, "the new pod failed"))
	retry := waitNewPod(t, ns, "flaky", old, own)
	assert.Equal(t, "the new pod failed", envOf(retry.Spec.Containers[0])["ORCA_DATA"])
	waitPods(t, ns, "cleanup", 1)
	waitTask(t, ns, "flaky", func(tk *orcav1.Task) bool { return tk.Status.FailuresCount == 1 })
	err = testenv.Eventually(t.Context(), 20*time.Second, func(context.Context) (bool, error) {
		return len(hookCalls()) == 1, nil
	})
	require.NoError(t, err, "the failure action runs once: %v", hookCalls())
	assert.Equal(t, string(own.UID), hookCalls()[0])
	waitFinalizerGone(t, own)
}
