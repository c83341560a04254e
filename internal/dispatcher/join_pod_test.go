package dispatcher

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

func TestJoinPodsGetInputsAndANamePerRun(t *testing.T) {
	task := &orcav1.Task{
		ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns", UID: "uid"},
		Spec: orcav1.TaskSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "main", Env: []corev1.EnvVar{{Name: "ORCA_INPUTS", Value: "from template"}}}},
		}}},
	}
	s := start{EventSource: SourceJoin, EventID: "run-1", Run: "run-1", Initiator: "c", Data: "from c", Inputs: `{"c":{}}`}
	pod := buildPod(task, s)
	assert.Equal(t, PodName("d", SourceJoin, "run-1"), pod.Name, "one name per (Task, run)")
	assert.Equal(t, []corev1.EnvVar{
		{Name: "ORCA_INITIATOR", Value: "c"}, {Name: "ORCA_DATA", Value: "from c"}, {Name: "ORCA_RUN", Value: "run-1"},
		{Name: "ORCA_ATTEMPT", Value: "1"}, {Name: "ORCA_INPUTS", Value: `{"c":{}}`},
	}, pod.Spec.Containers[0].Env, "the template's own ORCA_INPUTS gives way")

	s.Inputs = ""
	plain := buildPod(task, s)
	assert.Equal(t, "from template", plain.Spec.Containers[0].Env[4].Value, "a Pod that is not a join's keeps the template's ORCA_INPUTS")
}
