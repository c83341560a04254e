package dispatcher

import (
	"crypto/sha256"
	"encoding/base32"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// start is what an event hands to the Pod it starts.
type start struct {
	// EventSource and EventID identify the event (CloudEvents makes the pair
	// unique).
	EventSource string
	EventID     string
	Run         string
	Initiator   string
	Data        string
	// Inputs is ORCA_INPUTS, set for the Pods of joins only.
	Inputs string
	// Attempt is the number of the attempt in its run (0 means 1), FailedAttempts
	// the run's failures so far that count against the retry limit, and
	// RunStarted when the run's first attempt was created (zero: now). See
	// retry.go.
	Attempt        int32
	FailedAttempts int32
	RunStarted     time.Time
	// Seq is the stream sequence of the event: the order of starts that wait.
	Seq uint64 `json:"-"`
	// Replaces names the Pods whose slots this start took (concurrencyPolicy
	// Replace): the watcher deletes them.
	Replaces []string `json:"-"`
	// Trace is the W3C trace context of the run and of the Pod's create.
	Trace podTrace
}

// PodName returns the name of the Pod that the event (source, id) starts for
// task: the task name and a hash of the three, so that one event starts a Task
// once, and events of two sources that share an id start it twice.
func PodName(task, source, id string) string {
	const hashLen = 10
	base := task
	if max := validation.DNS1123SubdomainMaxLength - hashLen - 1; len(base) > max {
		base = strings.TrimRight(base[:max], "-.")
	}
	return base + "-" + hash(task + "\x00" + source + "\x00" + id)[:hashLen]
}

// hash returns a lowercase base32 SHA-256 digest, valid in names and labels.
func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))
}

// labelValue returns v if it is a valid label value, else a hash of it.
func labelValue(v string) string {
	if len(validation.IsValidLabelValue(v)) == 0 {
		return v
	}
	return "h" + hash(v)[:40]
}

// buildPod returns the Pod that s starts for task.
func buildPod(task *orcav1.Task, s start) *corev1.Pod {
	tmpl := task.Spec.Template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        AttemptPodName(task.Name, s.EventSource, s.EventID, s.Attempt),
			Namespace:   task.Namespace,
			Labels:      tmpl.Labels,
			Annotations: tmpl.Annotations,
			Finalizers:  []string{orcav1.FinalizerCompletion},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion:         orcav1.GroupVersion.String(),
				Kind:               "Task",
				Name:               task.Name,
				UID:                task.UID,
				Controller:         ptr.To(true),
				BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: tmpl.Spec,
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[orcav1.LabelTask] = labelValue(task.Name)
	pod.Labels[orcav1.LabelRun] = labelValue(s.Run)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[orcav1.AnnotationTask] = task.Name
	pod.Annotations[orcav1.AnnotationRun] = s.Run
	pod.Annotations[orcav1.AnnotationInitiator] = s.Initiator
	pod.Annotations[orcav1.AnnotationEventID] = s.EventID
	pod.Annotations[orcav1.AnnotationEventSource] = s.EventSource
	pod.Annotations[orcav1.AnnotationTaskUID] = string(task.UID)
	if len(s.Replaces) > 0 {
		pod.Annotations[orcav1.AnnotationReplaces] = strings.Join(s.Replaces, ",")
	}
	if pod.Spec.RestartPolicy == "" {
		pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	}
	env := []corev1.EnvVar{
		{Name: orcav1.EnvInitiator, Value: s.Initiator},
		{Name: orcav1.EnvData, Value: s.Data},
		{Name: orcav1.EnvRun, Value: s.Run},
		{Name: orcav1.EnvAttempt, Value: strconv.Itoa(int(max(s.Attempt, 1)))},
	}
	if s.Inputs != "" {
		env = append(env, corev1.EnvVar{Name: orcav1.EnvInputs, Value: s.Inputs})
	}
	env = s.Trace.apply(pod, env)
	for i := range pod.Spec.InitContainers {
		pod.Spec.InitContainers[i].Env = withEnv(pod.Spec.InitContainers[i].Env, env)
	}
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].Env = withEnv(pod.Spec.Containers[i].Env, env)
	}
	setAttempt(pod, task, s, time.Now())
	return pod
}

// withEnv puts Orca's variables first, so that the template's own variables can
// refer to them as $(ORCA_DATA), and drops template variables of the same names.
func withEnv(own, orca []corev1.EnvVar) []corev1.EnvVar {
	out := make([]corev1.EnvVar, 0, len(orca)+len(own))
	out = append(out, orca...)
	for _, e := range own {
		if !slices.ContainsFunc(orca, func(o corev1.EnvVar) bool { return o.Name == e.Name }) {
			out = append(out, e)
		}
	}
	return out
}
