package e2e_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/watcher"
)

const seedTasks = `apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: task1
spec:
  description: A description of the task
  startOnIgnition:
    - ignitor1
  startOnSuccess:
  startOnFailure:
    - task1
  successActions:
  failureActions:
  template:
    spec:
      initContainers:
      - name: setup
        image: busybox
      containers:
      - name: container-name-1
        image: dockerimage1
        command: ["whatever command"]
      restartPolicy: Never
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: task2
spec:
  description: A description of the task
  startOnIgnition:
  startOnSuccess:
    - task1
  startOnFailure:
  successActions:
  failureActions:
  template:
    spec:
      containers:
      - name: container-name-2
        image: dockerimage2
        command: ["whatever command"]
      restartPolicy: Never
`

func startDispatcher(t *testing.T, natsURL string, o dispatcher.Options) *service {
	return startService(t, natsURL, "dispatcher", func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
		return dispatcher.Setup(ctx, mgr, b, o)
	})
}

func startWatcher(t *testing.T, natsURL string) *service {
	return startService(t, natsURL, "watcher", func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
		return watcher.Setup(ctx, mgr, b, watcher.Options{RemovalGrace: time.Second})
	})
}

// fire publishes an ignition from outside Orca with plain nats.go and hand-written
// CloudEvent headers, as an external system would.
func fire(t *testing.T, natsURL, ns, name, id, data string) {
	t.Helper()
	fireFrom(t, natsURL, ns, name, "e2e-test", id, data, "e2e-test "+id)
}

// fireFrom is fire with the CloudEvent source and the Nats-Msg-Id header given
// (none when empty).
func fireFrom(t *testing.T, natsURL, ns, name, source, id, data, msgID string) {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	require.NoError(t, err)
	defer nc.Close()
	msg := nats.NewMsg("orca.ignited." + ns + "." + name)
	msg.Header.Set("ce-specversion", "1.0")
	msg.Header.Set("ce-id", id)
	msg.Header.Set("ce-source", source)
	msg.Header.Set("ce-type", "cloud.sirocco.orca.ignited")
	if msgID != "" {
		msg.Header.Set("Nats-Msg-Id", msgID)
	}
	msg.Data = []byte(data)
	_, err = nc.RequestMsg(msg, 5*time.Second) // the stream's ack answers
	require.NoError(t, err)
}

func TestSeedWorkflowPassesDataAlong(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	startWatcher(t, srv.URL())
	apply(t, ns, seedTasks)

	// An outside subscriber with its own connection sees task events on core NATS.
	sub, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer sub.Close()
	events, err := sub.SubscribeSync("orca.task.>")
	require.NoError(t, err)
	require.NoError(t, sub.Flush())

	fire(t, srv.URL(), ns, "ignitor1", "ext-1", "data from ignitor1")
	task1 := waitPods(t, ns, "task1", 1)[0]
	for _, c := range append(task1.Spec.InitContainers, task1.Spec.Containers...) {
		assert.Equal(t, "ignitor1", envOf(c)["ORCA_INITIATOR"], c.Name)
		assert.Equal(t, "data from ignitor1", envOf(c)["ORCA_DATA"], c.Name)
		assert.Equal(t, "ext-1", envOf(c)["ORCA_RUN"], c.Name)
	}
	assert.Equal(t, "ext-1", task1.Labels[orcav1.LabelRun])
	require.Len(t, task1.OwnerReferences, 1)
	assert.Equal(t, "task1", task1.OwnerReferences[0].Name)
	waitTask(t, ns, "task1", func(tk *orcav1.Task) bool { return tk.Status.State == orcav1.TaskRunning })

	require.NoError(t, kubelet().Start(t.Context(), key(task1)))
	require.NoError(t, kubelet().Succeed(t.Context(), key(task1), "result of task1"))

	task2 := waitPods(t, ns, "task2", 1)[0]
	assert.Equal(t, "task1", envOf(task2.Spec.Containers[0])["ORCA_INITIATOR"])
	assert.Equal(t, "result of task1", envOf(task2.Spec.Containers[0])["ORCA_DATA"])
	assert.Equal(t, "ext-1", envOf(task2.Spec.Containers[0])["ORCA_RUN"], "the run id travels along the chain")

	msg, err := events.NextMsg(10 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, "orca.task.succeeded."+ns+".task1", msg.Subject)
	assert.Equal(t, bus.TypeTaskSucceeded, msg.Header.Get("ce-type"))
	assert.Equal(t, string(task1.UID), msg.Header.Get("ce-id"))
	assert.Equal(t, "ext-1", msg.Header.Get("ce-orcarun"))
	var result bus.TaskResult
	require.NoError(t, json.Unmarshal(msg.Data, &result))
	assert.Equal(t, "result of task1", result.Message)
	assert.Equal(t, task1.Name, result.Pod)
	assert.Equal(t, "ignitor1", result.Initiator)

	require.NoError(t, kubelet().Succeed(t.Context(), key(task2), "done"))
	for _, name := range []string{"task1", "task2"} {
		waitTask(t, ns, name, func(tk *orcav1.Task) bool {
			return tk.Status.LastSuccess != nil && tk.Status.State == orcav1.TaskPending
		})
	}
	out, err := env.Kubectl(t.Context(), "get", "tasks", "-n", ns)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		assert.Equal(t, "Pending", f[1], line)
		assert.Regexp(t, `^\d{4}-\d\d-\d\dT`, f[2], "LASTSUCCESS set: %s", line)
	}
	// Every reported Pod has been let go.
	for _, p := range append(taskPods(t, ns, "task1"), taskPods(t, ns, "task2")...) {
		waitFinalizerGone(t, p)
	}
}

func TestFailureRestartsTheTaskAndCounts(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	startWatcher(t, srv.URL())
	apply(t, ns, seedTasks)

	fire(t, srv.URL(), ns, "ignitor1", "run-f", "")
	first := waitNewPod(t, ns, "task1")
	require.NoError(t, kubelet().End(t.Context(), key(first), 2, "boom"))
	second := waitNewPod(t, ns, "task1", first)
	assert.Equal(t, "task1", envOf(second.Spec.Containers[0])["ORCA_INITIATOR"])
	assert.Equal(t, "boom", envOf(second.Spec.Containers[0])["ORCA_DATA"])
	tk := waitTask(t, ns, "task1", func(tk *orcav1.Task) bool { return tk.Status.FailuresCount == 1 })
	assert.NotNil(t, tk.Status.LastFailure)
	assert.Equal(t, int32(2), tk.Status.History[0].ExitCode)

	// Deleted before it ended: a failure too, and the retry loop goes on.
	require.NoError(t, env.Client.Delete(t.Context(), &second))
	third := waitNewPod(t, ns, "task1", first, second)
	tk = waitTask(t, ns, "task1", func(tk *orcav1.Task) bool { return tk.Status.FailuresCount == 2 })
	assert.Equal(t, "Deleted", tk.Status.History[0].Reason)

	require.NoError(t, kubelet().Succeed(t.Context(), key(third), "ok"))
	tk = waitTask(t, ns, "task1", func(tk *orcav1.Task) bool { return tk.Status.FailuresCount == 0 && tk.Status.LastSuccess != nil })
	assert.Len(t, tk.Status.History, 3)
	waitPods(t, ns, "task2", 1)
}
