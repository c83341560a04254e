package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/testenv"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// TestServiceBinariesStartServeProbesAndStop runs each built binary as a user
// would: flags, readiness once NATS and the API server are reached, metrics, and
// a clean exit on SIGTERM.
func TestServiceBinariesStartServeProbesAndStop(t *testing.T) {
	srv := startNATS(t)
	bin := t.TempDir()
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin+"/", "./cmd/...")
	build.Dir = testenv.RepoRoot()
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	for svc, metric := range map[string]string{
		"scheduler":  `controller_runtime_reconcile_total{controller="scheduler"`,
		"dispatcher": `orca_bus_messages_total{consumer="orca-dispatcher",outcome="acked"}`,
		"watcher":    `controller_runtime_reconcile_total{controller="orca-pod-completion"`,
		"actions":    `orca_bus_messages_total{consumer="orca-actions",outcome="acked"}`,
	} {
		t.Run(svc, func(t *testing.T) {
			probe, metrics := freeAddr(t), freeAddr(t)
			cmd := exec.Command(filepath.Join(bin, svc),
				"--kubeconfig", env.KubeconfigPath, "--nats-url", srv.URL(),
				"--health-probe-bind-address", probe, "--metrics-bind-address", metrics)
			require.NoError(t, cmd.Start())
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() { _ = cmd.Process.Kill() })

			err := testenv.Eventually(t.Context(), 30*time.Second, func(ctx context.Context) (bool, error) {
				code, _, err := get(ctx, "http://"+probe+"/readyz")
				return code == http.StatusOK, err
			})
			require.NoError(t, err, "%s never became ready", svc)
			err = testenv.Eventually(t.Context(), 10*time.Second, func(ctx context.Context) (bool, error) {
				code, body, err := get(ctx, "http://"+metrics+"/metrics")
				return code == http.StatusOK && strings.Contains(body, metric), err
			})
			require.NoError(t, err, "%s metrics lack %s", svc, metric)

			require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			select {
			case err := <-exited:
				assert.NoError(t, err, "%s exits cleanly on SIGTERM", svc)
			case <-time.After(30 * time.Second):
				t.Fatalf("%s still runs 30s after SIGTERM", svc)
			}
		})
	}
}

func get(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
