package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// W3C trace context field names: the HTTP and NATS headers, the CloudEvents
// distributed-tracing extension attributes.
const (
	TraceParent = "traceparent"
	TraceState  = "tracestate"
)

// W3C is the propagator of W3C trace context headers, used whether or not
// tracing is set up: a trace context that arrives is always passed on.
var W3C propagation.TextMapPropagator = propagation.TraceContext{}

// Parse returns the span context that a W3C traceparent and tracestate describe;
// it is not valid when traceparent is not a valid traceparent. A tracestate that
// does not parse is left out.
func Parse(traceparent, tracestate string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	c := propagation.MapCarrier{TraceParent: traceparent}
	if tracestate != "" {
		c[TraceState] = tracestate
	}
	return trace.SpanContextFromContext(W3C.Extract(context.Background(), c))
}

// Format returns the W3C traceparent and tracestate of sc, both empty when sc is
// not valid.
func Format(sc trace.SpanContext) (traceparent, tracestate string) {
	if !sc.IsValid() {
		return "", ""
	}
	c := propagation.MapCarrier{}
	W3C.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	return c[TraceParent], c[TraceState]
}

// FormatContext returns Format of the span context in ctx.
func FormatContext(ctx context.Context) (traceparent, tracestate string) {
	return Format(trace.SpanContextFromContext(ctx))
}

// WithRemoteParent returns ctx with the span context of traceparent and
// tracestate as its remote parent, or ctx itself when traceparent is not valid.
func WithRemoteParent(ctx context.Context, traceparent, tracestate string) context.Context {
	sc := Parse(traceparent, tracestate)
	if !sc.IsValid() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// End ends span, marking it failed with err when err is not nil.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
