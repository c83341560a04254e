package bus_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/bus"
)

// A service's start-up calls to JetStream after it connected (the stream's
// duplicate window, its durable consumer) wait while JetStream does not answer,
// as while a NATS server restarts or a cluster elects the stream's leader, and
// carry on once it answers: a service that exited instead would crash-loop
// through every restart of a NATS node.
func TestStartUpWaitsWhileJetStreamDoesNotAnswer(t *testing.T) {
	store, port := t.TempDir(), freePort(t)
	srv := startNATS(t, store, port)
	var log logBuffer
	b, err := bus.Connect(t.Context(), bus.Options{URLs: []string{srv.URL()}, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.EnsureStream(t.Context(), bus.StreamOptions{}))
	srv.Shutdown()

	type result struct {
		window time.Duration
		c      *bus.Consumer
		err    error
	}
	window, consumer := make(chan result, 1), make(chan result, 1)
	go func() {
		w, err := b.DuplicateWindow(t.Context())
		window <- result{window: w, err: err}
	}()
	got := make(chan string, 10)
	go func() {
		c, err := b.Consume(t.Context(), bus.ConsumerOptions{Name: "patient", Subjects: []string{bus.FilterIgnitions}},
			func(_ context.Context, d *bus.Delivery) error {
				got <- d.Event.ID()
				return nil
			})
		consumer <- result{c: c, err: err}
	}()
	// Each call failed once (a JetStream request times out after 5s) and waits.
	within(t, 30*time.Second, func() bool {
		s := log.String()
		return strings.Contains(s, `msg="waiting for JetStream" for="stream ORCA"`) &&
			strings.Contains(s, `msg="waiting for JetStream" for="consumer patient"`)
	}, "both calls wait for JetStream, and say so")
	select {
	case r := <-window:
		t.Fatalf("DuplicateWindow returned while JetStream was away: %v", r.err)
	case r := <-consumer:
		t.Fatalf("Consume returned while JetStream was away: %v", r.err)
	default:
	}

	startNATS(t, store, port)
	for _, ch := range []chan result{window, consumer} {
		select {
		case r := <-ch:
			require.NoError(t, r.err)
			if r.c != nil {
				t.Cleanup(r.c.Stop)
			} else {
				assert.Equal(t, 2*time.Minute, r.window)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("still waiting 30s after JetStream came back")
		}
	}
	require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: "after", Source: "test", Namespace: "default", Name: "i"}))
	select {
	case id := <-got:
		assert.Equal(t, "after", id)
	case <-time.After(10 * time.Second):
		t.Fatal("the consumer that waited does not consume")
	}
}
