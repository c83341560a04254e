package nodeagent

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podIP is the address of every Pod: containers are processes on the host.
const podIP = "127.0.0.1"

// refreshStatus recomputes the Pod's status from its containers' states, as the
// kubelet computes it for restartPolicy Never. r.mu must be held. Fields the agent
// does not own, such as qosClass, are kept.
func (r *podRun) refreshStatus() {
	st := &r.pod.Status
	st.Phase = r.phase()
	st.HostIP = r.m.cfg.NodeIP
	st.HostIPs = []corev1.HostIP{{IP: r.m.cfg.NodeIP}}
	st.PodIP = podIP
	st.PodIPs = []corev1.PodIP{{IP: podIP}}
	st.ObservedGeneration = r.pod.Generation
	st.InitContainerStatuses = statuses(r.inits)
	st.ContainerStatuses = statuses(r.containers)

	terminal := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	var uninitialized, unready []string
	for _, c := range r.inits {
		if !c.succeededLocked() {
			uninitialized = append(uninitialized, c.spec.Name)
		}
	}
	for _, c := range r.containers {
		if c.state.Running == nil {
			unready = append(unready, c.spec.Name)
		}
	}

	now := metav1.Now()
	set := func(t corev1.PodConditionType, ok bool, reason, message string) {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, ObservedGeneration: r.pod.Generation}
		if !ok {
			c.Status, c.Reason, c.Message = corev1.ConditionFalse, reason, message
		}
		st.Conditions = setCondition(st.Conditions, c, now)
	}
	set(corev1.PodReadyToStartContainers, !terminal, "", "")
	set(corev1.PodInitialized, len(uninitialized) == 0, "ContainersNotInitialized",
		fmt.Sprintf("containers with incomplete status: %v", uninitialized))
	readyReason, readyMessage := "ContainersNotReady", fmt.Sprintf("containers with unready status: %v", unready)
	if st.Phase == corev1.PodSucceeded {
		readyReason, readyMessage = "PodCompleted", ""
	}
	set(corev1.PodReady, len(unready) == 0 && !terminal, readyReason, readyMessage)
	set(corev1.ContainersReady, len(unready) == 0 && !terminal, readyReason, readyMessage)
	set(corev1.PodScheduled, true, "", "")
}

// phase returns the Pod's phase: Failed when an init container failed, Pending
// until all init containers succeeded and every container started, Running while
// a container runs, then Succeeded when all exited 0 and Failed otherwise.
func (r *podRun) phase() corev1.PodPhase {
	for _, c := range r.inits {
		switch {
		case c.state.Terminated == nil:
			return corev1.PodPending
		case c.state.Terminated.ExitCode != 0:
			return corev1.PodFailed
		}
	}
	waiting, running, failed := 0, 0, 0
	for _, c := range r.containers {
		switch {
		case c.state.Waiting != nil:
			waiting++
		case c.state.Running != nil:
			running++
		case c.state.Terminated.ExitCode != 0:
			failed++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case failed > 0:
		return corev1.PodFailed
	default:
		return corev1.PodSucceeded
	}
}

func statuses(cs []*containerRun) []corev1.ContainerStatus {
	if len(cs) == 0 {
		return nil
	}
	out := make([]corev1.ContainerStatus, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.status())
	}
	return out
}

// setCondition puts c into conds, keeping its last transition time when its
// status did not change.
func setCondition(conds []corev1.PodCondition, c corev1.PodCondition, now metav1.Time) []corev1.PodCondition {
	for i := range conds {
		if conds[i].Type != c.Type {
			continue
		}
		c.LastTransitionTime = conds[i].LastTransitionTime
		if conds[i].Status != c.Status || c.LastTransitionTime.IsZero() {
			c.LastTransitionTime = now
		}
		conds[i] = c
		return conds
	}
	c.LastTransitionTime = now
	return append(conds, c)
}
