package e2e_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
)

// A Task whose template order of containers (zeta, alpha) is not the name order
// the kubelet reports them in, with a native sidecar (an init container with
// restartPolicy Always) and a plain init container.
const sidecarTasks = `apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: steps
spec:
  startOnIgnition: [go]
  template:
    spec:
      initContainers:
      - name: proxy
        image: busybox
        restartPolicy: Always
      - name: setup
        image: busybox
      containers:
      - name: zeta
        image: busybox
      - name: alpha
        image: busybox
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: next
spec:
  startOnSuccess: [steps]
  template:
    spec:
      containers:
      - name: main
        image: busybox
`

// TestCompletionIgnoresSidecarsAndTakesTheMessageInTemplateOrder ends a Pod as a
// kubelet does: Succeeded, statuses sorted by name, and the sidecar killed by
// SIGTERM (exit 143) once the containers were done. The run succeeded; the
// message is zeta's, the first in the template that wrote one; and as long as
// the kubelet keeps for one of four containers (12 KiB / 4), it is marked cut.
func TestCompletionIgnoresSidecarsAndTakesTheMessageInTemplateOrder(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	startWatcher(t, srv.URL())
	apply(t, ns, sidecarTasks)
	events := subscribe(t, srv.URL(), "orca.task.>")

	fire(t, srv.URL(), ns, "go", "sidecar-1", "")
	pod := waitNewPod(t, ns, "steps")
	fromZeta := strings.Repeat("z", 12<<10/4)
	ended := func(name string, code int32, reason, msg string) corev1.ContainerStatus {
		now := metav1.Now()
		return corev1.ContainerStatus{Name: name, Image: "busybox", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: reason, Message: msg, StartedAt: now, FinishedAt: now,
		}}}
	}
	require.NoError(t, kubelet().SetStatus(t.Context(), key(pod), func(st *corev1.PodStatus) {
		st.Phase = corev1.PodSucceeded
		st.InitContainerStatuses = []corev1.ContainerStatus{
			ended("proxy", 143, "Error", "proxy: terminated"), ended("setup", 0, "Completed", "set up"),
		}
		st.ContainerStatuses = []corev1.ContainerStatus{
			ended("alpha", 0, "Completed", "from alpha"), ended("zeta", 0, "Completed", fromZeta),
		}
	}))

	msg, err := events.NextMsg(20 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, bus.TaskSubject(true, ns, "steps"), msg.Subject, "the sidecar's exit does not fail the run")
	var data map[string]any
	require.NoError(t, json.Unmarshal(msg.Data, &data))
	assert.True(t, data["message"] == fromZeta, "the message of the first container in template order, got %.20q", data["message"])
	assert.Equal(t, true, data["messageTruncated"], "a message as long as the kubelet keeps is marked")

	next := waitNewPod(t, ns, "next")
	assert.True(t, envOf(next.Spec.Containers[0])["ORCA_DATA"] == fromZeta, "zeta's message is the next task's data")
	tk := waitTask(t, ns, "steps", func(tk *orcav1.Task) bool { return len(tk.Status.History) == 1 })
	assert.True(t, tk.Status.History[0].Succeeded)
	assert.Zero(t, tk.Status.FailuresCount)
	waitFinalizerGone(t, pod) // else the next test's watcher would report it
}

// TestOversizeIgnitionIsDeadLettered: data that cannot be an environment variable
// of a container is refused with its reason, and the largest that can starts the
// Task.
func TestOversizeIgnitionIsDeadLettered(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, oneTask)
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	dead := subscribe(t, srv.URL(), "orca.deadletter.>")

	fire(t, srv.URL(), ns, "go", "big-1", strings.Repeat("x", 64<<10+1))
	dl, err := dead.NextMsg(20 * time.Second)
	require.NoError(t, err, "the oversize ignition is dead-lettered")
	assert.Equal(t, "orca.deadletter.orca.ignited."+ns+".go", dl.Subject)
	assert.Contains(t, dl.Header.Get(bus.HeaderDeadLetterReason), "ignition data is 65537 bytes, over the limit of 65536")
	assert.Contains(t, dl.Header.Get(bus.HeaderDeadLetterReason), "ORCA_DATA")
	assert.Empty(t, taskPods(t, ns, "only"))

	fire(t, srv.URL(), ns, "go", "big-2", strings.Repeat("x", 64<<10))
	pod := waitPods(t, ns, "only", 1)[0]
	assert.Len(t, envOf(pod.Spec.Containers[0])["ORCA_DATA"], 64<<10)
}
