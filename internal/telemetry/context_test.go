package telemetry_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sirocco-cloud/orca/internal/telemetry"
)

const (
	parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	state  = "vendor=abc,other=1"
)

func TestParseAndFormatRoundTrip(t *testing.T) {
	sc := telemetry.Parse(parent, state)
	assert.True(t, sc.IsValid())
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", sc.TraceID().String())
	assert.Equal(t, "00f067aa0ba902b7", sc.SpanID().String())
	tp, ts := telemetry.Format(sc)
	assert.Equal(t, parent, tp)
	assert.Equal(t, state, ts)
}

func TestInvalidTraceParentsAreIgnored(t *testing.T) {
	for _, tp := range []string{
		"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
	} {
		assert.False(t, telemetry.Parse(tp, "").IsValid(), tp)
		ctx := telemetry.WithRemoteParent(context.Background(), tp, "")
		assert.False(t, trace.SpanContextFromContext(ctx).IsValid(), tp)
		got, _ := telemetry.FormatContext(ctx)
		assert.Empty(t, got, tp)
	}
}

// With tracing off, a span keeps the context it was given: the trace context
// that came in goes out again.
func TestNoopSpansPassTheRemoteParentOn(t *testing.T) {
	ctx := telemetry.WithRemoteParent(context.Background(), parent, state)
	ctx, span := noop.NewTracerProvider().Tracer("test").Start(ctx, "off")
	defer span.End()
	tp, ts := telemetry.FormatContext(ctx)
	assert.Equal(t, parent, tp)
	assert.Equal(t, state, ts)
}
