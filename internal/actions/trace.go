package actions

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

const tracerName = "github.com/sirocco-cloud/orca/internal/actions"

// startRun starts the span of one Action's run, a child of the task event's
// receive span in ctx. A webhook sends its trace context as the traceparent
// header.
func startRun(ctx context.Context, task *orcav1.Task, action string) (context.Context, trace.Span) {
	ctx, span := otel.Tracer(tracerName).Start(ctx, "run action")
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("k8s.namespace.name", task.Namespace),
			attribute.String("orca.task", task.Name),
			attribute.String("orca.action", action),
		)
	}
	return ctx, span
}
