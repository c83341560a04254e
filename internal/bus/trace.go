package bus

import (
	"context"
	"errors"
	"strings"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sirocco-cloud/orca/internal/telemetry"
)

// The CloudEvents distributed-tracing extension: the W3C trace context of the
// run an event belongs to, set on the ignition and carried unchanged by every
// event of the run. The trace context of each hop travels apart from it, in the
// NATS headers traceparent and tracestate (no ce- prefix).
const (
	ExtensionTraceParent = telemetry.TraceParent
	ExtensionTraceState  = telemetry.TraceState
)

const tracerName = "github.com/sirocco-cloud/orca/internal/bus"

// traceOf returns the distributed-tracing extension of e when its traceparent is
// a valid W3C traceparent, else nothing; a tracestate that does not parse is
// left out, and one that does is returned in its canonical form.
func traceOf(e cloudevents.Event) (traceparent, tracestate string) {
	tp := extension(e, ExtensionTraceParent)
	if tp == "" {
		return "", ""
	}
	sc := telemetry.Parse(tp, extension(e, ExtensionTraceState))
	if !sc.IsValid() {
		return "", ""
	}
	return tp, sc.TraceState().String()
}

// extension returns the extension attribute name of e, "" when e has none. It
// reads a CloudEvents 1.0 context in place: Extensions copies the map, and this
// runs on every publish and receive.
func extension(e cloudevents.Event, name string) string {
	var v any
	if ec, ok := e.Context.(*event.EventContextV1); ok {
		v = ec.Extensions[name]
	} else {
		v = e.Extensions()[name]
	}
	if s, ok := v.(string); ok || v == nil {
		return s
	}
	s, _ := types.Format(v)
	return s
}

// setTrace sets the distributed-tracing extension of e when traceparent is valid.
func setTrace(e *cloudevents.Event, traceparent, tracestate string) {
	sc := telemetry.Parse(traceparent, tracestate)
	if !sc.IsValid() {
		return
	}
	e.SetExtension(ExtensionTraceParent, traceparent)
	if ts := sc.TraceState().String(); ts != "" {
		e.SetExtension(ExtensionTraceState, ts)
	}
}

// headerCarrier reads and writes the W3C trace context in NATS headers; it reads
// header names in any case.
type headerCarrier nats.Header

func (h headerCarrier) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

func (h headerCarrier) Set(key, value string) { nats.Header(h).Set(key, value) }

func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// Span options and names, made once: the no-op tracer of a service without
// tracing must cost next to nothing.
var (
	producer     = trace.WithSpanKind(trace.SpanKindProducer)
	consumer     = trace.WithSpanKind(trace.SpanKindConsumer)
	publishNames = spanNames("publish ")
	receiveNames = spanNames("receive ")
)

// spanNames maps each of Orca's event types to the name of its spans:
// "publish orca.ignited", "receive orca.task.succeeded", ...
func spanNames(op string) map[string]string {
	names := map[string]string{}
	for _, t := range []string{TypeIgnited, TypeTaskSucceeded, TypeTaskFailed, TypeTaskRetrying, TypeTaskHalted} {
		names[t] = spanName(op, t)
	}
	return names
}

func spanName(op, eventType string) string {
	return op + strings.TrimPrefix(eventType, "cloud.sirocco.")
}

// nameOf returns the span name of op on events of eventType.
func nameOf(names map[string]string, op, eventType string) string {
	if name, ok := names[eventType]; ok {
		return name
	}
	return spanName(op, eventType)
}

// eventAttributes describe an event on a span.
func eventAttributes(subject string, e cloudevents.Event) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.destination.name", subject),
		attribute.String("cloudevents.event_id", e.ID()),
		attribute.String("cloudevents.event_source", e.Source()),
		attribute.String("cloudevents.event_type", e.Type()),
		attribute.String("cloudevents.event_subject", e.Subject()),
		attribute.String("orca.run", runOf(e)),
	}
}

// startPublish starts the span of a publish, a child of the span in ctx. An event
// without a distributed-tracing extension gets this span's trace context: a run
// that Orca starts begins its trace with the ignition's publish.
func startPublish(ctx context.Context, subject string, e *cloudevents.Event) (context.Context, trace.Span) {
	ctx, span := otel.Tracer(tracerName).Start(ctx, nameOf(publishNames, "publish ", e.Type()), producer)
	if span.IsRecording() {
		span.SetAttributes(eventAttributes(subject, *e)...)
		span.SetAttributes(attribute.String("messaging.operation.name", "publish"))
	}
	if tp, _ := traceOf(*e); tp == "" {
		tp, ts := telemetry.FormatContext(ctx)
		setTrace(e, tp, ts)
	}
	return ctx, span
}

// startReceive starts the span of a delivery's handling: a child of the hop
// before it (the NATS headers), or, when they carry none, of the event's
// distributed-tracing extension. It sets the Delivery's trace context: the
// extension when the event has one, else this span's.
func (c *Consumer) startReceive(header nats.Header, d *Delivery) (context.Context, trace.Span) {
	ctx := telemetry.W3C.Extract(c.ctx, headerCarrier(header))
	d.TraceParent, d.TraceState = traceOf(d.Event)
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = telemetry.WithRemoteParent(ctx, d.TraceParent, d.TraceState)
	}
	ctx, span := otel.Tracer(tracerName).Start(ctx, nameOf(receiveNames, "receive ", d.Event.Type()), consumer)
	if span.IsRecording() {
		span.SetAttributes(eventAttributes(d.Subject, d.Event)...)
		span.SetAttributes(
			attribute.String("messaging.operation.name", "receive"),
			attribute.String("messaging.consumer.group.name", c.opts.Name),
			attribute.Int64("orca.deliveries", int64(d.NumDelivered)),
		)
	}
	if d.TraceParent == "" {
		d.TraceParent, d.TraceState = telemetry.FormatContext(ctx)
	}
	return ctx, span
}

// endReceive ends the span of a delivery's handling with the handler's outcome:
// done, deferred (Later), failed (retried) or unusable (Permanent).
func endReceive(span trace.Span, err error) {
	if span.IsRecording() {
		outcome := "done"
		switch {
		case err == nil:
		case errors.As(err, new(laterError)):
			outcome, err = "deferred", nil
		case IsPermanent(err):
			outcome = "unusable"
		default:
			outcome = "failed"
		}
		span.SetAttributes(attribute.String("orca.outcome", outcome))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}
