package watcher

import (
	"testing"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

func TestCountRun(t *testing.T) {
	run := func(pod string, s int, ok bool) endedRun {
		return endedRun{pod: testPod(pod, at(s).Time, 0), c: completion{Succeeded: ok, FinishedAt: at(s).Time}}
	}
	tests := []struct {
		name          string
		status        orcav1.TaskStatus
		runs          []endedRun
		failures      int32
		success, fail *metav1.Time
	}{{
		name:     "failures one after the other count up",
		runs:     []endedRun{run("a", 1, false), run("b", 2, false)},
		failures: 2, fail: at(2),
	}, {
		name:     "a success resets the count",
		runs:     []endedRun{run("a", 1, false), run("b", 2, true)},
		failures: 0, success: at(2), fail: at(1),
	}, {
		name:     "a failure after the last success counts",
		status:   orcav1.TaskStatus{LastSuccess: at(5)},
		runs:     []endedRun{run("a", 6, false)},
		failures: 1, success: at(5), fail: at(6),
	}, {
		name:     "a failure in the same second as the last success counts",
		status:   orcav1.TaskStatus{LastSuccess: at(5)},
		runs:     []endedRun{run("a", 5, false)},
		failures: 1, success: at(5), fail: at(5),
	}, {
		name:     "a failure that ended before the last success is not counted",
		status:   orcav1.TaskStatus{LastSuccess: at(5)},
		runs:     []endedRun{run("a", 4, false)},
		failures: 0, success: at(5), fail: at(4),
	}, {
		name:     "a success that ended before a counted failure does not reset",
		status:   orcav1.TaskStatus{LastFailure: at(5), FailuresCount: 2},
		runs:     []endedRun{run("a", 4, true)},
		failures: 2, success: at(4), fail: at(5),
	}, {
		name:     "an older success keeps the last success",
		status:   orcav1.TaskStatus{LastSuccess: at(5)},
		runs:     []endedRun{run("a", 3, true)},
		failures: 0, success: at(5),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.status
			for _, r := range tt.runs {
				countRun(&st, r)
			}
			assert.Equal(t, tt.failures, st.FailuresCount, "failures since the last success")
			assert.True(t, equalTime(tt.success, st.LastSuccess), "last success %v, want %v", st.LastSuccess, tt.success)
			assert.True(t, equalTime(tt.fail, st.LastFailure), "last failure %v, want %v", st.LastFailure, tt.fail)
			assert.Equal(t, tt.runs[len(tt.runs)-1].pod.Name, st.History[0].Pod, "newest first")
		})
	}
}

func TestHistoryKeepsTheLastRuns(t *testing.T) {
	var st orcav1.TaskStatus
	for i := range historySize + 3 {
		countRun(&st, endedRun{pod: testPod(string(rune('a'+i)), at(i).Time, 0), c: completion{Succeeded: true, FinishedAt: at(i).Time}})
	}
	assert.Len(t, st.History, historySize)
	assert.Equal(t, string(rune('a'+historySize+2)), st.History[0].Pod)
}

func equalTime(a, b *metav1.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}
