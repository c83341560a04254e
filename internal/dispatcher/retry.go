package dispatcher

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// AttemptPodName returns the name of the Pod of an attempt of the run that the
// event (source, id) starts for task: PodName for the first attempt, so that a
// Task without retries names its Pods as before, and a name of its own for each
// further attempt, so that a redelivered retrying event starts nothing twice.
func AttemptPodName(task, source, id string, attempt int32) string {
	if attempt <= 1 {
		return PodName(task, source, id)
	}
	// An event id cannot hold a control character: no id of a first attempt
	// looks like this.
	return PodName(task, source, id+"\x00attempt "+strconv.Itoa(int(attempt)))
}

// setAttempt writes the attempt, the run's start and the run's deadline into
// pod, started for task at now. A run's deadline is its start plus the Task's
// activeDeadlineSeconds: the annotation tells the watcher when to end the
// attempt, and the Pod's activeDeadlineSeconds (the template's, or what is left
// of the run if that is less) has the kubelet end it too.
func setAttempt(pod *corev1.Pod, task *orcav1.Task, s start, now time.Time) {
	pod.Annotations[orcav1.AnnotationAttempt] = strconv.Itoa(int(max(s.Attempt, 1)))
	started := s.RunStarted
	if started.IsZero() {
		started = now
	}
	pod.Annotations[orcav1.AnnotationRunStarted] = started.UTC().Format(time.RFC3339Nano)
	if s.FailedAttempts > 0 {
		pod.Annotations[orcav1.AnnotationFailedAttempts] = strconv.Itoa(int(s.FailedAttempts))
	}
	if task.Spec.ActiveDeadlineSeconds == nil {
		return
	}
	deadline := started.Add(time.Duration(*task.Spec.ActiveDeadlineSeconds) * time.Second)
	pod.Annotations[orcav1.AnnotationDeadline] = deadline.UTC().Format(time.RFC3339Nano)
	left := max(int64(math.Ceil(deadline.Sub(now).Seconds())), 1)
	if ads := pod.Spec.ActiveDeadlineSeconds; ads == nil || *ads > left {
		pod.Spec.ActiveDeadlineSeconds = &left
	}
}

// handleRetry starts the next attempt of a run once it is due: until then the
// event goes back to the stream (bus.Later), which keeps the wait across
// restarts of every service. The next attempt's Pod continues the run's trace,
// run.
func (d *Dispatcher) handleRetry(ctx context.Context, ev *bus.RetryEvent, run podTrace) error {
	r := ev.Retry
	if wait := r.RetryAt.Sub(time.Now()); wait > 0 {
		return bus.Later(wait)
	}
	if gone, err := d.taskReplaced(ctx, r.TaskResult); gone || err != nil {
		return err
	}
	var task orcav1.Task
	err := d.client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.Task}, &task)
	if apierrors.IsNotFound(err) {
		d.log.Info("retry of a deleted task starts nothing", "namespace", r.Namespace, "task", r.Task, "run", r.Run)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get task %s/%s: %w", r.Namespace, r.Task, err)
	}
	return d.startAll(ctx, []orcav1.Task{task}, start{
		EventSource: r.TriggerSource, EventID: r.TriggerID, Run: r.Run, Initiator: r.Initiator, Data: r.Data, Inputs: r.Inputs,
		Attempt: r.NextAttempt, FailedAttempts: r.FailedAttempts, RunStarted: r.RunStartedAt,
		Trace: run,
	})
}
