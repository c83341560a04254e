package chaos

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// The retried Task: the ignition starts it in every run, and the kubelet stand-in
// fails each of its attempts, so that every run makes exactly retriedLimit+1
// attempts, each after a short backoff that waits in the stream through the
// kills, and then fails; that final failure, and only it, starts afterRetry.
const (
	retriedTask  = "retried"
	afterRetry   = "after-retry"
	retriedLimit = 2
)

const assertAttempts = "every run ended with exactly the allowed number of attempts"

// applyRetried creates the retried Task and the Task its failure starts.
func applyRetried(ctx context.Context, c client.Client, namespace string) error {
	template := corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		Containers:    []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"false"}}},
	}}
	for _, t := range []*orcav1.Task{{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: retriedTask},
		Spec: orcav1.TaskSpec{StartOnIgnition: []orcav1.ObjectName{ignitionName}, Template: template, Retry: &orcav1.RetryPolicy{
			Limit:   retriedLimit,
			Backoff: &orcav1.Backoff{Duration: &metav1.Duration{Duration: 200 * time.Millisecond}, Factor: ptr.To[int32](2)},
		}, TaskHistory: keepEveryRun},
	}, {
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: afterRetry},
		Spec:       orcav1.TaskSpec{StartOnFailure: []orcav1.ObjectName{retriedTask}, Template: template, TaskHistory: keepEveryRun},
	}} {
		if err := c.Create(ctx, t); err != nil {
			return fmt.Errorf("create task %s: %w", t.Name, err)
		}
	}
	return nil
}

// exitCode is the exit code the kubelet stand-in ends the Pod with: the retried
// Task's attempts fail.
func exitCode(pod *corev1.Pod) int32 {
	if pod.Annotations[orcav1.AnnotationTask] == retriedTask {
		return 1
	}
	return 0
}

// checkAttempts checks, run by run, the retried Task's attempts (1 to
// retriedLimit+1, each once, each with the run's data) and the one start of
// afterRetry with the last attempt's message.
func (o *outcome) checkAttempts(pods []corev1.Pod, runs []*run) {
	type key struct{ run, task string }
	byRun := map[key][]*corev1.Pod{}
	for i := range pods {
		p := &pods[i]
		k := key{p.Annotations[orcav1.AnnotationRun], p.Annotations[orcav1.AnnotationTask]}
		byRun[k] = append(byRun[k], p)
	}
	for _, r := range runs {
		var attempts []int
		for _, p := range byRun[key{r.id, retriedTask}] {
			n, _ := strconv.Atoi(p.Annotations[orcav1.AnnotationAttempt])
			attempts = append(attempts, n)
			if got := envValue(p, orcav1.EnvData); got != r.data {
				o.fail(assertData, "run %s: attempt %d of %s got ORCA_DATA %q, want %q", r.id, n, retriedTask, got, r.data)
			}
			if got := envValue(p, orcav1.EnvAttempt); got != strconv.Itoa(n) {
				o.fail(assertAttempts, "run %s: Pod %s of attempt %d has ORCA_ATTEMPT %q", r.id, p.Name, n, got)
			}
		}
		slices.Sort(attempts)
		want := make([]int, retriedLimit+1)
		for i := range want {
			want[i] = i + 1
		}
		if !slices.Equal(attempts, want) {
			o.fail(assertAttempts, "run %s: %s made attempts %v, want %v", r.id, retriedTask, attempts, want)
		}
		after := byRun[key{r.id, afterRetry}]
		switch {
		case len(after) != 1:
			o.fail(assertAttempts, "run %s: its final failure started %s %d times, want once", r.id, afterRetry, len(after))
		case envValue(after[0], orcav1.EnvData) != output(retriedTask, r.data):
			o.fail(assertData, "run %s: %s got ORCA_DATA %q, want the last attempt's message %q", r.id, afterRetry,
				envValue(after[0], orcav1.EnvData), output(retriedTask, r.data))
		}
	}
}
