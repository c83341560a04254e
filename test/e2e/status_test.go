package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/watcher"
)

// apiLog records the API requests of the services whose config it made.
type apiLog struct {
	mu   sync.Mutex
	reqs []apiRequest
}

type apiRequest struct {
	service, method, path string
	code                  int
	start, end            time.Time
}

// write says whether r changes something: not a read, not a watch.
func (r apiRequest) write() bool { return r.method != http.MethodGet }

func (r apiRequest) String() string {
	return fmt.Sprintf("%s %s %s (%d) at +%s", r.service, r.method, r.path, r.code, r.start.Format("15:04:05.000"))
}

// config returns env's config with the requests of service logged.
func (l *apiLog) config(service string) *rest.Config {
	cfg := rest.CopyConfig(env.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			r := apiRequest{service: service, method: req.Method, path: req.URL.Path, start: time.Now()}
			resp, err := rt.RoundTrip(req)
			r.end = time.Now()
			if resp != nil {
				r.code = resp.StatusCode
			}
			l.mu.Lock()
			l.reqs = append(l.reqs, r)
			l.mu.Unlock()
			return resp, err
		})
	})
	return cfg
}

// requests returns the logged requests for which match is true.
func (l *apiLog) requests(match func(apiRequest) bool) []apiRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []apiRequest
	for _, r := range l.reqs {
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func startWatcherWith(t *testing.T, cfg *rest.Config, natsURL string, o watcher.Options) *service {
	return startServiceWith(t, cfg, natsURL, "watcher", func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
		return watcher.Setup(ctx, mgr, b, o)
	})
}

// TestRunsOfOneTaskAreCountedInFewStatusWrites ends many Pods of one Task at
// once: their runs are counted in a few status writes, without conflicts, and
// every Pod is let go.
func TestRunsOfOneTaskAreCountedInFewStatusWrites(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, oneTask)
	log := &apiLog{}
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	startWatcherWith(t, log.config("watcher"), srv.URL(), watcher.Options{})

	const runs, failures = 25, 5
	for i := range runs {
		fire(t, srv.URL(), ns, "go", fmt.Sprintf("burst-%d", i), "")
	}
	pods := waitPods(t, ns, "only", runs)
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Go(func() {
			code := int32(0)
			if i < failures {
				code = 1
			}
			assert.NoError(t, kubelet().End(t.Context(), key(p), code, ""))
		})
	}
	wg.Wait()
	for _, p := range pods {
		waitFinalizerGone(t, p)
	}
	tk := waitTask(t, ns, "only", func(tk *orcav1.Task) bool {
		return tk.Status.State == orcav1.TaskPending && len(tk.Status.History) == 10
	})
	assert.NotNil(t, tk.Status.LastSuccess)
	assert.NotNil(t, tk.Status.LastFailure)
	assert.Empty(t, tk.Status.Active)

	statusWrites := log.requests(func(r apiRequest) bool {
		return r.write() && strings.HasSuffix(r.path, "/tasks/only/status")
	})
	conflicts := log.requests(func(r apiRequest) bool { return r.code == http.StatusConflict })
	t.Logf("%d runs: %d status writes, %d conflicts", runs, len(statusWrites), len(conflicts))
	// One write per run, and a conflict when two runs end at once, was what
	// made a Task with many runs a hot spot.
	assert.LessOrEqual(t, len(statusWrites), 12, "status writes for %d runs: %v", runs, statusWrites)
	assert.LessOrEqual(t, len(conflicts), 1, "conflicts: %v", conflicts)
	assertStored(t, srv.URL(), bus.TaskSubject(true, ns, "only"), runs-failures)
	assertStored(t, srv.URL(), bus.TaskSubject(false, ns, "only"), failures)
}

// assertStored asserts that the stream holds n events on subject.
func assertStored(t *testing.T, natsURL, subject string, n uint64) {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	stream, err := js.Stream(t.Context(), bus.DefaultStream)
	require.NoError(t, err)
	info, err := stream.Info(t.Context(), jetstream.WithSubjectFilter(subject))
	require.NoError(t, err)
	assert.Equal(t, n, info.State.Subjects[subject], "events on %s", subject)
}

const twoSteps = `apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: first
spec:
  startOnIgnition: [go]
  template:
    spec:
      containers:
      - name: main
        image: busybox
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: second
spec:
  startOnSuccess: [first]
  template:
    spec:
      containers:
      - name: main
        image: busybox
`

// TestNoWriteBetweenAPodsEndAndTheNextPodsCreate checks that between the end of
// a Pod and the create of the Pod its success starts, the watcher writes
// nothing: the Task's status and the Pod's finalizer wait, so that they do not
// compete with the create.
func TestNoWriteBetweenAPodsEndAndTheNextPodsCreate(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, twoSteps)
	log := &apiLog{}
	startServiceWith(t, log.config("dispatcher"), srv.URL(), "dispatcher", func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
		return dispatcher.Setup(ctx, mgr, b, dispatcher.Options{})
	})
	startWatcherWith(t, log.config("watcher"), srv.URL(), watcher.Options{})

	fire(t, srv.URL(), ns, "go", "step-1", "")
	first := waitNewPod(t, ns, "first")
	waitTask(t, ns, "first", func(tk *orcav1.Task) bool { return tk.Status.State == orcav1.TaskRunning })
	t0 := time.Now()
	require.NoError(t, kubelet().Succeed(t.Context(), key(first), "ok"))
	second := waitNewPod(t, ns, "second")
	creates := log.requests(func(r apiRequest) bool {
		return r.service == "dispatcher" && r.method == http.MethodPost && r.start.After(t0) &&
			strings.HasSuffix(r.path, "/namespaces/"+ns+"/pods")
	})
	require.Len(t, creates, 1, "the create of %s", second.Name)
	between := log.requests(func(r apiRequest) bool {
		return r.service == "watcher" && r.write() && r.start.After(t0) && r.start.Before(creates[0].end)
	})
	assert.Empty(t, between, "watcher writes between the end of %s and the create of %s", first.Name, second.Name)

	// Then the run is counted and the Pod let go.
	waitTask(t, ns, "first", func(tk *orcav1.Task) bool {
		return tk.Status.LastSuccess != nil && tk.Status.State == orcav1.TaskPending
	})
	waitFinalizerGone(t, first)
}
