package watcher

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// Run policies, as the watcher applies them to an attempt that ended: whether the
// run goes on with another attempt (spec.retry), and whether it ran out of time
// (spec.activeDeadlineSeconds, whose deadline the dispatcher wrote on the Pod).
// The dispatcher starts the next attempt from the retrying event; only a run's
// final outcome is published as succeeded or failed.

// attempt is what the Pod's annotations say of its place in its run.
type attempt struct {
	number, failed int32     // the attempt (from 1), and the counted failures before it
	runStarted     time.Time // when the run's first attempt was created
	deadline       time.Time // when the run times out; zero: never
}

func attemptOf(pod *corev1.Pod) attempt {
	a := attempt{number: 1, runStarted: pod.CreationTimestamp.Time}
	if n, err := strconv.ParseInt(pod.Annotations[orcav1.AnnotationAttempt], 10, 32); err == nil && n > 1 {
		a.number = int32(n)
	}
	if n, err := strconv.ParseInt(pod.Annotations[orcav1.AnnotationFailedAttempts], 10, 32); err == nil && n > 0 {
		a.failed = int32(n)
	}
	if t, err := time.Parse(time.RFC3339Nano, pod.Annotations[orcav1.AnnotationRunStarted]); err == nil {
		a.runStarted = t
	}
	if t, err := time.Parse(time.RFC3339Nano, pod.Annotations[orcav1.AnnotationDeadline]); err == nil {
		a.deadline = t
	}
	return a
}

// pastDeadline ends, at its run's deadline, a Pod that has not ended by itself:
// it fails with reason DeadlineExceeded, and once that is published the watcher
// stops the Pod (stop). Before the deadline it returns how long until it.
func pastDeadline(pod *corev1.Pod, c completion, now time.Time) (completion, bool, time.Duration) {
	deadline := attemptOf(pod).deadline
	if deadline.IsZero() {
		return c, false, 0
	}
	if left := deadline.Sub(now); left > 0 {
		return c, false, left
	}
	c.ExitCode, c.Reason, c.FinishedAt, c.EndedByDeadline = noExitCode, orcav1.ReasonDeadlineExceeded, now, true
	return c, true, 0
}

// stopAfter returns the activeDeadlineSeconds that ends pod at once (a field
// that may be lowered on a Pod, never raised): the time it has been active, as
// its kubelet ends a Pod past its deadline; 1 second for a Pod that no node
// started yet. It returns false when the Pod's deadline is that short already.
func stopAfter(pod *corev1.Pod, now time.Time) (int64, bool) {
	active := int64(1)
	if pod.Status.StartTime != nil {
		active = max(int64(math.Ceil(now.Sub(pod.Status.StartTime.Time).Seconds())), 1)
	}
	if ads := pod.Spec.ActiveDeadlineSeconds; ads != nil && *ads <= active {
		return 0, false
	}
	return active, true
}

