package bus_test

import (
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/bus"
)

func TestRetryAndHaltEventsRoundTrip(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	ch, _ := collect(t, b, "policies", []string{bus.SubjectAll}, nil)

	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	re := bus.RetryEvent{ID: "pod-uid-1", Source: "orca/watcher", Retry: bus.TaskRetry{
		TaskResult: bus.TaskResult{Task: "task1.v2", Namespace: "ns1", Pod: "task1-abc", Run: "run-7", Initiator: "ignitor1",
			ExitCode: 3, Message: "boom", Reason: "Error", FinishedAt: at, Attempt: 1},
		NextAttempt: 2, RetryAt: at.Add(10 * time.Second), FailedAttempts: 1, RunStartedAt: at.Add(-time.Minute),
		Data: "input «x»", TriggerSource: "orca/scheduler", TriggerID: "ig-1",
	}}
	require.NoError(t, b.PublishRetry(t.Context(), re))
	d := receive(t, ch)
	assert.Equal(t, "orca.task.retrying.ns1.task1.v2", d.Subject)
	assert.Equal(t, bus.TypeTaskRetrying, d.Event.Type())
	assert.Equal(t, "run-7", d.Run())
	require.NotNil(t, d.Retry)
	assert.Nil(t, d.Task, "a retrying event is not a task outcome")
	assert.Equal(t, re.Retry.Data, d.Retry.Retry.Data)
	assert.Equal(t, int32(2), d.Retry.Retry.NextAttempt)
	assert.Equal(t, int32(1), d.Retry.Retry.Attempt)
	assert.Equal(t, int32(3), d.Retry.Retry.ExitCode)
	assert.True(t, re.Retry.RetryAt.Equal(d.Retry.Retry.RetryAt))
	assert.Equal(t, "ig-1", d.Retry.Retry.TriggerID)

	he := bus.HaltEvent{ID: "ns1/task1-xyz", Source: "orca/dispatcher", Halt: bus.TaskHalt{
		Task: "task1.v2", Namespace: "ns1", Run: "run-7", Initiator: "task0", Attempt: 1, Steps: 10, Limit: 10,
		Reason: "StepLimit", Message: "run run-7 started 10 Pods", HaltedAt: at,
	}}
	require.NoError(t, b.PublishHalt(t.Context(), he))
	d = receive(t, ch)
	assert.Equal(t, "orca.task.halted.ns1.task1.v2", d.Subject)
	require.NotNil(t, d.Halt)
	assert.Equal(t, he.Halt, d.Halt.Halt)
}

func TestRetryEventWithoutTriggerIsDeadLettered(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	nc := rawConn(t, srv.URL())
	dead, err := nc.SubscribeSync(bus.FilterDeadLetter)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	collect(t, b, "policies", []string{bus.SubjectTaskRetrying + ".>"}, nil)
	msg := nats.NewMsg("orca.task.retrying.ns1.task1")
	for k, v := range map[string]string{
		"ce-specversion": "1.0", "ce-id": "x", "ce-source": "someone", "ce-type": bus.TypeTaskRetrying, "content-type": "application/json",
	} {
		msg.Header.Set(k, v)
	}
	msg.Data = []byte(`{"task": "task1", "nextAttempt": 2}`)
	require.NoError(t, nc.PublishMsg(msg))
	got, err := dead.NextMsg(10 * time.Second)
	require.NoError(t, err)
	assert.Contains(t, got.Header.Get(bus.HeaderDeadLetterReason), "triggerSource and triggerID")
}

func TestCountersAreAtomicAcrossConnections(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b1, b2 := connect(t, srv.URL()), connect(t, srv.URL())
	const perWriter, limit = 40, 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for _, b := range []*bus.Bus{b1, b2, b1, b2} {
		c := b.Counters("steps")
		wg.Go(func() {
			for range perWriter {
				before, after, err := c.Update(t.Context(), func(cur int64) int64 { return min(cur+1, limit) }, "ns", "run-1")
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				granted += int(after - before)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, limit, granted, "every increment below the limit granted once")
	_, after, err := b1.Counters("steps").Update(t.Context(), func(cur int64) int64 { return cur - 5 }, "ns", "run-1")
	require.NoError(t, err)
	assert.Equal(t, int64(limit-5), after)
	before, after, err := b2.Counters("steps").Update(t.Context(), func(cur int64) int64 { return cur }, "ns", "run-2")
	require.NoError(t, err)
	assert.Zero(t, before+after, "another run counts apart")
}
