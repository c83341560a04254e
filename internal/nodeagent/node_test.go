package nodeagent_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sirocco-cloud/orca/internal/testenv"
)

func TestNodeRegistersReadyWithoutTaints(t *testing.T) {
	h := startAgent(t)
	node, err := h.client.CoreV1().Nodes().Get(t.Context(), h.node, metav1.GetOptions{})
	require.NoError(t, err)

	assert.Empty(t, node.Spec.Taints)
	want := map[corev1.NodeConditionType]corev1.ConditionStatus{
		corev1.NodeReady:              corev1.ConditionTrue,
		corev1.NodeMemoryPressure:     corev1.ConditionFalse,
		corev1.NodeDiskPressure:       corev1.ConditionFalse,
		corev1.NodePIDPressure:        corev1.ConditionFalse,
		corev1.NodeNetworkUnavailable: corev1.ConditionFalse,
	}
	got := map[corev1.NodeConditionType]corev1.ConditionStatus{}
	for _, c := range node.Status.Conditions {
		got[c.Type] = c.Status
	}
	assert.Equal(t, want, got)
	assert.Equal(t, []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}, node.Status.Addresses)
	assert.Equal(t, int64(110), node.Status.Allocatable.Pods().Value())
	assert.Positive(t, node.Status.Allocatable.Cpu().Value())
	assert.Positive(t, node.Status.Allocatable.Memory().Value())

	// The kubelet endpoint serves TLS on the advertised port.
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	require.Positive(t, port)
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp",
		fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // self-signed
	require.NoError(t, err)
	require.NoError(t, conn.Close())
}

func TestStopKillsProcessesAndClosesListener(t *testing.T) {
	h := startAgent(t)
	h.create(t, h.pod("sleeper", shell("main", "sleep 300")))
	pid := pidOf(t, h.waitRunning(t, "sleeper"), "main")
	require.True(t, processExists(pid))
	node, err := h.client.CoreV1().Nodes().Get(t.Context(), h.node, metav1.GetOptions{})
	require.NoError(t, err)
	addr := fmt.Sprintf("127.0.0.1:%d", node.Status.DaemonEndpoints.KubeletEndpoint.Port)

	h.stop(t)

	assert.False(t, processExists(pid), "process %d survived the agent", pid)
	_, err = net.DialTimeout("tcp", addr, time.Second)
	assert.Error(t, err, "kubelet api still listening")
}

func TestRestartedAgentDoesNotRunPodsAgain(t *testing.T) {
	h := startAgent(t)
	marker := filepath.Join(t.TempDir(), "runs")
	h.create(t, h.pod("once", shell("main", "echo run >> "+marker+"; sleep 300")))
	err := testenv.Eventually(t.Context(), timeout, func(context.Context) (bool, error) {
		_, err := os.Stat(marker)
		return err == nil, err
	})
	require.NoError(t, err)
	h.stop(t)

	h.run(t)

	pod := h.waitEnded(t, "once")
	assert.Equal(t, corev1.PodFailed, pod.Status.Phase)
	term := terminated(t, pod, "main")
	assert.Equal(t, "ContainerStatusUnknown", term.Reason)
	assert.Equal(t, int32(137), term.ExitCode)
	runs, err := os.ReadFile(marker)
	require.NoError(t, err)
	assert.Equal(t, "run\n", string(runs))
}
