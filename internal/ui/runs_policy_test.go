package ui

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/graph"
)

func (e *events) retrying(run, task string, attempt int32, exit int32) bus.Seen {
	finished := t0.Add(time.Duration(e.seq+1) * time.Second)
	re := bus.RetryEvent{ID: "pod-uid-retry", Source: "orca/watcher", Retry: bus.TaskRetry{
		TaskResult: bus.TaskResult{Task: task, Namespace: "default", Pod: task + "-pod", Run: run, ExitCode: exit,
			Reason: "Error", FinishedAt: finished, Attempt: attempt},
		NextAttempt: attempt + 1, RetryAt: finished.Add(time.Second), TriggerSource: "orca/test", TriggerID: run,
	}}
	ev, err := re.Event()
	require.NoError(e.t, err)
	return e.seen(&bus.Delivery{Event: ev, Retry: &re})
}

func (e *events) halted(run, task string) bus.Seen {
	he := bus.HaltEvent{ID: "default/" + task + "-pod", Source: "orca/dispatcher", Halt: bus.TaskHalt{
		Task: task, Namespace: "default", Run: run, Initiator: "task1", Steps: 3, Limit: 3,
		Reason: "RunHalted", Message: "run has started 3 Pods", HaltedAt: t0,
	}}
	ev, err := he.Event()
	require.NoError(e.t, err)
	return e.seen(&bus.Delivery{Event: ev, Halt: &he})
}

// TestRunsShowRetriesAndHalts: an attempt that a retry follows is a step of its
// own, keeps its Task running and starts nothing; the final outcome counts the
// attempts; a halted start ends the run as failed.
func TestRunsShowRetriesAndHalts(t *testing.T) {
	g := graph.Build([]orcav1.Task{
		{ObjectMeta: metav1.ObjectMeta{Name: "task1"}, Spec: orcav1.TaskSpec{StartOnIgnition: []orcav1.ObjectName{"go"},
			Retry: &orcav1.RetryPolicy{Limit: 2}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "task2"}, Spec: orcav1.TaskSpec{StartOnFailure: []orcav1.ObjectName{"task1"}}},
	}, nil)
	ev, r := &events{t: t}, newRuns(10)
	r.apply(ev.ignited("run-1", "go", ""), g)
	run, changed := r.apply(ev.retrying("run-1", "task1", 1, 3), g)
	assert.Equal(t, []string{"task1"}, changed, "a retry starts no Task on failure")
	assert.Equal(t, StateRetrying, r.tasks["task1"].State)
	assert.Contains(t, run.Running, "task1", "its next attempt is on its way")
	assert.Equal(t, StateStarted, run.State)
	step := run.Steps[len(run.Steps)-1]
	assert.Equal(t, StepRetrying, step.Kind)
	assert.Equal(t, 1, step.Attempt)
	assert.Equal(t, int32(3), step.ExitCode)
	require.NotNil(t, step.RetryAt)

	te := bus.TaskEvent{ID: "pod-uid-2", Source: "orca/watcher", Succeeded: false, Result: bus.TaskResult{
		Task: "task1", Namespace: "default", Pod: "task1-pod-2", Run: "run-1", ExitCode: 3, FinishedAt: t0, Attempt: 2}}
	e, err := te.Event()
	require.NoError(t, err)
	run, changed = r.apply(ev.seen(&bus.Delivery{Event: e, Task: &te}), g)
	assert.Equal(t, []string{"task1", "task2"}, changed, "the final failure starts task2")
	assert.Equal(t, 2, run.Steps[len(run.Steps)-1].Attempt)

	run, _ = r.apply(ev.halted("run-1", "task2"), g)
	assert.Equal(t, StateHalted, r.tasks["task2"].State)
	assert.NotContains(t, run.Running, "task2")
	assert.Equal(t, StateFailed, run.State)
	assert.Equal(t, StepHalted, run.Steps[len(run.Steps)-1].Kind)
}
