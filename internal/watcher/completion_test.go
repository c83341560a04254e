package watcher

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func terminated(name string, code int32, reason, msg string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: code, Reason: reason, Message: msg, FinishedAt: metav1.NewTime(time.Unix(100, 0)),
	}}}
}

func TestClassify(t *testing.T) {
	now := time.Unix(1000, 0)
	deleted := func(at time.Time, node string) *corev1.Pod {
		ts := metav1.NewTime(at)
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &ts}, Spec: corev1.PodSpec{NodeName: node},
			Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	}
	tests := []struct {
		name  string
		pod   *corev1.Pod
		ended bool
		want  completion
		wait  time.Duration
	}{{
		name:  "running",
		pod:   &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning}},
		ended: false,
	}, {
		name: "succeeded, message from the first container that wrote one",
		pod: &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{
			terminated("a", 0, "Completed", ""), terminated("b", 0, "Completed", "from b"),
		}}},
		ended: true,
		want:  completion{Succeeded: true, Message: "from b", FinishedAt: time.Unix(100, 0)},
	}, {
		name: "exit code 255",
		pod: &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{
			terminated("a", 255, "Error", "bad"),
		}}},
		ended: true,
		want:  completion{ExitCode: 255, Reason: "Error", Message: "bad", FinishedAt: time.Unix(100, 0)},
	}, {
		name: "OOMKilled",
		pod: &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{
			terminated("a", 137, "OOMKilled", ""),
		}}},
		ended: true,
		want:  completion{ExitCode: 137, Reason: "OOMKilled", FinishedAt: time.Unix(100, 0)},
	}, {
		name:  "evicted, no container exit code",
		pod:   &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"}},
		ended: true,
		want:  completion{ExitCode: noExitCode, Reason: "Evicted", FinishedAt: now},
	}, {
		name: "failed init container reports its message",
		pod: &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, InitContainerStatuses: []corev1.ContainerStatus{
			terminated("init", 3, "Error", "init broke"),
		}}},
		ended: true,
		want:  completion{ExitCode: 3, Reason: "Error", Message: "init broke", FinishedAt: time.Unix(100, 0)},
	}, {
		name: "phase Succeeded but a container exited non-zero",
		pod: &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{
			terminated("a", 0, "Completed", ""), terminated("b", 1, "Error", ""),
		}}},
		ended: true,
		want:  completion{ExitCode: 1, Reason: "Error", FinishedAt: time.Unix(100, 0)},
	}, {
		name:  "deleted on a node, within the grace period",
		pod:   deleted(now.Add(10*time.Second), "node-1"),
		ended: false,
		wait:  10 * time.Second,
	}, {
		name:  "deleted on a node, past the grace period (node gone)",
		pod:   deleted(now.Add(-time.Second), "node-1"),
		ended: true,
		want:  completion{ExitCode: noExitCode, Reason: "Deleted", FinishedAt: now},
	}, {
		name:  "deleted before it was scheduled",
		pod:   deleted(now.Add(30*time.Second), ""),
		ended: true,
		want:  completion{ExitCode: noExitCode, Reason: "Deleted", FinishedAt: now},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ended, wait := classify(tt.pod, now)
			assert.Equal(t, tt.ended, ended)
			assert.Equal(t, tt.wait, wait)
			if tt.ended {
				assert.Equal(t, tt.want, got)
			}
		})
	}
}
