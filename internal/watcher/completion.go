package watcher

import (
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// completion is how a Pod ended.
type completion struct {
	Succeeded        bool
	ExitCode         int32
	Reason           string
	Message          string
	MessageTruncated bool
	FinishedAt       time.Time

	// Attempt is the number of the Pod's attempt in its run. Retried says that the
	// run goes on with another attempt at RetryAt. EndedByDeadline says that the
	// watcher ended the Pod at its run's deadline. See retry.go.
	Attempt         int32
	Retried         bool
	RetryAt         time.Time
	EndedByDeadline bool
}

// noExitCode is the exit code reported when no container reported one.
const noExitCode = -1

// The kubelet's limits on termination messages (k8s.io/kubernetes
// pkg/kubelet/container): it reads the last maxMessage bytes of the file, or with
// FallbackToLogsOnError and an empty file after a failure the last maxLogMessage
// bytes and at most maxLogLines lines of the log; then it cuts each message of the
// Pod to its first maxPodMessages/(number of containers) bytes.
const (
	maxMessage     = 4 << 10
	maxPodMessages = 12 << 10
	maxLogMessage  = 2 << 10
	maxLogLines    = 80
)

// classify says whether pod has ended and how. When it has not, wait is how long
// until a deleted Pod that no kubelet ends counts as ended (zero: wait for change).
func classify(pod *corev1.Pod, now time.Time) (c completion, ended bool, wait time.Duration) {
	run := runContainers(pod)
	c.Message, c.MessageTruncated = message(pod, run)
	c.FinishedAt = finishedAt(run, now)
	code, reason := firstFailure(run)

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

// container is one container of a run with its status.
type container struct {
	spec   *corev1.Container // nil when the spec does not name it
	status corev1.ContainerStatus
}

// runContainers returns the containers that decide how the run ended, in the
// template's order (the kubelet sorts containerStatuses by name): the containers,
// then the init containers. Native sidecars (init containers with restartPolicy
// Always) are left out: the kubelet stops them when the run is over, and how they
// exit says nothing about it. Statuses of containers that the spec does not name
// come last, as reported.
func runContainers(pod *corev1.Pod) []container {
	var out []container
	named := map[string]bool{}
	add := func(specs []corev1.Container, statuses []corev1.ContainerStatus) {
		for i := range specs {
			spec := &specs[i]
			named[spec.Name] = true
			if spec.RestartPolicy != nil && *spec.RestartPolicy == corev1.ContainerRestartPolicyAlways {
				continue
			}
			for _, s := range statuses {
				if s.Name == spec.Name {
					out = append(out, container{spec: spec, status: s})
					break
				}
			}
		}
	}
	add(pod.Spec.Containers, pod.Status.ContainerStatuses)
	add(pod.Spec.InitContainers, pod.Status.InitContainerStatuses)
	for _, s := range slices.Concat(pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses) {
		if !named[s.Name] {
			out = append(out, container{status: s})
		}
	}
	return out
}

// message returns the first termination message of run, and whether the kubelet
// probably cut it: it is as long as the kubelet keeps (see maxMessage).
func message(pod *corev1.Pod, run []container) (string, bool) {
	for _, c := range run {
		t := c.status.State.Terminated
		if t == nil || t.Message == "" {
			continue
		}
		limit := maxMessage
		if n := len(pod.Spec.Containers) + len(pod.Spec.InitContainers) + len(pod.Spec.EphemeralContainers); n > 0 {
			limit = min(limit, maxPodMessages/n)
		}
		fromLogs := c.spec != nil && c.spec.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError && t.ExitCode != 0
		if fromLogs {
			limit = min(limit, maxLogMessage)
		}
		cut := len(t.Message) >= limit || fromLogs && strings.Count(strings.TrimSuffix(t.Message, "\n"), "\n")+1 >= maxLogLines
		return t.Message, cut
	}
	return "", false
}

// firstFailure returns the exit code and reason of the first container that
// exited non-zero.
func firstFailure(run []container) (int32, string) {
	for _, c := range run {
		if t := c.status.State.Terminated; t != nil && t.ExitCode != 0 {
			reason := t.Reason
			if reason == "" {
				reason = "Error"
			}
			return t.ExitCode, reason
		}
	}
	return 0, ""
}

// finishedAt returns when the last container of run ended, or now when none did.
func finishedAt(run []container, now time.Time) time.Time {
	var last time.Time
	for _, c := range run {
		if t := c.status.State.Terminated; t != nil && t.FinishedAt.After(last) {
			last = t.FinishedAt.Time
		}
	}
	if last.IsZero() {
		return now
	}
	return last
}
