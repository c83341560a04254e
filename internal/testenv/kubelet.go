package testenv

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Kubelet plays the kubelet for Pods that no node runs: it writes their status as
// a kubelet would, through the status subresource.
type Kubelet struct {
	Client client.Client
}

// Start marks the Pod Running with every container running.
func (k Kubelet) Start(ctx context.Context, key types.NamespacedName) error {
	return k.update(ctx, key, func(pod *corev1.Pod) {
		now := metav1.Now()
		pod.Status.Phase = corev1.PodRunning
		pod.Status.StartTime = &now
		pod.Status.ContainerStatuses = nil
		for _, c := range pod.Spec.Containers {
			pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: c.Name, Image: c.Image, Ready: true, Started: ptrTo(true),
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
			})
		}
	})
}

// Succeed ends the Pod Succeeded: every container exited 0, and the first one
// wrote message as its termination message.
func (k Kubelet) Succeed(ctx context.Context, key types.NamespacedName, message string) error {
	return k.End(ctx, key, 0, message)
}

// End ends the Pod with the first container's exit code and termination message;
// the other containers exit 0. The phase is Succeeded for 0 and Failed otherwise.
func (k Kubelet) End(ctx context.Context, key types.NamespacedName, exitCode int32, message string) error {
	return k.update(ctx, key, end(exitCode, message))
}

// EndCached is End starting from a copy of the Pod that the caller has, from an
// informer say: one write instead of a read and a write, unless it conflicts.
func (k Kubelet) EndCached(ctx context.Context, pod *corev1.Pod, exitCode int32, message string) error {
	return k.updateFrom(ctx, pod, client.ObjectKeyFromObject(pod), end(exitCode, message))
}

func end(exitCode int32, message string) func(*corev1.Pod) {
	return func(pod *corev1.Pod) {
		now := metav1.Now()
		if pod.Status.StartTime == nil {
			pod.Status.StartTime = &now
		}
		pod.Status.Phase = corev1.PodSucceeded
		if exitCode != 0 {
			pod.Status.Phase = corev1.PodFailed
		}
		pod.Status.ContainerStatuses = nil
		for i, c := range pod.Spec.Containers {
			term := &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: *pod.Status.StartTime, FinishedAt: now}
			if i == 0 {
				term.ExitCode, term.Message = exitCode, message
				if exitCode != 0 {
					term.Reason = "Error"
				}
			}
			pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: c.Name, Image: c.Image, State: corev1.ContainerState{Terminated: term},
			})
		}
	}
}

// SetStatus replaces the Pod's status with the one that mutate writes.
func (k Kubelet) SetStatus(ctx context.Context, key types.NamespacedName, mutate func(*corev1.PodStatus)) error {
	return k.update(ctx, key, func(pod *corev1.Pod) { mutate(&pod.Status) })
}

func (k Kubelet) update(ctx context.Context, key types.NamespacedName, mutate func(*corev1.Pod)) error {
	return k.updateFrom(ctx, nil, key, mutate)
}

// updateFrom writes the status that mutate makes, first from a copy of cached
// when it is set, then from the Pod as read after each conflict.
func (k Kubelet) updateFrom(ctx context.Context, cached *corev1.Pod, key types.NamespacedName, mutate func(*corev1.Pod)) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod := &corev1.Pod{}
		if cached != nil {
			pod, cached = cached.DeepCopy(), nil
		} else if err := k.Client.Get(ctx, key, pod); err != nil {
			return err
		}
		mutate(pod)
		return k.Client.Status().Update(ctx, pod)
	})
	if err != nil {
		return fmt.Errorf("set status of pod %s: %w", key, err)
	}
	return nil
}

func ptrTo[T any](v T) *T { return &v }

// Eventually polls cond every 20ms until it returns true or the timeout passes, and
// returns the last error cond gave when it never did.
func Eventually(ctx context.Context, timeout time.Duration, cond func(ctx context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("condition not met in %s: last error: %v", timeout, last)
		case <-tick.C:
		}
	}
}
