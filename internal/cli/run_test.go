package cli_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/cli"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// newPod waits until the Task has a Pod besides the known ones and returns it.
func newPod(t *testing.T, ns, task string, known ...corev1.Pod) corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	waitFor(t, "a new pod of task "+task, func() bool {
		var pods corev1.PodList
		require.NoError(t, env.Client.List(t.Context(), &pods, client.InNamespace(ns), client.MatchingLabels{orcav1.LabelTask: task}))
		for _, p := range pods.Items {
			if !slices.ContainsFunc(known, func(k corev1.Pod) bool { return k.Name == p.Name }) {
				found = &p
				return true
			}
		}
		return false
	})
	return *found
}

func podEnv(p corev1.Pod) map[string]string {
	out := map[string]string{}
	for _, e := range p.Spec.Containers[0].Env {
		out[e.Name] = e.Value
	}
	return out
}

// TestRunAllRunsTheSeedWorkflow runs the four services in-process as `orca run`
// does, with an embedded NATS in a temporary state folder, and walks the seed.
func TestRunAllRunsTheSeedWorkflow(t *testing.T) {
	ns := env.Namespace(t)
	applyFile(t, ns, "seed-tasks.yaml")
	stateDir := t.TempDir()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	natsURL, webView := make(chan string, 1), make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- cli.RunAll(ctx, io.Discard, cli.RunOptions{
			App: app.Options{
				Kubeconfig: env.KubeconfigPath, Namespaces: []string{ns},
				MetricsAddr: "0", ProbeAddr: "0", LogFormat: "text",
			},
			StateDir:       stateDir,
			NATSPort:       -1, // a free port
			NATSStarted:    func(url string) { natsURL <- url },
			ApplyNamespace: ns,
			UIAddress:      "127.0.0.1:0",
			UIStarted:      func(url string) { webView <- url },
		})
	}()
	var url string
	select {
	case url = <-natsURL:
	case err := <-done:
		t.Fatalf("RunAll returned: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("embedded NATS not started within 20s")
	}
	assert.DirExists(t, stateDir+"/jetstream")
	b, err := bus.Connect(t.Context(), bus.Options{URLs: []string{url}})
	require.NoError(t, err)
	defer func() { _ = b.Close() }()
	waitFor(t, "the services created the stream", func() bool { return b.CheckStream(t.Context()) == nil })

	// Fire through the command line, as a user would.
	var stdout, stderr bytes.Buffer
	code := cli.Main(t.Context(), []string{"orca", "fire", "ignitor1", "--data", "hello from orca fire", "-n", ns,
		"--nats-url", url, "--kubeconfig", env.KubeconfigPath, "--timeout", "20s"}, nil, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	assert.Empty(t, stderr.String(), "task1 starts on ignitor1: no warning")

	task1 := newPod(t, ns, "task1")
	assert.Equal(t, "hello from orca fire", podEnv(task1)["ORCA_DATA"])
	assert.Equal(t, "ignitor1", podEnv(task1)["ORCA_INITIATOR"])
	kubelet := testenv.Kubelet{Client: env.Client}
	require.NoError(t, kubelet.Succeed(t.Context(), client.ObjectKeyFromObject(&task1), "42"))

	task2 := newPod(t, ns, "task2")
	assert.Equal(t, "42", podEnv(task2)["ORCA_DATA"])
	assert.Equal(t, "task1", podEnv(task2)["ORCA_INITIATOR"])

	// The web view runs too, behind its token.
	page := <-webView
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	resp, err := (&http.Client{Jar: jar}).Get(page)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "<title>Orca</title>")
	resp, err = http.Get(strings.Split(page, "?")[0])
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "not without the token")

	// The scheduler runs too: the seed's Ignitor (NOW) starts task1 once more.
	applyFile(t, ns, "seed-ignitor.yaml")
	again := newPod(t, ns, "task1", task1)
	assert.Equal(t, "hello from ignitor1", podEnv(again)["ORCA_DATA"])

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("RunAll did not return within 30s of its context's end")
	}
}
