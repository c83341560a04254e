package watcher

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func terminated(name string, code int32, reason, msg string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: code, Reason: reason, Message: msg, FinishedAt: metav1.NewTime(time.Unix(100, 0)),
	}}}
}

// classifyCase is one case of TestClassify.
type classifyCase struct {
	name  string
	pod   *corev1.Pod
	ended bool
	want  completion
	wait  time.Duration
}

func TestClassify(t *testing.T) {
	now := time.Unix(1000, 0)
	deleted := func(at time.Time, node string) *corev1.Pod {
		ts := metav1.NewTime(at)
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &ts}, Spec: corev1.PodSpec{NodeName: node},
			Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	}
	tests := []classifyCase{{
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
	tests = append(tests, completionDetails()...)
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

// succeeded returns a Pod with these containers and init containers (a "+"
// suffix makes a native sidecar), Succeeded with these statuses.
func succeeded(containers, inits []string, statuses, initStatuses []corev1.ContainerStatus) *corev1.Pod {
	pod := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: statuses, InitContainerStatuses: initStatuses}}
	for _, name := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: name})
	}
	for _, name := range inits {
		c := corev1.Container{Name: strings.TrimSuffix(name, "+")}
		if strings.HasSuffix(name, "+") {
			c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		}
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, c)
	}
	return pod
}

// completionDetails are the cases of sidecars, message order and truncation.
func completionDetails() []classifyCase {
	at := time.Unix(100, 0)
	long := func(n int) string { return strings.Repeat("m", n) }
	logs := succeeded([]string{"main"}, nil, []corev1.ContainerStatus{terminated("main", 1, "Error", long(100))}, nil)
	logs.Status.Phase = corev1.PodFailed
	logs.Spec.Containers[0].TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	logLines := logs.DeepCopy()
	logLines.Status.ContainerStatuses[0].State.Terminated.Message = strings.Repeat("line\n", 80)
	logBytes := logs.DeepCopy()
	logBytes.Status.ContainerStatuses[0].State.Terminated.Message = long(2048)
	return []classifyCase{{
		name: "a native sidecar that exits non-zero when stopped does not fail the run",
		pod: succeeded([]string{"main"}, []string{"proxy+", "setup"},
			[]corev1.ContainerStatus{terminated("main", 0, "Completed", "ok")},
			[]corev1.ContainerStatus{terminated("proxy", 143, "Error", "sidecar"), terminated("setup", 0, "Completed", "")}),
		ended: true,
		want:  completion{Succeeded: true, Message: "ok", FinishedAt: at},
	}, {
		name: "a sidecar's message is not the run's",
		pod: succeeded([]string{"main"}, []string{"proxy+"},
			[]corev1.ContainerStatus{terminated("main", 0, "Completed", "")},
			[]corev1.ContainerStatus{terminated("proxy", 0, "Completed", "sidecar")}),
		ended: true,
		want:  completion{Succeeded: true, FinishedAt: at},
	}, {
		name: "the message of the first container in template order, not in name order",
		pod: succeeded([]string{"zeta", "alpha"}, nil,
			[]corev1.ContainerStatus{terminated("alpha", 0, "Completed", "from alpha"), terminated("zeta", 0, "Completed", "from zeta")}, nil),
		ended: true,
		want:  completion{Succeeded: true, Message: "from zeta", FinishedAt: at},
	}, {
		name: "the first failure in template order",
		pod: func() *corev1.Pod {
			p := succeeded([]string{"zeta", "alpha"}, nil,
				[]corev1.ContainerStatus{terminated("alpha", 2, "Error", ""), terminated("zeta", 3, "OOMKilled", "")}, nil)
			p.Status.Phase = corev1.PodFailed
			return p
		}(),
		ended: true,
		want:  completion{ExitCode: 3, Reason: "OOMKilled", FinishedAt: at},
	}, {
		name:  "4096 bytes from one container: cut by the kubelet",
		pod:   succeeded([]string{"main"}, nil, []corev1.ContainerStatus{terminated("main", 0, "Completed", long(4096))}, nil),
		ended: true,
		want:  completion{Succeeded: true, Message: long(4096), MessageTruncated: true, FinishedAt: at},
	}, {
		name:  "4095 bytes from one container: whole",
		pod:   succeeded([]string{"main"}, nil, []corev1.ContainerStatus{terminated("main", 0, "Completed", long(4095))}, nil),
		ended: true,
		want:  completion{Succeeded: true, Message: long(4095), FinishedAt: at},
	}, {
		name: "five containers share 12 KiB: 2457 bytes each",
		pod: succeeded([]string{"a", "b", "c", "d"}, []string{"init"},
			[]corev1.ContainerStatus{terminated("a", 0, "Completed", long(2457))}, nil),
		ended: true,
		want:  completion{Succeeded: true, Message: long(2457), MessageTruncated: true, FinishedAt: at},
	}, {
		name:  "a failure's log as the message: 100 bytes are whole",
		pod:   logs,
		ended: true,
		want:  completion{ExitCode: 1, Reason: "Error", Message: long(100), FinishedAt: at},
	}, {
		name:  "a failure's log as the message: 2048 bytes are cut",
		pod:   logBytes,
		ended: true,
		want:  completion{ExitCode: 1, Reason: "Error", Message: long(2048), MessageTruncated: true, FinishedAt: at},
	}, {
		name:  "a failure's log as the message: 80 lines are cut",
		pod:   logLines,
		ended: true,
		want:  completion{ExitCode: 1, Reason: "Error", Message: strings.Repeat("line\n", 80), MessageTruncated: true, FinishedAt: at},
	}}
}
