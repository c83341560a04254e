package nodeagent_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sirocco-cloud/orca/internal/controlplane"
)

func TestKubectlLogs(t *testing.T) {
	h := startAgent(t)
	h.create(t, h.pod("logs",
		shell("one", "for i in 1 2 3 4 5; do echo $i; done"),
		shell("two", "echo two >&2"),
	))
	h.waitEnded(t, "logs")

	assert.Equal(t, "1\n2\n3\n4\n5\n", h.kubectl(t, "logs", "logs", "-c", "one"))
	assert.Equal(t, "4\n5\n", h.kubectl(t, "logs", "logs", "-c", "one", "--tail=2"))
	assert.Equal(t, "1\n2\n", h.kubectl(t, "logs", "logs", "-c", "one", "--limit-bytes=4"))
	assert.Equal(t, "two\n", h.kubectl(t, "logs", "logs", "-c", "two"))
}

func TestKubectlLogsFollow(t *testing.T) {
	h := startAgent(t)
	h.create(t, h.pod("follow", shell("main", "echo a; sleep 2; echo b")))
	h.waitRunning(t, "follow")

	// Returns only when the container ended, with everything it printed.
	assert.Equal(t, "a\nb\n", h.kubectl(t, "logs", "-f", "follow"))
}

// TestKubeletAPIServesOnlyTheAPIServer calls the agent's kubelet API directly, as
// any local user could: without a client certificate, or with one that the API
// server's CA did not sign, it answers nothing; kubectl logs, through the API
// server and its client certificate, still works.
func TestKubeletAPIServesOnlyTheAPIServer(t *testing.T) {
	h := startAgent(t)
	h.create(t, h.pod("secret-logs", shell("main", "echo the password is hunter2")))
	h.waitEnded(t, "secret-logs")
	assert.Equal(t, "the password is hunter2\n", h.kubectl(t, "logs", "secret-logs"))

	node, err := h.client.CoreV1().Nodes().Get(t.Context(), h.node, metav1.GetOptions{})
	require.NoError(t, err)
	url := fmt.Sprintf("https://127.0.0.1:%d/containerLogs/%s/secret-logs/main", node.Status.DaemonEndpoints.KubeletEndpoint.Port, h.ns)

	other, err := controlplane.NewKubeletClient(t.TempDir())
	require.NoError(t, err)
	forged, err := tls.LoadX509KeyPair(other.CertFile, other.KeyFile)
	require.NoError(t, err)
	for name, certs := range map[string][]tls.Certificate{"no client certificate": nil, "another CA's certificate": {forged}} {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: certs}, //nolint:gosec // the agent's certificate is self-signed
		}}
		resp, err := c.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			t.Errorf("%s: answered %d: %q", name, resp.StatusCode, body)
			continue
		}
		assert.Contains(t, err.Error(), "certificate", name)
	}
}
