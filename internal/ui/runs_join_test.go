package ui

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/graph"
)

func (e *events) skipped(run, task, message string) bus.Seen {
	s := bus.TaskSkipped{ID: "skip-" + task, Source: "orca/dispatcher", Result: bus.TaskResult{
		Task: task, Namespace: "default", Run: run, ExitCode: -1, Reason: "ConditionFalse", Message: message, FinishedAt: t0,
	}}
	ev, err := s.Event()
	require.NoError(e.t, err)
	return e.seen(&bus.Delivery{Event: ev, Skipped: &s})
}

// TestRunsShowSkippedTasks: a Task skipped by its condition is a step of the run
// and the Task's state, and starts nothing.
func TestRunsShowSkippedTasks(t *testing.T) {
	g := graph.Build([]orcav1.Task{
		{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: orcav1.TaskSpec{StartOnIgnition: []orcav1.ObjectName{"go"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Spec: orcav1.TaskSpec{StartWhen: &orcav1.StartWhen{Condition: "a.succeeded"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "go"}, Spec: orcav1.TaskSpec{StartOnFailure: []orcav1.ObjectName{"b"}}},
	}, nil)
	ev, r := &events{t: t}, newRuns(10)
	r.apply(ev.ignited("run-1", "go", ""), g)
	r.apply(ev.ended("run-1", "a", false, 1, "no"), g)
	run, changed := r.apply(ev.skipped("run-1", "b", "the condition is false: a failed"), g)
	assert.Equal(t, []string{"b"}, changed, "nothing starts on a skip")
	assert.Equal(t, StateSkipped, r.tasks["b"].State)
	last := run.Steps[len(run.Steps)-1]
	assert.Equal(t, StepSkipped, last.Kind)
	assert.Equal(t, "ConditionFalse", last.Reason)
	assert.Equal(t, "the condition is false: a failed", last.Message)
	assert.Equal(t, StateFailed, run.State, "a failed; the skip adds no failure")
	assert.Empty(t, run.Running)
}
