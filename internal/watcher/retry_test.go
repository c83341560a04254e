package watcher

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

func TestPlanRetry(t *testing.T) {
	backoff := &orcav1.Backoff{Duration: &metav1.Duration{Duration: time.Second}, Factor: ptr.To[int32](2), MaxDuration: &metav1.Duration{Duration: 3 * time.Second}}
	policy := func(mut func(*orcav1.RetryPolicy)) *orcav1.RetryPolicy {
		p := &orcav1.RetryPolicy{Limit: 3, Backoff: backoff, OnDisruption: orcav1.DisruptionIgnore}
		if mut != nil {
			mut(p)
		}
		return p
	}
	failed := func(code int32) completion { return completion{ExitCode: code, Reason: "Error", FinishedAt: now} }
	evicted := &corev1.Pod{Status: corev1.PodStatus{Reason: "Evicted"}}
	preempted := &corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}}}
	plain := &corev1.Pod{}
	tests := []struct {
		name       string
		p          *orcav1.RetryPolicy
		pod        *corev1.Pod
		a          attempt
		c          completion
		want       *retryPlan
		wantReason string
	}{
		{"no policy", nil, plain, attempt{number: 1}, failed(1), nil, "Error"},
		{"success", policy(nil), plain, attempt{number: 1}, completion{Succeeded: true}, nil, ""},
		{"first failure waits duration", policy(nil), plain, attempt{number: 1}, failed(1), &retryPlan{next: 2, failed: 1, at: now.Add(time.Second)}, "Error"},
		{"third failure waits factor^2, capped", policy(nil), plain, attempt{number: 3, failed: 2}, failed(1), &retryPlan{next: 4, failed: 3, at: now.Add(3 * time.Second)}, "Error"},
		{"limit reached", policy(nil), plain, attempt{number: 4, failed: 3}, failed(1), nil, "Error"},
		{"limit 0", policy(func(p *orcav1.RetryPolicy) { p.Limit = 0 }), plain, attempt{number: 1}, failed(1), nil, "Error"},
		{"exit code In", policy(func(p *orcav1.RetryPolicy) {
			p.OnExitCodes = &orcav1.ExitCodeRule{Operator: orcav1.ExitCodeIn, Values: []int32{3}}
		}),
			plain, attempt{number: 1}, failed(3), &retryPlan{next: 2, failed: 1, at: now.Add(time.Second)}, "Error"},
		{"exit code not In", policy(func(p *orcav1.RetryPolicy) {
			p.OnExitCodes = &orcav1.ExitCodeRule{Operator: orcav1.ExitCodeIn, Values: []int32{3}}
		}),
			plain, attempt{number: 1}, failed(1), nil, "Error"},
		{"no exit code under NotIn", policy(func(p *orcav1.RetryPolicy) {
			p.OnExitCodes = &orcav1.ExitCodeRule{Operator: orcav1.ExitCodeNotIn, Values: []int32{2}}
		}),
			plain, attempt{number: 1}, failed(-1), &retryPlan{next: 2, failed: 1, at: now.Add(time.Second)}, "Error"},
		{"eviction ignored: not counted, at once", policy(func(p *orcav1.RetryPolicy) { p.Limit = 0 }), evicted, attempt{number: 1}, failed(-1), &retryPlan{next: 2, at: now}, "Error"},
		{"disruption ignored whatever the exit code", policy(func(p *orcav1.RetryPolicy) {
			p.OnExitCodes = &orcav1.ExitCodeRule{Operator: orcav1.ExitCodeIn, Values: []int32{3}}
		}), preempted, attempt{number: 2, failed: 1}, failed(137), &retryPlan{next: 3, failed: 1, at: now}, "Error"},
		{"disruption counted", policy(func(p *orcav1.RetryPolicy) { p.OnDisruption = orcav1.DisruptionCount }), preempted, attempt{number: 1}, failed(-1),
			&retryPlan{next: 2, failed: 1, at: now.Add(time.Second)}, "Error"},
		{"disruption counted past the limit", policy(func(p *orcav1.RetryPolicy) { p.OnDisruption = orcav1.DisruptionCount; p.Limit = 0 }), preempted, attempt{number: 1}, failed(-1), nil, "Error"},
		{"disruption fails the run", policy(func(p *orcav1.RetryPolicy) { p.OnDisruption = orcav1.DisruptionFail }), evicted, attempt{number: 1}, failed(-1), nil, "Error"},
		{"retry due before the deadline", policy(nil), plain, attempt{number: 1, deadline: now.Add(2 * time.Second)}, failed(1),
			&retryPlan{next: 2, failed: 1, at: now.Add(time.Second)}, "Error"},
		{"retry due at the deadline: timed out", policy(nil), plain, attempt{number: 1, deadline: now.Add(time.Second)}, failed(1), nil, orcav1.ReasonDeadlineExceeded},
		{"ended after the deadline", policy(nil), plain, attempt{number: 1, deadline: now.Add(-time.Second)}, failed(1), nil, orcav1.ReasonDeadlineExceeded},
		{"ended after the deadline, no policy", nil, plain, attempt{number: 1, deadline: now}, failed(1), nil, orcav1.ReasonDeadlineExceeded},
		{"ended before the deadline, no policy", nil, plain, attempt{number: 1, deadline: now.Add(time.Second)}, failed(1), nil, "Error"},
		{"replaced: the run ends", policy(nil), plain, attempt{number: 1}, completion{ExitCode: -1, Reason: ReasonReplaced, FinishedAt: now}, nil, ReasonReplaced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			got := planRetry(tt.p, tt.pod, tt.a, &c, now)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantReason, c.Reason)
			assert.Equal(t, got != nil, c.Retried)
			if got != nil {
				assert.Equal(t, got.at, c.RetryAt)
			}
		})
	}
}

