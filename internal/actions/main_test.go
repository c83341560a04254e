package actions_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/sirocco-cloud/orca/internal/actions"
	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/scheme"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(testenv.Main(m, func(e *testenv.Env) { env = e }))
}

// fixture is an actions service running against the test control plane and an
// embedded nats-server of its own, serving one fresh namespace.
type fixture struct {
	ns      string
	bus     *bus.Bus
	natsURL string
	logs    *testenv.Buffer
}

// startService starts NATS, a manager and the actions service. scoped limits the
// manager and the service to the fixture's namespace. Webhooks may reach this
// host, where the tests' receivers listen, unless an option says otherwise.
func startService(t *testing.T, scoped bool, opts ...func(*actions.Options)) *fixture {
	t.Helper()
	return startServiceAs(t, env.Config, env.Namespace(t), scoped, opts...)
}

// startServiceAs is startService with the service reaching the API server as cfg
// says, for a namespace that exists.
func startServiceAs(t *testing.T, cfg *rest.Config, ns string, scoped bool, opts ...func(*actions.Options)) *fixture {
	t.Helper()
	srv, b := testenv.NATS(t)

	mo := manager.Options{
		Scheme:                 scheme.New(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	}
	logs := &testenv.Buffer{}
	o := actions.Options{
		RetryBackoff: 10 * time.Millisecond,
		Consumer:     bus.ConsumerOptions{RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond},
		Logger:       slog.New(slog.NewTextHandler(logs, nil)),
		Egress:       actions.EgressOptions{AllowedCIDRs: actions.LoopbackCIDRs},
	}
	for _, f := range opts {
		f(&o)
	}
	if scoped {
		mo.Cache.DefaultNamespaces = map[string]cache.Config{ns: {}}
		o.Namespaces = []string{ns}
	}
	mgr, err := manager.New(cfg, mo)
	require.NoError(t, err)
	require.NoError(t, actions.Setup(t.Context(), mgr, b, o))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs of the actions service:\n%s", logs.String())
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
		_ = b.Close()
		srv.Shutdown()
	})
	return &fixture{ns: ns, bus: b, natsURL: srv.URL(), logs: logs}
}

func (f *fixture) createTask(t *testing.T, name string, onSuccess, onFailure []orcav1.ObjectName) *orcav1.Task {
	t.Helper()
	task := &orcav1.Task{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: orcav1.TaskSpec{
			SuccessActions: onSuccess, FailureActions: onFailure,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "main", Image: "busybox"}},
			}},
		},
	}
	require.NoError(t, env.Client.Create(t.Context(), task))
	return task
}

func (f *fixture) createAction(t *testing.T, name string, spec orcav1.ActionSpec) {
	t.Helper()
	a := &orcav1.Action{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name}, Spec: spec}
	require.NoError(t, env.Client.Create(t.Context(), a))
}

// publish publishes a task event of the fixture's namespace.
func (f *fixture) publish(t *testing.T, task, id string, succeeded bool) bus.TaskEvent {
	t.Helper()
	started := time.Date(2026, 11, 25, 9, 59, 0, 0, time.UTC)
	te := bus.TaskEvent{ID: id, Source: "orca/watcher", Succeeded: succeeded, Result: bus.TaskResult{
		Task: task, Namespace: f.ns, Pod: task + "-" + id, Run: "run-" + id, Initiator: "ignitor1",
		Message: "result of " + id, StartedAt: &started, FinishedAt: started.Add(time.Minute),
	}}
	if !succeeded {
		te.Result.ExitCode, te.Result.Reason = 3, "Error"
	}
	require.NoError(t, f.bus.PublishTaskEvent(t.Context(), te))
	return te
}

// actionStatus reads an Action's status from the API server.
func (f *fixture) actionStatus(t *testing.T, name string) orcav1.ActionStatus {
	t.Helper()
	var a orcav1.Action
	require.NoError(t, env.Client.Get(t.Context(), types.NamespacedName{Namespace: f.ns, Name: name}, &a))
	return a.Status
}

// taskEvents lists the events.k8s.io Events about a Task.
func (f *fixture) taskEvents(t *testing.T, task string) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	require.NoError(t, env.Client.List(t.Context(), &list, client.InNamespace(f.ns)))
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == "Task" && e.Regarding.Name == task {
			out = append(out, e)
		}
	}
	return out
}

// findEvent returns the Event about task with the given type and reason whose
// related object is the named Action.
func (f *fixture) findEvent(t *testing.T, task, eventType, reason, action string) *eventsv1.Event {
	t.Helper()
	for _, e := range f.taskEvents(t, task) {
		if e.Type == eventType && e.Reason == reason && e.Related != nil && e.Related.Name == action {
			return &e
		}
	}
	return nil
}

// eventually polls cond every 20ms for up to 20s.
func eventually(t *testing.T, msg string, cond func() bool) {
	t.Helper()
	err := testenv.Eventually(t.Context(), 20*time.Second, func(context.Context) (bool, error) { return cond(), nil })
	require.NoError(t, err, msg)
}

// hook is an HTTP endpoint that records what it receives.
type hook struct {
	*httptest.Server
	mu  sync.Mutex
	got []request
}

type request struct {
	method, path string
	header       http.Header
	body         []byte
}

// newHook starts an endpoint that answers every request with status.
func newHook(t *testing.T, status int) *hook {
	t.Helper()
	return newHookFunc(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) })
}

// newHookFunc starts an endpoint that records each request, then answers it with
// answer.
func newHookFunc(t *testing.T, answer http.HandlerFunc) *hook {
	t.Helper()
	h := &hook{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.got = append(h.got, request{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
		h.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hook) requests() []request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]request(nil), h.got...)
}

func ptrTo[T any](v T) *T { return &v }
