package nodeagent

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

// Grace periods between SIGTERM and SIGKILL.
const (
	// maxGrace caps a deleted Pod's grace period.
	maxGrace = 10 * time.Second
	// shutdownGrace caps the Pods' grace period when the agent stops.
	shutdownGrace = 3 * time.Second
	// statusWait bounds the wait for a deleted Pod's terminal status to be
	// written before the agent deletes the Pod object.
	statusWait = 10 * time.Second
)

// deleteGrace returns the grace period of a Pod being deleted, capped at maxGrace.
func deleteGrace(pod *corev1.Pod) time.Duration {
	seconds := int64(corev1.DefaultTerminationGracePeriodSeconds)
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		seconds = *pod.DeletionGracePeriodSeconds
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		seconds = *pod.Spec.TerminationGracePeriodSeconds
	}
	return min(time.Duration(max(seconds, 0))*time.Second, maxGrace)
}

// deleteObject deletes the Pod object of a stopped run once virtual-kubelet has
// written its terminal status (or statusWait passed), as the kubelet finishes a
// graceful deletion. Finalizers still hold the object until they are removed.
func (m *podManager) deleteObject(run *podRun) {
	ctx, cancel := context.WithTimeout(m.ctx, statusWait)
	defer cancel()
	m.mu.Lock()
	lister := m.lister
	m.mu.Unlock()
	if lister != nil {
		_ = wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
			pod, err := lister.Pods(run.namespace).Get(run.name)
			if err != nil {
				return apierrors.IsNotFound(err), nil
			}
			return pod.UID != run.uid || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed, nil
		})
	}
	ctx, cancel = context.WithTimeout(m.ctx, statusWait)
	defer cancel()
	err := m.cfg.Client.CoreV1().Pods(run.namespace).Delete(ctx, run.name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      metav1.NewUIDPreconditions(string(run.uid)),
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && m.ctx.Err() == nil {
		run.log.Error(err, "delete pod object")
	}
}
