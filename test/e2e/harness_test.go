package e2e_test

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *testenv.Env) { env = e }))
}

// service is one of Orca's services running in the test process with a manager
// and a bus connection of its own, so that it can be stopped alone.
type service struct {
	bus    *bus.Bus
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// stop stops the service and waits until it has stopped; later calls do nothing.
func (s *service) stop() {
	s.once.Do(func() {
		s.cancel()
		<-s.done
		_ = s.bus.Close()
	})
}

// startService starts a service against the test control plane and natsURL.
func startService(t *testing.T, natsURL, name string, setup app.Setup) *service {
	t.Helper()
	return startServiceWith(t, env.Config, natsURL, name, setup)
}

// startServiceWith is startService with the service's REST config given.
func startServiceWith(t *testing.T, cfg *rest.Config, natsURL, name string, setup app.Setup) *service {
	t.Helper()
	o := app.Options{MetricsAddr: "0", ProbeAddr: "0"}
	mo := o.ManagerOptions(name)
	mo.Controller = config.Controller{SkipNameValidation: ptr.To(true)}
	mgr, err := manager.New(cfg, mo)
	require.NoError(t, err)
	b, err := bus.Connect(t.Context(), bus.Options{URLs: []string{natsURL}, Name: name})
	require.NoError(t, err)
	require.NoError(t, b.EnsureStream(t.Context(), bus.StreamOptions{}))
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, setup(ctx, mgr, b))
	s := &service{bus: b, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- mgr.Start(ctx) }()
	t.Cleanup(s.stop)
	return s
}

// startNATS starts an embedded nats-server for one test.
func startNATS(t *testing.T) *bus.Embedded {
	t.Helper()
	srv, _ := testenv.NATS(t)
	return srv
}

func namespace(t *testing.T) string { return env.Namespace(t) }

func apply(t *testing.T, ns, manifest string) {
	t.Helper()
	_, err := env.KubectlInput(t.Context(), manifest, "apply", "-n", ns, "-f", "-")
	require.NoError(t, err)
}

// taskPods returns the Pods of a Task.
func taskPods(t *testing.T, ns, task string) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	require.NoError(t, env.Client.List(t.Context(), &pods, client.InNamespace(ns), client.MatchingLabels{orcav1.LabelTask: task}))
	return pods.Items
}

// waitPods waits until the Task has n Pods and returns them.
func waitPods(t *testing.T, ns, task string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	err := testenv.Eventually(t.Context(), 20*time.Second, func(context.Context) (bool, error) {
		pods = taskPods(t, ns, task)
		return len(pods) >= n, nil
	})
	require.NoError(t, err, "task %s/%s has %d pods, want %d", ns, task, len(pods), n)
	require.Len(t, pods, n)
	return pods
}

// waitNewPod waits until the Task has a Pod besides the known ones and returns it.
func waitNewPod(t *testing.T, ns, task string, known ...corev1.Pod) corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	err := testenv.Eventually(t.Context(), 20*time.Second, func(context.Context) (bool, error) {
		for _, p := range taskPods(t, ns, task) {
			if !slices.ContainsFunc(known, func(k corev1.Pod) bool { return k.Name == p.Name }) {
				found = &p
				return true, nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "no new pod of task %s/%s", ns, task)
	return *found
}

func waitTask(t *testing.T, ns, name string, cond func(*orcav1.Task) bool) *orcav1.Task {
	t.Helper()
	var task orcav1.Task
	err := testenv.Eventually(t.Context(), 20*time.Second, func(ctx context.Context) (bool, error) {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &task); err != nil {
			return false, err
		}
		return cond(&task), nil
	})
	require.NoError(t, err, "task %s/%s status: %+v", ns, name, task.Status)
	return &task
}

func envOf(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out
}

func key(p corev1.Pod) client.ObjectKey { return client.ObjectKeyFromObject(&p) }

func kubelet() testenv.Kubelet { return testenv.Kubelet{Client: env.Client} }
