package bus_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/telemetry"
)

// These tests run with tracing off (this package never installs a tracer
// provider): Orca makes no trace context of its own, and passes on the one it
// gets.

const (
	runParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	hopParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"
)

// publishRaw publishes an ignition in binary mode with extra headers, as an
// external system does.
func publishRaw(t *testing.T, nc *nats.Conn, subject string, header map[string]string) {
	t.Helper()
	msg := nats.NewMsg(subject)
	for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": "ext-1", "ce-source": "test/external",
		"ce-type": bus.TypeIgnited, "content-type": "text/plain"} {
		msg.Header.Set(k, v)
	}
	for k, v := range header {
		msg.Header.Set(k, v)
	}
	msg.Data = []byte("x")
	require.NoError(t, nc.PublishMsg(msg))
}

func TestTraceContextIsPassedOnWithTracingOff(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	nc := rawConn(t, srv.URL())
	taskEvents, err := nc.SubscribeSync(bus.SubjectTaskSucceeded + ".>")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	handlerParent := make(chan string, 1)
	ch, _ := collect(t, b, "tracing", []string{bus.FilterIgnitions}, func(ctx context.Context, d *bus.Delivery) error {
		tp, _ := telemetry.FormatContext(ctx)
		handlerParent <- tp
		// What a service publishes within the handling carries the run's trace
		// context on, and the hop's in its headers.
		return b.PublishTaskEvent(ctx, bus.TaskEvent{ID: "pod-uid", Source: "test", Succeeded: true,
			TraceParent: d.TraceParent, TraceState: d.TraceState,
			Result: bus.TaskResult{Task: "t", Namespace: "ns", Run: d.Run(), FinishedAt: time.Now()}})
	})

	publishRaw(t, nc, bus.IgnitionSubject("ns", "go"), map[string]string{
		"ce-traceparent": runParent, "ce-tracestate": "vendor=abc", "traceparent": hopParent,
	})
	d := receive(t, ch)
	assert.Equal(t, runParent, d.TraceParent, "the run's trace context is the extension")
	assert.Equal(t, "vendor=abc", d.TraceState)
	assert.Equal(t, runParent, d.Ignition.TraceParent)
	assert.Equal(t, hopParent, <-handlerParent, "the handler's context continues the hop")

	msg, err := taskEvents.NextMsg(10 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, runParent, msg.Header.Get("ce-traceparent"), "the extension is carried unchanged")
	assert.Equal(t, "vendor=abc", msg.Header.Get("ce-tracestate"))
	assert.Equal(t, hopParent, msg.Header.Get("traceparent"), "the hop header passes the handler's context on")
}

func TestEventsWithoutTraceContextGetNoneWithTracingOff(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	nc := rawConn(t, srv.URL())
	sub, err := nc.SubscribeSync(bus.FilterIgnitions)
	require.NoError(t, err)
	require.NoError(t, nc.Flush()) // the server has the subscription before the publish
	require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: "1", Source: "test", Namespace: "ns", Name: "go"}))
	msg, err := sub.NextMsg(10 * time.Second)
	require.NoError(t, err)
	assert.Empty(t, msg.Header.Get("ce-traceparent"))
	assert.Empty(t, msg.Header.Get("traceparent"))
}

func TestAnInvalidTraceParentIsIgnoredNotDeadLettered(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	nc := rawConn(t, srv.URL())
	handlerParent := make(chan trace.SpanContext, 1)
	ch, _ := collect(t, b, "tracing", []string{bus.FilterIgnitions}, func(ctx context.Context, d *bus.Delivery) error {
		handlerParent <- trace.SpanContextFromContext(ctx)
		return nil
	})
	publishRaw(t, nc, bus.IgnitionSubject("ns", "go"), map[string]string{"ce-traceparent": "not-a-traceparent", "traceparent": "00-zz"})
	d := receive(t, ch)
	assert.Empty(t, d.TraceParent)
	assert.Empty(t, d.Ignition.TraceParent)
	assert.False(t, (<-handlerParent).IsValid())
}

func TestStructuredEventsCarryTheTraceExtension(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	nc := rawConn(t, srv.URL())
	ch, _ := collect(t, b, "tracing", []string{bus.FilterIgnitions}, nil)
	data, err := json.Marshal(map[string]any{
		"specversion": "1.0", "id": "s-1", "source": "test/structured", "type": bus.TypeIgnited,
		"traceparent": runParent, "data": "x",
	})
	require.NoError(t, err)
	msg := nats.NewMsg(bus.IgnitionSubject("ns", "go"))
	msg.Header.Set("content-type", "application/cloudevents+json")
	msg.Data = data
	require.NoError(t, nc.PublishMsg(msg))
	d := receive(t, ch)
	assert.Equal(t, runParent, d.TraceParent)
}

func TestRetryingAndHaltedEventsCarryTheRunsTraceContext(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	nc := rawConn(t, srv.URL())
	raw, err := nc.SubscribeSync("orca.task.>")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	ch, _ := collect(t, b, "tracing", []string{bus.SubjectAll}, nil)

	at := time.Now().UTC()
	require.NoError(t, b.PublishRetry(t.Context(), bus.RetryEvent{ID: "pod-uid", Source: "orca/watcher",
		TraceParent: runParent, TraceState: "vendor=abc", Retry: bus.TaskRetry{
			TaskResult:  bus.TaskResult{Task: "t", Namespace: "ns", Run: "run-1", FinishedAt: at, Attempt: 1},
			NextAttempt: 2, RetryAt: at, TriggerSource: "test", TriggerID: "ig-1",
		}}))
	require.NoError(t, b.PublishHalt(t.Context(), bus.HaltEvent{ID: "ns/pod", Source: "orca/dispatcher",
		TraceParent: runParent, TraceState: "vendor=abc",
		Halt: bus.TaskHalt{Task: "t", Namespace: "ns", Run: "run-1", HaltedAt: at}}))

	for _, typ := range []string{bus.TypeTaskRetrying, bus.TypeTaskHalted} {
		msg, err := raw.NextMsg(10 * time.Second)
		require.NoError(t, err)
		assert.Equal(t, typ, msg.Header.Get("ce-type"))
		assert.Equal(t, runParent, msg.Header.Get("ce-traceparent"), "%s carries the run's trace context", typ)
		assert.Equal(t, "vendor=abc", msg.Header.Get("ce-tracestate"))
	}
	// The consumer's workers may hand the two over in either order.
	d, other := receive(t, ch), receive(t, ch)
	if d.Retry == nil {
		d, other = other, d
	}
	require.NotNil(t, d.Retry)
	assert.Equal(t, runParent, d.Retry.TraceParent)
	assert.Equal(t, "vendor=abc", d.Retry.TraceState)
	assert.Equal(t, runParent, d.TraceParent)
	d = other
	require.NotNil(t, d.Halt)
	assert.Equal(t, runParent, d.Halt.TraceParent)
	assert.Equal(t, "vendor=abc", d.Halt.TraceState)
}
