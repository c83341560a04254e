package bus_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sirocco-cloud/orca/internal/bus"
)

// logBuffer is a goroutine-safe log destination.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestStreamHasLimitsAndRefusesRatherThanDrops(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	connect(t, srv.URL())
	cfg := streamInfo(t, srv.URL()).Config
	assert.Equal(t, int64(bus.DefaultStreamMaxBytes), cfg.MaxBytes)
	assert.Equal(t, int64(bus.DefaultStreamMaxMsgs), cfg.MaxMsgs)
	assert.Equal(t, bus.DefaultStreamMaxAge, cfg.MaxAge)
	assert.Equal(t, jetstream.DiscardNew, cfg.Discard)
}

// At the stream's limit, a publish fails (its publisher retries) and nothing that
// was stored is dropped; the consumers warn before it is full.
func TestNothingStoredIsLostAtTheStreamLimit(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	var log logBuffer
	b, err := bus.Connect(t.Context(), bus.Options{URLs: []string{srv.URL()}, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.EnsureStream(t.Context(), bus.StreamOptions{MaxMsgs: 10}))

	var stored []string
	var refused error
	for i := range 15 {
		id := "full-" + string(rune('a'+i))
		err := b.PublishIgnition(t.Context(), bus.Ignition{ID: id, Source: "test", Namespace: "default", Name: "i"})
		if err != nil {
			refused = err
			continue
		}
		stored = append(stored, id)
	}
	require.Len(t, stored, 10, "the stream stores up to its limit")
	require.Error(t, refused)
	assert.Contains(t, refused.Error(), "maximum messages exceeded")

	var got counter
	c, err := b.Consume(t.Context(), bus.ConsumerOptions{Name: "late", Subjects: []string{bus.FilterIgnitions}, CheckInterval: 50 * time.Millisecond},
		func(_ context.Context, d *bus.Delivery) error {
			got.add(d.Event.ID())
			return nil
		})
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	within(t, 10*time.Second, func() bool { return len(got.snapshot()) == 10 }, "every stored event handled")
	assert.Equal(t, once(stored...), got.snapshot())
	within(t, 10*time.Second, func() bool {
		return gauge(t, "orca_bus_stream_usage_ratio", bus.DefaultStream) == 1
	}, "usage metric at 1")
	assert.Contains(t, log.String(), "stream is full")
}

// gauge returns the value of a metric with a stream label from the registry
// that the services' /metrics serve, or -1.
func gauge(t testing.TB, name, stream string) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stream" && l.GetValue() == stream {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}
