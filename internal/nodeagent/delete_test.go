package nodeagent_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sirocco-cloud/orca/internal/testenv"
)

func TestDeleteRunningPod(t *testing.T) {
	h := startAgent(t)
	h.create(t, h.pod("doomed", shell("main", "sleep 300")))
	pid := pidOf(t, h.waitRunning(t, "doomed"), "main")
	require.True(t, processExists(pid))

	require.NoError(t, h.client.CoreV1().Pods(h.ns).Delete(t.Context(), "doomed", metav1.DeleteOptions{}))

	err := testenv.Eventually(t.Context(), timeout, func(context.Context) (bool, error) {
		return !processExists(pid), nil
	})
	require.NoError(t, err, "process %d not killed", pid)
	h.waitGone(t, "doomed")
	assertNoPodFiles(t, h)
}

func TestDeletedPodKeepsTerminalStatusUntilFinalizerGoes(t *testing.T) {
	h := startAgent(t)
	const finalizer = "orca.sirocco.cloud/test"
	pod := h.pod("held", shell("main", "trap 'exit 9' TERM; echo trapped; while true; do sleep 0.1; done"))
	pod.Finalizers = []string{finalizer}
	h.create(t, pod)
	h.waitRunning(t, "held")
	err := testenv.Eventually(t.Context(), timeout, func(context.Context) (bool, error) {
		return strings.Contains(h.output.String(), "/held/main: trapped"), nil
	})
	require.NoError(t, err)

	require.NoError(t, h.client.CoreV1().Pods(h.ns).Delete(t.Context(), "held", metav1.DeleteOptions{}))

	// The terminal status is written before the agent deletes the object, which
	// the finalizer then holds.
	pod = h.waitPod(t, "held", func(p *corev1.Pod) bool {
		return p.DeletionTimestamp != nil && p.DeletionGracePeriodSeconds != nil && *p.DeletionGracePeriodSeconds == 0
	})
	assert.Equal(t, corev1.PodFailed, pod.Status.Phase)
	assert.Equal(t, int32(9), terminated(t, pod, "main").ExitCode)

	patch := []byte(`{"metadata":{"finalizers":null}}`)
	_, err = h.client.CoreV1().Pods(h.ns).Patch(t.Context(), "held", types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
	h.waitGone(t, "held")
}

func TestDeletePendingPodWithInitContainer(t *testing.T) {
	h := startAgent(t)
	pod := h.pod("initializing", shell("main", "echo never"))
	pod.Spec.InitContainers = []corev1.Container{shell("init", "sleep 300")}
	h.create(t, pod)
	pod = h.waitPod(t, "initializing", func(p *corev1.Pod) bool {
		return len(p.Status.InitContainerStatuses) == 1 && p.Status.InitContainerStatuses[0].State.Running != nil
	})
	pid := pidOf(t, pod, "init")

	require.NoError(t, h.client.CoreV1().Pods(h.ns).Delete(t.Context(), "initializing", metav1.DeleteOptions{}))

	// virtual-kubelet removes a Pod without running containers from the API at
	// once; the agent then stops its init container.
	h.waitGone(t, "initializing")
	err := testenv.Eventually(t.Context(), timeout, func(context.Context) (bool, error) {
		return !processExists(pid), nil
	})
	require.NoError(t, err, "process %d not killed", pid)
	assertNoPodFiles(t, h)
}

// assertNoPodFiles checks that the agent removed the files of deleted Pods.
func assertNoPodFiles(t *testing.T, h *harness) {
	t.Helper()
	err := testenv.Eventually(t.Context(), timeout, func(context.Context) (bool, error) {
		entries, err := os.ReadDir(filepath.Join(h.dir, "pods"))
		return err == nil && len(entries) == 0, err
	})
	assert.NoError(t, err)
}

func TestContainerLeavesNoProcessBehind(t *testing.T) {
	requireSetsid(t)
	h := startAgent(t)
	// One process stays in the container's process group, one leaves it.
	h.create(t, h.pod("background", shell("main", "sleep 31414 & setsid sleep 31415 & sleep 1; echo started")))
	pod := h.waitEnded(t, "background")
	assert.Equal(t, corev1.PodSucceeded, pod.Status.Phase)

	err := testenv.Eventually(t.Context(), timeout, func(context.Context) (bool, error) {
		return len(processesRunning("sleep", "31414"))+len(processesRunning("sleep", "31415")) == 0, nil
	})
	assert.NoError(t, err, "background processes outlived their container")
}

func TestKilledContainerInitTakesItsProcessesAlong(t *testing.T) {
	requireSetsid(t)
	h := startAgent(t)
	h.create(t, h.pod("tree", shell("main", "setsid sleep 31416 & sleep 31417")))
	pid := pidOf(t, h.waitRunning(t, "tree"), "main")
	err := testenv.Eventually(t.Context(), timeout, func(context.Context) (bool, error) {
		return len(processesRunning("sleep", "31416")) == 1 && len(processesRunning("sleep", "31417")) == 1, nil
	})
	require.NoError(t, err)

	// The agent's death sends SIGKILL to the container's first process only,
	// through Pdeathsig; here the agent lives on, but its kill of the process
	// group does not reach the process that left the group.
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))

	err = testenv.Eventually(t.Context(), timeout, func(context.Context) (bool, error) {
		return len(processesRunning("sleep", "31416"))+len(processesRunning("sleep", "31417")) == 0, nil
	})
	assert.NoError(t, err, "processes outlived their container's first process")
	pod := h.waitEnded(t, "tree")
	assert.Equal(t, int32(137), terminated(t, pod, "main").ExitCode)
}

// requireSetsid skips the test when setsid, which starts a process outside its
// parent's process group, is missing.
func requireSetsid(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not found")
	}
}
