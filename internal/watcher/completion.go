package watcher

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// completion is how a Pod ended.
type completion struct {
	Succeeded  bool
	ExitCode   int32
	Reason     string
	Message    string
	FinishedAt time.Time
}

// noExitCode is the exit code reported when no container reported one.
const noExitCode = -1

// classify says whether pod has ended and how. When it has not, wait is how long
// until a deleted Pod that no kubelet ends counts as ended (zero: wait for change).
func classify(pod *corev1.Pod, now time.Time) (c completion, ended bool, wait time.Duration) {
	statuses := append(append([]corev1.ContainerStatus{}, pod.Status.ContainerStatuses...), pod.Status.InitContainerStatuses...)
	c.Message = message(statuses)
	c.FinishedAt = finishedAt(statuses, now)
	code, reason := firstFailure(statuses)

	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		if code == 0 {
			c.Succeeded = true
			return c, true, 0
		}
		c.ExitCode, c.Reason = code, reason
		return c, true, 0
	case corev1.PodFailed:
		c.ExitCode, c.Reason = code, reason
		if code == 0 {
			c.ExitCode = noExitCode
		}
		if pod.Status.Reason != "" {
			// Evicted, DeadlineExceeded, NodeLost, ... say more than a container.
			c.Reason = pod.Status.Reason
		}
		if c.Reason == "" {
			c.Reason = "Failed"
		}
		return c, true, 0
	}
	if pod.DeletionTimestamp == nil {
		return c, false, 0
	}
	// Deleted before it ended: a kubelet reports the final phase within the grace
	// period; past it (or with no node at all) the Pod counts as failed.
	if left := pod.DeletionTimestamp.Sub(now); left > 0 && pod.Spec.NodeName != "" {
		return c, false, left
	}
	c.ExitCode, c.Reason = noExitCode, "Deleted"
	if pod.Status.Reason != "" {
		c.Reason = pod.Status.Reason
	}
	return c, true, 0
}

// message returns the first termination message in statuses.
func message(statuses []corev1.ContainerStatus) string {
	for _, s := range statuses {
		if t := s.State.Terminated; t != nil && t.Message != "" {
			return t.Message
		}
	}
	return ""
}

// firstFailure returns the exit code and reason of the first container that
// exited non-zero.
func firstFailure(statuses []corev1.ContainerStatus) (int32, string) {
	for _, s := range statuses {
		if t := s.State.Terminated; t != nil && t.ExitCode != 0 {
			reason := t.Reason
			if reason == "" {
				reason = "Error"
			}
			return t.ExitCode, reason
		}
	}
	return 0, ""
}

func finishedAt(statuses []corev1.ContainerStatus, now time.Time) time.Time {
	var last time.Time
	for _, s := range statuses {
		if t := s.State.Terminated; t != nil && t.FinishedAt.After(last) {
			last = t.FinishedAt.Time
		}
	}
	if last.IsZero() {
		return now
	}
	return last
}
