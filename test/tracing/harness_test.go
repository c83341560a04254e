package tracing_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sirocco-cloud/orca/internal/actions"
	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/cli"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *testenv.Env) { env = e }))
}

// orca is Orca running in the test process with its traces going to an OTLP
// receiver.
type orca struct {
	natsURL string
	otlp    *testenv.OTLP
}

// startOrca runs the four services with app.Run, as `orca run` does, exporting
// their spans over OTLP/HTTP (the standard variables) to a receiver in the test.
func startOrca(t *testing.T) *orca {
	t.Helper()
	o := &orca{otlp: testenv.StartOTLP(t)}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", o.otlp.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // ms: export soon, the test polls
	srv, _ := testenv.NATS(t)
	o.natsURL = srv.URL()
	opts := app.Options{
		Kubeconfig: env.KubeconfigPath, NATS: bus.Options{URLs: []string{o.natsURL}},
		MetricsAddr: "0", ProbeAddr: "0", LogLevel: slog.LevelWarn,
	}
	ao := actions.Options{Egress: actions.EgressOptions{AllowedCIDRs: actions.LoopbackCIDRs}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cli.RunName, opts, cli.AllServices(opts, ao, dispatcher.Options{})) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return o
}

// taskEvents subscribes to the task events of a namespace.
func (o *orca) taskEvents(t *testing.T, ns string) *nats.Subscription {
	return o.subscribe(t, "orca.task.*."+ns+".>")
}

// subscribe subscribes to subject.
func (o *orca) subscribe(t *testing.T, subject string) *nats.Subscription {
	t.Helper()
	nc, err := nats.Connect(o.natsURL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync(subject)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return sub
}

// nextEvent returns the next message of sub.
func nextEvent(t *testing.T, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	msg, err := sub.NextMsg(20 * time.Second)
	require.NoError(t, err, "no task event on %s", sub.Subject)
	return msg
}

// hook is a webhook receiver that keeps the headers of each request.
func hook(t *testing.T) (string, <-chan http.Header) {
	t.Helper()
	got := make(chan http.Header, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- r.Header.Clone()
	}))
	t.Cleanup(srv.Close)
	return srv.URL, got
}

func apply(t *testing.T, ns, manifest string) {
	t.Helper()
	_, err := env.KubectlInput(t.Context(), manifest, "apply", "-n", ns, "-f", "-")
	require.NoError(t, err)
}

// task returns the manifest of a Task with one container and the given start
// and action lists, e.g. "startOnIgnition: [go]".
func task(name string, spec ...string) string {
	return fmt.Sprintf(`apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: %s
spec:
  %s
  template:
    spec:
      containers:
      - name: main
        image: busybox
---
`, name, strings.Join(spec, "\n  "))
}

// runPod waits for the one Pod of a Task and returns it.
func runPod(t *testing.T, ns, taskName string) corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	err := testenv.Eventually(t.Context(), 20*time.Second, func(ctx context.Context) (bool, error) {
		err := env.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{orcav1.LabelTask: taskName})
		return len(pods.Items) > 0, err
	})
	require.NoError(t, err, "no pod of task %s/%s", ns, taskName)
	require.Len(t, pods.Items, 1)
	return pods.Items[0]
}

// succeed ends a Pod as its kubelet would.
func succeed(t *testing.T, pod corev1.Pod) {
	t.Helper()
	require.NoError(t, testenv.Kubelet{Client: env.Client}.Succeed(t.Context(), client.ObjectKeyFromObject(&pod), "done"))
}

func envOf(pod corev1.Pod) map[string]string {
	out := map[string]string{}
	for _, e := range pod.Spec.Containers[0].Env {
		out[e.Name] = e.Value
	}
	return out
}
