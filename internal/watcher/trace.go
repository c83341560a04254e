package watcher

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	corev1 "k8s.io/api/core/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/telemetry"
)

const tracerName = "github.com/sirocco-cloud/orca/internal/watcher"

// startPodEnded starts the span of a Pod's end being reported: a child of the
// span that created the Pod, whose trace context the dispatcher wrote on it.
func startPodEnded(ctx context.Context, pod *corev1.Pod, task string) (context.Context, trace.Span) {
	ctx = telemetry.WithRemoteParent(ctx, pod.Annotations[orcav1.AnnotationTraceParent], pod.Annotations[orcav1.AnnotationTraceState])
	ctx, span := otel.Tracer(tracerName).Start(ctx, "pod ended")
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("k8s.namespace.name", pod.Namespace),
			attribute.String("k8s.pod.name", pod.Name),
			attribute.String("orca.task", task),
			attribute.String("orca.run", pod.Annotations[orcav1.AnnotationRun]),
		)
	}
	return ctx, span
}

// describeEnd puts on span how the attempt ended, once the run policies decided
// on it (its reason, and whether it is retried).
func describeEnd(span trace.Span, c completion) {
	if span.IsRecording() {
		span.SetAttributes(
			attribute.Bool("orca.succeeded", c.Succeeded),
			attribute.Int("orca.exit_code", int(c.ExitCode)),
			attribute.String("orca.reason", c.Reason),
			attribute.Int("orca.attempt", int(c.Attempt)),
			attribute.Bool("orca.retried", c.Retried),
		)
	}
}
