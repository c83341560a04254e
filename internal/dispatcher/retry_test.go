package dispatcher

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

func TestAttemptPodName(t *testing.T) {
	assert.Equal(t, PodName("task1", "src", "ev"), AttemptPodName("task1", "src", "ev", 1), "a first attempt is named as a Pod without retries")
	assert.Equal(t, PodName("task1", "src", "ev"), AttemptPodName("task1", "src", "ev", 0))
	seen := map[string]bool{}
	for _, task := range []string{"task1", strings.Repeat("x", 253)} {
		for n := int32(1); n <= 5; n++ {
			name := AttemptPodName(task, "src", "ev", n)
			assert.Empty(t, validation.IsDNS1123Subdomain(name), name)
			assert.False(t, seen[name], "attempt %d has a name of its own", n)
			seen[name] = true
		}
	}
}

func TestBuildPodOfAnAttempt(t *testing.T) {
	task := &orcav1.Task{
		ObjectMeta: metav1.ObjectMeta{Name: "task1", Namespace: "ns", UID: "task-uid"},
		Spec: orcav1.TaskSpec{ActiveDeadlineSeconds: ptr.To[int64](600), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			ActiveDeadlineSeconds: ptr.To[int64](60),
			Containers:            []corev1.Container{{Name: "main", Env: []corev1.EnvVar{{Name: "ORCA_ATTEMPT", Value: "mine"}}}},
		}}},
	}
	started := time.Now().Add(-590 * time.Second)
	pod := buildPod(task, start{EventSource: "src", EventID: "ev", Run: "r", Attempt: 3, FailedAttempts: 2, RunStarted: started})
	assert.Equal(t, AttemptPodName("task1", "src", "ev", 3), pod.Name)
	assert.Equal(t, []corev1.EnvVar{{Name: "ORCA_ATTEMPT", Value: "3"}}, pod.Spec.Containers[0].Env[3:], "Orca's ORCA_ATTEMPT wins")
	assert.Equal(t, "3", pod.Annotations[orcav1.AnnotationAttempt])
	assert.Equal(t, "2", pod.Annotations[orcav1.AnnotationFailedAttempts])
	assert.Equal(t, started.UTC().Format(time.RFC3339Nano), pod.Annotations[orcav1.AnnotationRunStarted])
	assert.Equal(t, started.Add(600*time.Second).UTC().Format(time.RFC3339Nano), pod.Annotations[orcav1.AnnotationDeadline])
	assert.InDelta(t, 10, *pod.Spec.ActiveDeadlineSeconds, 1, "what is left of the run, below the template's 60")
	assert.Equal(t, int64(60), *task.Spec.Template.Spec.ActiveDeadlineSeconds, "the cached Task is not changed")

	first := buildPod(task, start{EventSource: "src", EventID: "ev", Run: "r"})
	assert.Equal(t, "1", first.Annotations[orcav1.AnnotationAttempt])
	assert.Contains(t, first.Annotations, orcav1.AnnotationRunStarted, "a first attempt starts its run")
	assert.NotContains(t, first.Annotations, orcav1.AnnotationFailedAttempts)
	assert.Equal(t, int64(60), *first.Spec.ActiveDeadlineSeconds, "the template's deadline, below the run's")

	task.Spec.ActiveDeadlineSeconds = nil
	none := buildPod(task, start{EventSource: "src", EventID: "ev", Run: "r"})
	assert.NotContains(t, none.Annotations, orcav1.AnnotationDeadline)

	late := buildPod(&orcav1.Task{Spec: orcav1.TaskSpec{ActiveDeadlineSeconds: ptr.To[int64](5), Template: task.Spec.Template}},
		start{Attempt: 2, RunStarted: time.Now().Add(-time.Hour)})
	assert.Equal(t, int64(1), *late.Spec.ActiveDeadlineSeconds, "a run past its deadline: the least a Pod accepts")
}
