package dispatcher

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	corev1 "k8s.io/api/core/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/telemetry"
)

const tracerName = "github.com/sirocco-cloud/orca/internal/dispatcher"

// startSpan starts a span of the dispatcher, a child of the span in ctx.
func startSpan(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	return otel.Tracer(tracerName).Start(ctx, name, trace.WithSpanKind(kind))
}

// podTrace is the W3C trace context a Pod carries: the run's, which its
// completion event carries on, and that of the span that created it, the parent
// of the span of its end and of the Pod's own spans (TRACEPARENT).
type podTrace struct {
	RunParent, RunState string
	Parent, State       string
}

// forCreate returns t with the trace context of the create's span in ctx.
func (t podTrace) forCreate(ctx context.Context) podTrace {
	t.Parent, t.State = telemetry.FormatContext(ctx)
	return t
}

// apply writes the trace context into pod's annotations (set already) and
// returns env with TRACEPARENT and TRACESTATE added; empty values are left out.
func (t podTrace) apply(pod *corev1.Pod, env []corev1.EnvVar) []corev1.EnvVar {
	annotate := func(key, value string) {
		if value != "" {
			pod.Annotations[key] = value
		}
	}
	annotate(orcav1.AnnotationRunTraceParent, t.RunParent)
	annotate(orcav1.AnnotationRunTraceState, t.RunState)
	annotate(orcav1.AnnotationTraceParent, t.Parent)
	annotate(orcav1.AnnotationTraceState, t.State)
	if t.Parent != "" {
		env = append(env, corev1.EnvVar{Name: orcav1.EnvTraceParent, Value: t.Parent})
	}
	if t.State != "" {
		env = append(env, corev1.EnvVar{Name: orcav1.EnvTraceState, Value: t.State})
	}
	return env
}

// podAttributes describe the Pod a span creates.
func podAttributes(pod *corev1.Pod, task *orcav1.Task) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("k8s.namespace.name", pod.Namespace),
		attribute.String("k8s.pod.name", pod.Name),
		attribute.String("orca.task", task.Name),
		attribute.String("orca.run", pod.Annotations[orcav1.AnnotationRun]),
		attribute.String("orca.attempt", pod.Annotations[orcav1.AnnotationAttempt]),
	}
}
