package actions_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/sirocco-cloud/orca/internal/actions"
	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/scheme"
)

// startScoped starts a second actions service on the fixture's NATS, limited to
// its namespace: a durable consumer of another name, new to the stream.
func startScoped(t *testing.T, f *fixture) {
	t.Helper()
	b, err := bus.Connect(t.Context(), bus.Options{URLs: []string{f.natsURL}, Name: t.Name() + "-scoped"})
	require.NoError(t, err)
	mgr, err := manager.New(env.Config, manager.Options{
		Scheme: scheme.New(), Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{f.ns: {}}},
	})
	require.NoError(t, err)
	require.NoError(t, actions.Setup(t.Context(), mgr, b, actions.Options{Namespaces: []string{f.ns}, RetryBackoff: 10 * time.Millisecond}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = b.Close()
	})
}

// caughtUp waits until the durable consumer has acknowledged the whole stream.
func caughtUp(t *testing.T, url, consumer string) {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	eventually(t, "consumer "+consumer+" caught up", func() bool {
		s, err := js.Stream(t.Context(), bus.DefaultStream)
		if err != nil {
			return false
		}
		c, err := js.Consumer(t.Context(), bus.DefaultStream, consumer)
		if err != nil {
			return false
		}
		info, err := c.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream == s.CachedInfo().State.LastSeq
	})
}

// An Action runs once per event, however often the event comes: replayed (the
// same CloudEvent stored again) or replayed by a durable consumer new to the
// stream. The webhook carries the CloudEvent id for receivers to deduplicate too.
func TestActionRunsOncePerEvent(t *testing.T) {
	t.Parallel()
	f := startService(t, false)
	h := newHook(t, http.StatusOK)
	f.createAction(t, "notify", orcav1.ActionSpec{Webhook: &orcav1.WebhookAction{URL: h.URL}})
	f.createTask(t, "build", []orcav1.ObjectName{"notify"}, nil)

	te := f.publish(t, "build", "pod-uid-once", true)
	eventually(t, "webhook received", func() bool { return len(h.requests()) == 1 })
	assert.Equal(t, "pod-uid-once", h.requests()[0].header.Get("Ce-Id"))
	assert.Equal(t, "orca/watcher", h.requests()[0].header.Get("Ce-Source"))
	// The run is recorded after the webhook answered, before the ack.
	caughtUp(t, f.natsURL, actions.ConsumerName)

	// The same event stored again, as a replay would (no Nats-Msg-Id).
	ev, err := te.Event()
	require.NoError(t, err)
	require.NoError(t, f.bus.Republish(bus.TaskSubject(true, f.ns, "build"), ev))
	// A core publish: the stream may store it after caughtUp looked, so wait
	// for the skip itself.
	eventually(t, "the replayed event skipped", func() bool {
		return strings.Contains(f.logs.String(), "action already ran for this event")
	})
	caughtUp(t, f.natsURL, actions.ConsumerName)

	// A new durable consumer (another --namespaces) replays the stream.
	startScoped(t, f)
	caughtUp(t, f.natsURL, bus.ScopedConsumerName(actions.ConsumerName, []string{f.ns}))
	assert.Len(t, h.requests(), 1, "the webhook is sent once")
}
