// Package telemetry sets up OpenTelemetry tracing for Orca's processes and holds
// the small helpers that move a W3C trace context between a context.Context and
// the strings that Pods, annotations and CloudEvents carry.
//
// Setup reads the standard OpenTelemetry environment variables. Traces are
// exported over OTLP (http/protobuf by default, or grpc) when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, or
// OTEL_TRACES_EXPORTER is otlp; OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none
// turns them off. The exporter itself reads the rest (headers, timeout,
// certificates, compression), the SDK the sampler (OTEL_TRACES_SAMPLER) and the
// batching (OTEL_BSP_*). Without any of them nothing is set up: the global tracer
// provider stays OpenTelemetry's no-op one, and a span costs a context value.
//
// A trace context that arrives from outside is passed on even then: a no-op span
// keeps its parent's span context, so that Format of a context that was given a
// remote parent (WithRemoteParent) returns that parent.
package telemetry
