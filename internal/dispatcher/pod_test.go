package dispatcher

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

func TestPodName(t *testing.T) {
	long := strings.Repeat("a", 240) + ".b-c"
	tests := []struct{ task, source, id string }{
		{"task1", "orca/watcher", "uid-1"},
		{"task1", "orca/watcher", "uid-2"},
		{"task2", "orca/watcher", "uid-1"},
		{"task1", "system-a", "1"},
		{"task1", "system-b", "1"},
		{"task1", "system-a1", ""},
		{"with.dots", "s", "e"},
		{long, "s", "e"},
		{strings.Repeat("x", 253), "s", "e"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		name := PodName(tt.task, tt.source, tt.id)
		assert.Empty(t, validation.IsDNS1123Subdomain(name), name)
		assert.Equal(t, name, PodName(tt.task, tt.source, tt.id), "deterministic")
		assert.False(t, seen[name], "distinct for %v", tt)
		seen[name] = true
	}
	assert.True(t, strings.HasPrefix(PodName("task1", "s", "x"), "task1-"))
}

func TestLabelValue(t *testing.T) {
	assert.Equal(t, "task1", labelValue("task1"))
	for _, v := range []string{strings.Repeat("r", 64), "run id with spaces", "-x"} {
		got := labelValue(v)
		assert.Empty(t, validation.IsValidLabelValue(got), got)
		assert.Equal(t, got, labelValue(v))
	}
}

func TestBuildPodPutsOrcaEnvInEveryContainer(t *testing.T) {
	task := &orcav1.Task{
		ObjectMeta: metav1.ObjectMeta{Name: "task1", Namespace: "ns", UID: "task-uid"},
		Spec: orcav1.TaskSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "a"}},
			Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "init"}},
				Containers: []corev1.Container{
					{Name: "main", Env: []corev1.EnvVar{{Name: "ORCA_DATA", Value: "from template"}, {Name: "OWN", Value: "$(ORCA_DATA)"}}},
					{Name: "side"},
				},
			},
		}},
	}
	pod := buildPod(task, start{EventSource: "src", EventID: "ev", Run: "run 1", Initiator: "ignitor1", Data: "payload"})

	assert.Equal(t, PodName("task1", "src", "ev"), pod.Name)
	assert.Equal(t, "src", pod.Annotations[orcav1.AnnotationEventSource])
	assert.Equal(t, "ev", pod.Annotations[orcav1.AnnotationEventID])
	assert.Equal(t, "task-uid", pod.Annotations[orcav1.AnnotationTaskUID])
	assert.Equal(t, corev1.RestartPolicyNever, pod.Spec.RestartPolicy)
	assert.Equal(t, "a", pod.Labels["team"])
	assert.Equal(t, "task1", pod.Labels[orcav1.LabelTask])
	assert.Equal(t, "run 1", pod.Annotations[orcav1.AnnotationRun])
	assert.Empty(t, validation.IsValidLabelValue(pod.Labels[orcav1.LabelRun]))
	assert.Equal(t, []string{orcav1.FinalizerCompletion}, pod.Finalizers)
	require.Len(t, pod.OwnerReferences, 1)
	assert.Equal(t, "task-uid", string(pod.OwnerReferences[0].UID))
	assert.True(t, *pod.OwnerReferences[0].Controller)

	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		require.GreaterOrEqual(t, len(c.Env), 4, c.Name)
		assert.Equal(t, []corev1.EnvVar{
			{Name: "ORCA_INITIATOR", Value: "ignitor1"}, {Name: "ORCA_DATA", Value: "payload"}, {Name: "ORCA_RUN", Value: "run 1"},
			{Name: "ORCA_ATTEMPT", Value: "1"},
		}, c.Env[:4], c.Name)
	}
	assert.Equal(t, []corev1.EnvVar{{Name: "OWN", Value: "$(ORCA_DATA)"}}, pod.Spec.Containers[0].Env[4:],
		"the template's own ORCA_DATA gives way; its other variables follow Orca's")
	assert.Equal(t, "from template", task.Spec.Template.Spec.Containers[0].Env[0].Value, "the cached Task is not changed")
}

func TestBuildPodCarriesTheTraceContext(t *testing.T) {
	const (
		run    = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		create = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"
	)
	task := &orcav1.Task{
		ObjectMeta: metav1.ObjectMeta{Name: "task1", Namespace: "ns"},
		Spec: orcav1.TaskSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "main", Env: []corev1.EnvVar{{Name: "TRACEPARENT", Value: "the template's"}}}},
		}}},
	}
	pod := buildPod(task, start{Run: "r", Trace: podTrace{RunParent: run, RunState: "vendor=abc", Parent: create, State: "vendor=abc"}})
	assert.Equal(t, run, pod.Annotations[orcav1.AnnotationRunTraceParent])
	assert.Equal(t, "vendor=abc", pod.Annotations[orcav1.AnnotationRunTraceState])
	assert.Equal(t, create, pod.Annotations[orcav1.AnnotationTraceParent])
	assert.Equal(t, []corev1.EnvVar{{Name: "TRACEPARENT", Value: create}, {Name: "TRACESTATE", Value: "vendor=abc"}},
		pod.Spec.Containers[0].Env[4:], "the create's trace context follows Orca's variables; the template's TRACEPARENT gives way")

	// Tracing off and no trace context with the event: nothing is added.
	pod = buildPod(task, start{Run: "r"})
	for _, a := range []string{orcav1.AnnotationRunTraceParent, orcav1.AnnotationRunTraceState, orcav1.AnnotationTraceParent, orcav1.AnnotationTraceState} {
		assert.NotContains(t, pod.Annotations, a)
	}
	assert.Equal(t, []corev1.EnvVar{{Name: "TRACEPARENT", Value: "the template's"}}, pod.Spec.Containers[0].Env[4:],
		"the template's own TRACEPARENT stays when Orca has none")
}