// stop ends pod (the cache's object, not changed) at its run's deadline.
func (r *podReconciler) stop(ctx context.Context, pod *corev1.Pod) error {
	active, lower := stopAfter(pod, r.now())
	if !lower {
		return nil
	}
	target := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name}}
	patch := fmt.Sprintf(`{"metadata":{"uid":%q},"spec":{"activeDeadlineSeconds":%d}}`, pod.UID, active)
	err := r.client.Patch(ctx, target, client.RawPatch(types.StrategicMergePatchType, []byte(patch)))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("stop pod %s/%s at its run's deadline: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// disruptionReasons are Pod status reasons of a Pod that ended through no fault of
// its own, for Pods without the DisruptionTarget condition (older kubelets).
var disruptionReasons = map[string]bool{"Evicted": true, "Preempting": true, "NodeLost": true, "Shutdown": true, "Terminated": true}

// disrupted reports whether the Pod was evicted, preempted, lost with its node,
// or otherwise disrupted, as Job's podFailurePolicy tells it.
func disrupted(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return disruptionReasons[pod.Status.Reason]
}

// retryPlan is the next attempt of a run.
type retryPlan struct {
	next, failed int32
	at           time.Time
}

// planRetry decides whether the run of the attempt a, which ended as c, goes on
// under policy p (nil: no retries); a Pod replaced by a later start of its Task
// (concurrencyPolicy Replace) ends its run. It marks c as retried, or as timed out when
// the run's deadline passed or would pass before the next attempt.
func planRetry(p *orcav1.RetryPolicy, pod *corev1.Pod, a attempt, c *completion, now time.Time) *retryPlan {
	if c.Succeeded {
		return nil
	}
	if !a.deadline.IsZero() && !c.FinishedAt.Before(a.deadline) {
		c.Reason = orcav1.ReasonDeadlineExceeded
		return nil
	}
	if p == nil || c.Reason == ReasonReplaced {
		// A replaced run ends: its retry would replace the Pod that replaced it.
		return nil
	}
	counts := true
	if disrupted(pod) {
		switch p.OnDisruption {
		case orcav1.DisruptionFail:
			return nil
		case orcav1.DisruptionCount:
		default:
			counts = false
		}
	} else if p.OnExitCodes != nil && !p.OnExitCodes.Matches(c.ExitCode) {
		return nil
	}
	plan := &retryPlan{next: a.number + 1, failed: a.failed, at: now}
	if counts {
		if plan.failed++; plan.failed > p.Limit {
			return nil
		}
		plan.at = now.Add(p.Backoff.Wait(plan.failed))
	}
	if !a.deadline.IsZero() && !plan.at.Before(a.deadline) {
		c.Reason = orcav1.ReasonDeadlineExceeded
		return nil
	}
	c.Retried, c.RetryAt = true, plan.at
	return plan
}

// decide applies the run policies of the Task that started pod to its ended
// attempt c: it fills in c's attempt, and returns the next attempt, or nil when
// the run ends with c.
func (r *podReconciler) decide(ctx context.Context, pod *corev1.Pod, c *completion) (*retryPlan, error) {
	a := attemptOf(pod)
	c.Attempt = a.number
	if c.Succeeded {
		return nil, nil
	}
	var policy *orcav1.RetryPolicy
	key := client.ObjectKey{Namespace: pod.Namespace, Name: taskKey(pod).Name}
	var task orcav1.Task
	err := r.client.Get(ctx, key, &task)
	if apierrors.IsNotFound(err) {
		err = r.reader.Get(ctx, key, &task) // the cache may not have it yet
	}
	switch {
	case apierrors.IsNotFound(err):
		// Gone: its run ends here.
	case err != nil:
		return nil, fmt.Errorf("get task %s: %w", key, err)
	case pod.Annotations[orcav1.AnnotationEventSource] == "" || pod.Annotations[orcav1.AnnotationEventID] == "":
		// A Pod of an older dispatcher does not say what started it: no retry.
	case taskUIDOf(pod) == "" || taskUIDOf(pod) == string(task.UID):
		policy = task.Spec.Retry
	}
	return planRetry(policy, pod, a, c, r.now()), nil
}

// publish publishes the end of an attempt: a retrying event when plan is set,
// else the run's outcome, ev.
func (r *podReconciler) publish(ctx context.Context, pod *corev1.Pod, ev bus.TaskEvent, plan *retryPlan) error {
	if plan == nil {
		return r.bus.PublishTaskEvent(ctx, ev)
	}
	a := attemptOf(pod)
	return r.bus.PublishRetry(ctx, bus.RetryEvent{ID: ev.ID, Source: ev.Source, Retry: bus.TaskRetry{
		TaskResult: ev.Result, NextAttempt: plan.next, RetryAt: plan.at.UTC(), FailedAttempts: plan.failed,
		RunStartedAt: a.runStarted.UTC(), Data: envOf(pod, orcav1.EnvData), Inputs: envOf(pod, orcav1.EnvInputs),
		TriggerSource: pod.Annotations[orcav1.AnnotationEventSource], TriggerID: pod.Annotations[orcav1.AnnotationEventID],
	}, TraceParent: ev.TraceParent, TraceState: ev.TraceState})
}

// envOf returns the value Orca gave the variable name in the Pod's first
// container (every container has the same).
func envOf(pod *corev1.Pod, name string) string {
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range cs {
			for _, e := range c.Env {
				if e.Name == name {
					return e.Value
				}
			}
			return ""
		}
	}
	return ""
}

// afterAttempts says how many attempts a run made, when more than one.
func afterAttempts(n int32) string {
	if n <= 1 {
		return ""
	}
	return fmt.Sprintf(", the last of %d attempts", n)
}
