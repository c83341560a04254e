package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Options configure Setup.
type Options struct {
	// Service is the service.name of the process's spans unless
	// OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) says
	// otherwise, e.g. "orca-dispatcher".
	Service string
	// Log receives the export errors and the line that says where traces go;
	// default slog.Default().
	Log *slog.Logger
}

// ShutdownTimeout bounds how long the function that Setup returns waits for the
// last spans to be exported.
const ShutdownTimeout = 5 * time.Second

// Setup installs the global tracer provider that exports over OTLP, when the
// environment asks for it (see the package comment), and returns the function
// that exports the spans not exported yet and stops the exporter. Otherwise it
// changes nothing and returns a function that does nothing. It fails on a
// setting Orca cannot honour (another exporter or protocol).
func Setup(ctx context.Context, o Options) (stop func(), err error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	tp, err := newProvider(ctx, o)
	if err != nil || tp == nil {
		return func() {}, err
	}
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(W3C)
	log := o.Log
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing failed", "err", err) }))
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			log.Warn("traces not all exported", "err", err)
		}
	}, nil
}

// newProvider returns the tracer provider that the environment asks for, or nil
// when it asks for none.
func newProvider(ctx context.Context, o Options) (*sdktrace.TracerProvider, error) {
	on, err := enabled()
	if err != nil || !on {
		return nil, err
	}
	protocol := firstSet("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	var exp sdktrace.SpanExporter
	switch protocol {
	case "", "http/protobuf":
		protocol = "http/protobuf"
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("OTLP protocol %q is not supported for traces: use http/protobuf or grpc", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", o.Service)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: last, so they win
	)
	if errors.Is(err, resource.ErrPartialResource) {
		o.Log.Warn("some resource attributes are not usable", "err", err)
	} else if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	o.Log.Info("exporting traces over OTLP", "protocol", protocol,
		"endpoint", firstSet("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"))
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// enabled reports whether the environment asks for traces to be exported.
func enabled() (bool, error) {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	switch exporter := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")); exporter {
	case "none":
		return false, nil
	case "otlp":
		return true, nil
	case "":
		return firstSet("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT") != "", nil
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%q is not supported: Orca exports traces over OTLP (otlp) or not at all (none)", exporter)
	}
}

// firstSet returns the value of the first of the variables that is set.
func firstSet(names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(os.Getenv(n)); v != "" {
			return v
		}
	}
	return ""
}