func TestAttemptOfAndPastDeadline(t *testing.T) {
	created := now.Add(-time.Hour)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)}}
	assert.Equal(t, attempt{number: 1, runStarted: created}, attemptOf(pod), "a Pod without annotations is a first attempt")
	_, ended, wait := pastDeadline(pod, completion{}, now)
	assert.False(t, ended)
	assert.Zero(t, wait, "no deadline: nothing to wait for")

	pod.Annotations = map[string]string{
		orcav1.AnnotationAttempt: "3", orcav1.AnnotationFailedAttempts: "2",
		orcav1.AnnotationRunStarted: now.Add(-time.Minute).Format(time.RFC3339Nano),
		orcav1.AnnotationDeadline:   now.Add(time.Minute).Format(time.RFC3339Nano),
	}
	assert.Equal(t, attempt{number: 3, failed: 2, runStarted: now.Add(-time.Minute), deadline: now.Add(time.Minute)}, attemptOf(pod))
	_, ended, wait = pastDeadline(pod, completion{}, now)
	assert.False(t, ended)
	assert.Equal(t, time.Minute, wait)
	c, ended, _ := pastDeadline(pod, completion{}, now.Add(time.Minute))
	assert.True(t, ended)
	assert.Equal(t, completion{ExitCode: -1, Reason: orcav1.ReasonDeadlineExceeded, FinishedAt: now.Add(time.Minute), EndedByDeadline: true}, c)

	started := metav1.NewTime(now.Add(-90 * time.Second))
	pod.Status.StartTime = &started
	after, lower := stopAfter(pod, now)
	assert.True(t, lower)
	assert.Equal(t, int64(90), after, "the kubelet ends a Pod active for longer than its deadline")
	pod.Spec.ActiveDeadlineSeconds = &after
	_, lower = stopAfter(pod, now.Add(time.Hour))
	assert.False(t, lower, "never raised: the API server would refuse it")
	pod.Status.StartTime, pod.Spec.ActiveDeadlineSeconds = nil, nil
	after, lower = stopAfter(pod, now)
	assert.True(t, lower)
	assert.Equal(t, int64(1), after)
}
