package bus_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

func TestSkippedEventsAndJoinTimersRoundTrip(t *testing.T) {
	srv := startNATS(t, t.TempDir(), -1)
	b := connect(t, srv.URL())
	ch, _ := collect(t, b, "joins", []string{bus.SubjectTaskSkipped + ".>", bus.SubjectJoinTimer + ".>"}, nil)

	finished := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	skipped := bus.TaskSkipped{ID: "skip-1", Source: "orca/dispatcher", Result: bus.TaskResult{
		Task: "d.v2", Namespace: "ns", TaskUID: "uid", Run: "run 1", ExitCode: -1,
		Reason: "ConditionFalse", Message: "the condition is false: b failed", FinishedAt: finished,
	}}
	require.NoError(t, b.PublishTaskSkipped(t.Context(), skipped))
	require.NoError(t, b.PublishTaskSkipped(t.Context(), skipped), "a republish is stored once")
	d := receive(t, ch)
	assert.Equal(t, "orca.task.skipped.ns.d.v2", d.Subject)
	assert.Equal(t, bus.TypeTaskSkipped, d.Event.Type())
	assert.Equal(t, "run 1", d.Run())
	require.NotNil(t, d.Skipped)
	assert.Nil(t, d.Task, "a skip is not a task event: nothing that starts on success or failure sees it")
	assert.Equal(t, skipped, *d.Skipped)

	timer := bus.JoinTimer{ID: "timer-1", Source: "orca/dispatcher", Namespace: "ns", Task: "d.v2", TaskUID: "uid", Run: "run 1", Due: finished}
	require.NoError(t, b.PublishJoinTimer(t.Context(), timer))
	d = receive(t, ch)
	assert.Equal(t, "orca.join.timer.ns.d.v2", d.Subject)
	require.NotNil(t, d.JoinTimer)
	assert.Equal(t, timer, *d.JoinTimer)
	assert.Equal(t, "run 1", d.Run())

	select {
	case d := <-ch:
		t.Fatalf("unexpected delivery %s", d.Event.ID())
	case <-time.After(300 * time.Millisecond):
	}
	assert.Contains(t, bus.NamespaceSubjects("ns"), "orca.task.skipped.ns.>", "orca events follows skips")
	for _, s := range []string{"orca.task.retrying.ns.>", "orca.task.halted.ns.>", "orca.task.forbidden.ns.>"} {
		assert.Contains(t, bus.NamespaceSubjects("ns"), s, "orca events and the web view follow the run policies' events")
	}
}

func TestJoinStoreSwapsAndCountsMarks(t *testing.T) {
	srv := startNATS(t, t.TempDir(), -1)
	b := connect(t, srv.URL())
	s := b.JoinStore()
	ctx := t.Context()

	v, rev, err := s.Get(ctx, "s.ns.d.abc")
	require.NoError(t, err)
	assert.Nil(t, v)
	assert.Zero(t, rev)

	ok, err := s.Swap(ctx, "s.ns.d.abc", []byte("one"), 0)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.Swap(ctx, "s.ns.d.abc", []byte("other"), 0)
	require.NoError(t, err)
	assert.False(t, ok, "a second create loses")
	v, rev, err = s.Get(ctx, "s.ns.d.abc")
	require.NoError(t, err)
	assert.Equal(t, "one", string(v))
	ok, err = s.Swap(ctx, "s.ns.d.abc", []byte("two"), rev+7)
	require.NoError(t, err)
	assert.False(t, ok, "a stale revision loses")
	ok, err = s.Swap(ctx, "s.ns.d.abc", []byte("two"), rev)
	require.NoError(t, err)
	assert.True(t, ok)

	// Concurrent increments through swaps lose nothing.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				v, rev, err := s.Get(ctx, "s.ns.d.counter")
				if !assert.NoError(t, err) {
					return
				}
				ok, err := s.Swap(ctx, "s.ns.d.counter", append(v, 'x'), rev)
				if !assert.NoError(t, err) || ok {
					return
				}
			}
		})
	}
	wg.Wait()
	v, _, err = s.Get(ctx, "s.ns.d.counter")
	require.NoError(t, err)
	assert.Equal(t, "xxxxxxxx", string(v))

	// Marks: counted by filter, gone after an unmark or their TTL.
	require.NoError(t, s.Mark(ctx, "w.ns.d.100.aaa", time.Hour))
	require.NoError(t, s.Mark(ctx, "w.ns.d.100.aaa", time.Hour), "marking twice is fine")
	require.NoError(t, s.Mark(ctx, "w.ns.d.200.bbb", time.Hour))
	require.NoError(t, s.Mark(ctx, "w.ns.d.300.ccc", time.Second))
	require.NoError(t, s.Mark(ctx, "w.ns.e.100.ddd", time.Hour))
	keys, err := s.Marked(ctx, "w.ns.d.*.*")
	require.NoError(t, err)
	slices.Sort(keys)
	assert.Equal(t, []string{"w.ns.d.100.aaa", "w.ns.d.200.bbb", "w.ns.d.300.ccc"}, keys)
	require.NoError(t, s.Unmark(ctx, "w.ns.d.100.aaa"))
	err = testenv.Eventually(ctx, 10*time.Second, func(ctx context.Context) (bool, error) {
		keys, err = s.Marked(ctx, "w.ns.d.*.*")
		return slices.Equal(keys, []string{"w.ns.d.200.bbb"}), err
	})
	require.NoError(t, err, "unmarked and expired marks leave no trace: %v", keys)

	// A deleted bucket is created again.
	js, err := jetstream.New(rawConn(t, srv.URL()))
	require.NoError(t, err)
	require.NoError(t, js.DeleteKeyValue(ctx, bus.JoinBucket(bus.DefaultStream)))
	ok, err = s.Swap(context.Background(), "s.ns.d.abc", []byte("again"), 0)
	require.NoError(t, err)
	assert.True(t, ok)
}
