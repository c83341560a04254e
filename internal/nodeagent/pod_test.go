package nodeagent_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestPodRunsInitThenContainer(t *testing.T) {
	h := startAgent(t)
	file := filepath.Join(t.TempDir(), "x")
	pod := h.pod("hello", corev1.Container{
		Name:    "main",
		Image:   "busybox",
		Command: []string{"sh", "-c", `cat "$FILE"; echo "$GREETING from $POD_NAME on $HOSTNAME"; printf done > /dev/termination-log`},
		Env: []corev1.EnvVar{
			{Name: "FILE", Value: file},
			{Name: "GREETING", Value: "hello"},
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		},
	})
	pod.Spec.InitContainers = []corev1.Container{{
		Name:    "init",
		Image:   "busybox",
		Command: []string{"sh", "-c"},
		Args:    []string{"echo init ran; echo initialized > $(FILE)"}, // expanded by the agent, not the shell
		Env:     []corev1.EnvVar{{Name: "FILE", Value: file}},
	}}
	h.create(t, pod)

	pod = h.waitEnded(t, "hello")
	assert.Equal(t, corev1.PodSucceeded, pod.Status.Phase)
	main := terminated(t, pod, "main")
	assert.Equal(t, int32(0), main.ExitCode)
	assert.Equal(t, "Completed", main.Reason)
	assert.Equal(t, "done", main.Message)
	assert.True(t, strings.HasPrefix(main.ContainerID, "orca-sandbox://"), main.ContainerID)
	assert.False(t, main.StartedAt.IsZero())
	assert.False(t, main.FinishedAt.Before(&main.StartedAt))
	init := terminated(t, pod, "init")
	assert.Equal(t, int32(0), init.ExitCode)
	assert.Equal(t, "", init.Message)
	assert.Equal(t, "busybox", containerStatus(t, pod, "main").Image)

	assert.Equal(t, "127.0.0.1", pod.Status.PodIP)
	assert.Equal(t, "127.0.0.1", pod.Status.HostIP)
	assert.NotNil(t, pod.Status.StartTime)
	conditions := map[corev1.PodConditionType]corev1.ConditionStatus{}
	for _, c := range pod.Status.Conditions {
		conditions[c.Type] = c.Status
	}
	assert.Equal(t, corev1.ConditionTrue, conditions[corev1.PodScheduled])
	assert.Equal(t, corev1.ConditionTrue, conditions[corev1.PodInitialized])
	assert.Equal(t, corev1.ConditionFalse, conditions[corev1.PodReady])
	assert.Equal(t, corev1.ConditionFalse, conditions[corev1.ContainersReady])

	want := "initialized\nhello from hello on hello\n"
	assert.Equal(t, want, h.kubectl(t, "logs", "hello"))
	assert.Contains(t, h.output.String(), h.ns+"/hello/main: hello from hello on hello\n")
	assert.Contains(t, h.output.String(), h.ns+"/hello/init: init ran\n")
	assert.Equal(t, "init ran\n", h.kubectl(t, "logs", "hello", "-c", "init"))

	// The container wrote its own termination-log, not the host's.
	if host, err := os.ReadFile("/dev/termination-log"); err == nil {
		assert.NotContains(t, string(host), "done")
	}
}

func TestConcurrentTerminationMessagesStayApart(t *testing.T) {
	h := startAgent(t)
	names := []string{"first", "second", "third"}
	for _, name := range names {
		// Each Pod writes its message while the others are alive.
		h.create(t, h.pod(name, shell("main", `printf "$HOSTNAME" > /dev/termination-log; sleep 1`)))
	}
	for _, name := range names {
		pod := h.waitEnded(t, name)
		assert.Equal(t, corev1.PodSucceeded, pod.Status.Phase, name)
		assert.Equal(t, name, terminated(t, pod, "main").Message)
	}
}

