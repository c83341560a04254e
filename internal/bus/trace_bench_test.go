package bus

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sirocco-cloud/orca/internal/telemetry"
)

// BenchmarkHopTracing measures what tracing adds to one hop of the bus, CPU
// only: an event encoded for publishing and decoded on receipt, without spans
// (the baseline), with tracing off (the no-op tracer: what every service runs
// without OTEL_ variables), and on (the SDK, spans recorded in memory).
func BenchmarkHopTracing(b *testing.B) {
	ig := Ignition{ID: "id-1", Source: "orca/scheduler", Namespace: "ns", Name: "nightly", Data: make([]byte, 512)}
	subject := IgnitionSubject(ig.Namespace, ig.Name)
	c := &Consumer{ctx: context.Background(), opts: ConsumerOptions{Name: "bench"}}
	hop := func(b *testing.B, traced bool) {
		for b.Loop() {
			e, err := ig.Event()
			if err != nil {
				b.Fatal(err)
			}
			if !traced {
				msg := encodeBinary(subject, e)
				if _, err := parse(subject, msg.Header, msg.Data, 0); err != nil {
					b.Fatal(err)
				}
				continue
			}
			ctx, span := startPublish(context.Background(), subject, &e)
			msg := encodeBinary(subject, e)
			telemetry.W3C.Inject(ctx, headerCarrier(msg.Header))
			telemetry.End(span, nil)
			d, err := parse(subject, msg.Header, msg.Data, 0)
			if err != nil {
				b.Fatal(err)
			}
			_, span = c.startReceive(msg.Header, d)
			endReceive(span, nil)
		}
	}
	b.Run("no spans", func(b *testing.B) { hop(b, false) })
	b.Run("tracing off", func(b *testing.B) { hop(b, true) })
	b.Run("tracing on", func(b *testing.B) {
		otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter())))
		b.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
		hop(b, true)
	})
}
