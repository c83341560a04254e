package watcher

import (
	"cmp"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// historySize is how many ended runs a Task's status keeps. It is also the most
// runs one status write counts: a run counted is in the history until its Pod
// is let go, which is what keeps a run from being counted twice.
const historySize = 10

// endedRun is the run of an ended Pod.
type endedRun struct {
	pod *corev1.Pod
	c   completion
}

// byEnd orders runs by when they ended (a Pod's status says it to the second),
// then by attempt (a run's attempts come one after the other), then by Pod name.
func byEnd(a, b endedRun) int {
	return cmp.Or(a.c.FinishedAt.Compare(b.c.FinishedAt), cmp.Compare(a.c.Attempt, b.c.Attempt), cmp.Compare(a.pod.Name, b.pod.Name))
}

// counted says whether st has the run of the named Pod in its history.
func counted(st *orcav1.TaskStatus, pod string) bool {
	return slices.ContainsFunc(st.History, func(h orcav1.RunRecord) bool { return h.Pod == pod })
}

// nextStatus returns st with the runs counted (oldest first, at most historySize
// of them), active as the Task's Pods that have not ended, and the generation
// observed.
func nextStatus(st orcav1.TaskStatus, generation int64, active []string, runs []endedRun) orcav1.TaskStatus {
	next := *st.DeepCopy()
	for _, r := range runs {
		countRun(&next, r)
	}
	next.Active = nil
	if len(active) > 0 {
		next.Active = slices.Sorted(slices.Values(active))
	}
	next.State = orcav1.TaskPending
	if len(next.Active) > 0 {
		next.State = orcav1.TaskRunning
	}
	next.ObservedGeneration = generation
	return next
}

// countRun adds one run to st: the history, the last success or failure, and
// the count of failures since the last success. Runs are ordered by the time
// they ended (the status keeps it to the second): a success resets the count
// unless a failure that ended later was counted already, and a failure that
// ended before the last success is not counted. When runs are counted in the
// order they ended, as a Task's runs one after the other are, a success resets
// the count and a failure adds one.
func countRun(st *orcav1.TaskStatus, r endedRun) {
	finished := metav1.NewTime(r.c.FinishedAt)
	finished.Time = finished.Rfc3339Copy().Time // as the status will hold it
	if r.c.Succeeded {
		if st.LastSuccess == nil || !finished.Before(st.LastSuccess) {
			st.LastSuccess = &finished
			if st.LastFailure == nil || !finished.Before(st.LastFailure) {
				st.FailuresCount = 0
			}
		}
	} else if !r.c.Retried { // a retried attempt is not the run's end
		if st.LastFailure == nil || st.LastFailure.Before(&finished) {
			st.LastFailure = &finished
		}
		if st.LastSuccess == nil || !finished.Before(st.LastSuccess) {
			st.FailuresCount++
		}
	}
	rec := orcav1.RunRecord{Pod: r.pod.Name, Run: r.pod.Annotations[orcav1.AnnotationRun], Succeeded: r.c.Succeeded,
		ExitCode: r.c.ExitCode, Reason: r.c.Reason, FinishedAt: finished, Attempt: r.c.Attempt, Retried: r.c.Retried}
	st.History = append([]orcav1.RunRecord{rec}, st.History...)[:min(len(st.History)+1, historySize)]
}