func TestFailingContainers(t *testing.T) {
	h := startAgent(t)
	fallback := shell("fallback", "echo line1; echo boom >&2; exit 3")
	fallback.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	file := shell("file", "echo ignored; exit 4")
	written := shell("written", "echo ignored; printf written > /dev/termination-log; exit 5")
	written.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	h.create(t, h.pod("fails", fallback, file, written))

	pod := h.waitEnded(t, "fails")
	assert.Equal(t, corev1.PodFailed, pod.Status.Phase)
	for name, want := range map[string]corev1.ContainerStateTerminated{
		"fallback": {ExitCode: 3, Reason: "Error", Message: "line1\nboom\n"},
		"file":     {ExitCode: 4, Reason: "Error", Message: ""},
		"written":  {ExitCode: 5, Reason: "Error", Message: "written"},
	} {
		got := terminated(t, pod, name)
		assert.Equal(t, want.ExitCode, got.ExitCode, name)
		assert.Equal(t, want.Reason, got.Reason, name)
		assert.Equal(t, want.Message, got.Message, name)
	}
}

func TestContainerWithoutCommandFails(t *testing.T) {
	h := startAgent(t)
	h.create(t, h.pod("imageonly", corev1.Container{Name: "main", Image: "busybox", Args: []string{"echo", "hi"}}))

	pod := h.waitEnded(t, "imageonly")
	assert.Equal(t, corev1.PodFailed, pod.Status.Phase)
	term := terminated(t, pod, "main")
	assert.Equal(t, int32(128), term.ExitCode)
	assert.Equal(t, "NoCommand", term.Reason)
	assert.Contains(t, term.Message, "the sandbox runs no images")
	assert.Contains(t, term.Message, "set a command")
	assert.Contains(t, h.kubectl(t, "logs", "imageonly"), "the sandbox runs no images")
}

func TestUnknownExecutableFails(t *testing.T) {
	h := startAgent(t)
	h.create(t, h.pod("missing", corev1.Container{Name: "main", Image: "busybox", Command: []string{"no-such-command-orca"}}))

	pod := h.waitEnded(t, "missing")
	assert.Equal(t, corev1.PodFailed, pod.Status.Phase)
	term := terminated(t, pod, "main")
	assert.Equal(t, int32(128), term.ExitCode)
	assert.Equal(t, "StartError", term.Reason)
	assert.Contains(t, term.Message, "executable file not found")
}

func TestFailedInitContainerFailsPod(t *testing.T) {
	h := startAgent(t)
	marker := filepath.Join(t.TempDir(), "ran")
	pod := h.pod("badinit", shell("main", "touch "+marker))
	pod.Spec.InitContainers = []corev1.Container{shell("init", "exit 7"), shell("later", "touch "+marker)}
	h.create(t, pod)

	pod = h.waitEnded(t, "badinit")
	assert.Equal(t, corev1.PodFailed, pod.Status.Phase)
	assert.Equal(t, int32(7), terminated(t, pod, "init").ExitCode)
	assert.NotNil(t, containerStatus(t, pod, "later").State.Waiting)
	assert.NotNil(t, containerStatus(t, pod, "main").State.Waiting)
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodInitialized {
			assert.Equal(t, corev1.ConditionFalse, c.Status)
		}
	}
	_, err := os.Stat(marker)
	require.ErrorIs(t, err, os.ErrNotExist, "a container ran after the init container failed")
}

func TestStatusUpdatesKeepMetadata(t *testing.T) {
	h := startAgent(t)
	h.create(t, h.pod("labelled", shell("main", "sleep 2")))
	h.waitRunning(t, "labelled")

	patch := []byte(`{"metadata":{"labels":{"added":"yes"},"annotations":{"note":"kept"}}}`)
	_, err := h.client.CoreV1().Pods(h.ns).Patch(t.Context(), "labelled", types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)

	pod := h.waitEnded(t, "labelled")
	assert.Equal(t, corev1.PodSucceeded, pod.Status.Phase)
	assert.Equal(t, "yes", pod.Labels["added"])
	assert.Equal(t, "kept", pod.Annotations["note"])
}
