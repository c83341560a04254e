package ui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/graph"
)

// seedGraph is the seed: ignitor1 -> task1 -success-> task2, task1 -failure-> task1.
func seedGraph() *graph.Graph {
	return graph.Build([]orcav1.Task{
		{ObjectMeta: metav1.ObjectMeta{Name: "task1"}, Spec: orcav1.TaskSpec{StartOnIgnition: []orcav1.ObjectName{"ignitor1"}, StartOnFailure: []orcav1.ObjectName{"task1"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "task2"}, Spec: orcav1.TaskSpec{StartOnSuccess: []orcav1.ObjectName{"task1"}}},
	}, []orcav1.Ignitor{{ObjectMeta: metav1.ObjectMeta{Name: "ignitor1"}, Spec: orcav1.IgnitorSpec{Scheduled: "NOW"}}})
}

var t0 = time.Date(2026, 11, 25, 13, 9, 20, 0, time.UTC)

// events builds what Follow hands over, one sequence number after the other.
type events struct {
	t   *testing.T
	seq uint64
}

func (e *events) ignited(run, name, data string) bus.Seen {
	ig := bus.Ignition{ID: run, Source: "orca/test", Namespace: "default", Name: name, Data: []byte(data)}
	ev, err := ig.Event()
	require.NoError(e.t, err)
	return e.seen(&bus.Delivery{Event: ev, Ignition: &ig})
}

func (e *events) ended(run, task string, succeeded bool, exit int32, message string) bus.Seen {
	// The Pod ran for the second before the event was stored.
	started, finished := t0.Add(time.Duration(e.seq)*time.Second), t0.Add(time.Duration(e.seq+1)*time.Second)
	te := bus.TaskEvent{ID: fmt.Sprintf("pod-uid-%d", e.seq), Source: "orca/watcher", Succeeded: succeeded, Result: bus.TaskResult{
		Task: task, Namespace: "default", Pod: task + "-pod", Run: run, ExitCode: exit, Message: message,
		StartedAt: &started, FinishedAt: finished,
	}}
	ev, err := te.Event()
	require.NoError(e.t, err)
	return e.seen(&bus.Delivery{Event: ev, Task: &te})
}

func (e *events) seen(d *bus.Delivery) bus.Seen {
	e.seq++
	return bus.Seen{Sequence: e.seq, Stored: t0.Add(time.Duration(e.seq) * time.Second), Delivery: d}
}

// TestRunsFollowTheSeedWithARetry plays a run of the seed in which task1 fails
// once: the Tasks' states and the run's steps follow each event.
func TestRunsFollowTheSeedWithARetry(t *testing.T) {
	g, ev, r := seedGraph(), &events{t: t}, newRuns(10)
	state := func(task string) string { return r.tasks[task].State }

	run, changed := r.apply(ev.ignited("run-1", "ignitor1", "the quick brown fox"), g)
	assert.Equal(t, []string{"task1"}, changed)
	assert.Equal(t, StateStarted, state("task1"))
	assert.Equal(t, StateStarted, run.State)
	assert.Equal(t, "ignitor1", run.Initiator)

	run, changed = r.apply(ev.ended("run-1", "task1", false, 1, "disk full"), g)
	assert.Equal(t, []string{"task1"}, changed, "task1 failed and started again")
	assert.Equal(t, StateStarted, state("task1"))
	assert.Equal(t, StateStarted, run.State, "the retry runs")

	run, changed = r.apply(ev.ended("run-1", "task1", true, 0, "4 words"), g)
	assert.Equal(t, []string{"task1", "task2"}, changed)
	assert.Equal(t, StateSucceeded, state("task1"))
	assert.Equal(t, StateStarted, state("task2"))
	assert.Equal(t, map[string]time.Time{"task2": run.Last}, run.Running)

	run, _ = r.apply(ev.ended("run-1", "task2", true, 0, "done"), g)
	assert.Equal(t, StateSucceeded, run.State)
	assert.Empty(t, run.Running)
	assert.Equal(t, StateSucceeded, state("task2"))

	var got []string
	for _, s := range run.Steps {
		got = append(got, fmt.Sprintf("%s %s attempt=%d", s.Kind, s.Name, s.Attempt))
	}
	assert.Equal(t, []string{"ignited ignitor1 attempt=0", "failed task1 attempt=1", "succeeded task1 attempt=2", "succeeded task2 attempt=1"}, got)
	failed := run.Steps[1]
	assert.Equal(t, "task1-pod", failed.Pod)
	assert.Equal(t, int32(1), failed.ExitCode)
	assert.Equal(t, "disk full", failed.Message)
	assert.Equal(t, "ignitor1", run.Initiator)
	assert.Equal(t, "the quick brown fox", run.Steps[0].Data)
	require.NotNil(t, failed.StartedAt)
	assert.Equal(t, time.Second, failed.FinishedAt.Sub(*failed.StartedAt))
	require.NotNil(t, failed.Triggered)
	assert.Equal(t, run.Steps[0].Time, *failed.Triggered, "the ignition started it")
	assert.Equal(t, failed.Time, *run.Steps[2].Triggered, "the failure started the retry")
}

func TestRunEndsFailedWhenATasksLastRunFailed(t *testing.T) {
	g, ev, r := seedGraph(), &events{t: t}, newRuns(10)
	r.apply(ev.ignited("run-1", "ignitor1", ""), g)
	r.apply(ev.ended("run-1", "task1", true, 0, ""), g)
	run, _ := r.apply(ev.ended("run-1", "task2", false, 2, "boom"), g)
	assert.Equal(t, StateFailed, run.State)
	assert.Equal(t, StateFailed, r.tasks["task2"].State)
}

// TestDeadLetterFailsTheRunAndStartsNothing: a dead-lettered ignition was never
// acted upon.
func TestDeadLetterFailsTheRunAndStartsNothing(t *testing.T) {
	g, ev, r := seedGraph(), &events{t: t}, newRuns(10)
	s := ev.ignited("run-1", "ignitor1", "x")
	s.DeadLetter = &bus.DeadLetter{Subject: "orca.ignited.default.ignitor1", Reason: "no Pod could be built", Consumer: "orca-dispatcher"}
	run, changed := r.apply(s, g)
	assert.Empty(t, changed)
	assert.Empty(t, r.tasks)
	assert.Equal(t, StateFailed, run.State)
	assert.Equal(t, StepDeadLetter, run.Steps[0].Kind)
	assert.Equal(t, "no Pod could be built", run.Steps[0].DeadLetterReason)

	run, changed = r.apply(bus.Seen{Sequence: 99, Err: assert.AnError}, g)
	assert.Nil(t, run, "a message that is no event belongs to no run")
	assert.Nil(t, changed)
}

func TestRunsKeepTheMostRecentlyActive(t *testing.T) {
	g, ev, r := seedGraph(), &events{t: t}, newRuns(2)
	r.apply(ev.ignited("old", "ignitor1", ""), g)
	r.apply(ev.ignited("busy", "ignitor1", ""), g)
	r.apply(ev.ended("old", "task1", true, 0, ""), g) // "old" is active again
	r.apply(ev.ignited("new", "ignitor1", ""), g)
	var ids []string
	for _, run := range r.list() {
		ids = append(ids, run.ID)
	}
	assert.Equal(t, []string{"new", "old"}, ids)
}

func TestCutKeepsValidUTF8(t *testing.T) {
	assert.Equal(t, "short", cut("short"))
	long := strings.Repeat("é", maxData) // 2 bytes each
	got := cut(long)
	assert.True(t, strings.HasSuffix(got, "…"))
	assert.LessOrEqual(t, len(got), maxData+len("…"))
	assert.True(t, strings.HasPrefix(long, strings.TrimSuffix(got, "…")))
}
