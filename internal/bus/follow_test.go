package bus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/bus"
)

// follow runs Follow in the background and returns what it sees and a function
// that stops it and returns its error.
func follow(t *testing.T, b *bus.Bus, o bus.FollowOptions) (<-chan bus.Seen, func() error) {
	t.Helper()
	ch := make(chan bus.Seen, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Follow(ctx, o, func(s bus.Seen) { ch <- s }) }()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(10 * time.Second):
				stopErr = errors.New("Follow did not return within 10s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { _ = stop() })
	return ch, stop
}

func nextSeen(t *testing.T, ch <-chan bus.Seen) bus.Seen {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("Follow saw nothing within 10s")
		return bus.Seen{}
	}
}

// waitConsumers waits until the stream has n consumers.
func waitConsumers(t *testing.T, url string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info := streamInfo(t, url)
		if info.State.Consumers == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream has %d consumers, want %d", info.State.Consumers, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFollowSeesNewEventsDecodedAndLeavesNoConsumer(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: "old", Source: "test", Namespace: "ns", Name: "before"}))

	ch, stop := follow(t, b, bus.FollowOptions{})
	waitConsumers(t, srv.URL(), 1)
	require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: "i-1", Source: "test", Namespace: "ns", Name: "go", Run: "r-1", Data: []byte("hi")}))
	require.NoError(t, b.PublishTaskEvent(t.Context(), bus.TaskEvent{ID: "p-1", Source: "test", Result: bus.TaskResult{
		Task: "t1", Namespace: "ns", Run: "r-1", ExitCode: 3, Reason: "Error", Message: "boom",
	}}))

	s := nextSeen(t, ch)
	require.NoError(t, s.Err)
	require.NotNil(t, s.Delivery.Ignition, "the ignition published before Follow is not replayed")
	assert.Equal(t, "go", s.Delivery.Ignition.Name)
	assert.Equal(t, "r-1", s.Delivery.Run())
	assert.Equal(t, []byte("hi"), s.Delivery.Ignition.Data)
	assert.NotZero(t, s.Sequence)
	assert.False(t, s.Stored.IsZero())

	s = nextSeen(t, ch)
	require.NoError(t, s.Err)
	require.NotNil(t, s.Delivery.Task)
	assert.False(t, s.Delivery.Task.Succeeded)
	assert.Equal(t, int32(3), s.Delivery.Task.Result.ExitCode)

	require.NoError(t, stop())
	waitConsumers(t, srv.URL(), 0)
}

func TestFollowSinceReplaysAndDecodesDeadLetters(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	// A handler that rejects every event moves it to the dead letters.
	_, c := collect(t, b, "rejecter", []string{bus.FilterIgnitions}, func(context.Context, *bus.Delivery) error {
		return bus.Permanent(errors.New("no such thing"))
	})
	require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: "i-2", Source: "test", Namespace: "ns", Name: "bad"}))
	deadline := time.Now().Add(10 * time.Second)
	for streamInfo(t, srv.URL()).State.Msgs < 2 {
		require.True(t, time.Now().Before(deadline), "no dead letter stored")
		time.Sleep(20 * time.Millisecond)
	}
	c.Stop()

	ch, stop := follow(t, b, bus.FollowOptions{
		Subjects: []string{bus.FilterDeadLetter},
		Since:    time.Now().Add(-time.Hour),
	})
	s := nextSeen(t, ch)
	require.NotNil(t, s.DeadLetter)
	assert.Equal(t, bus.IgnitionSubject("ns", "bad"), s.DeadLetter.Subject)
	assert.Equal(t, "no such thing", s.DeadLetter.Reason)
	assert.Equal(t, "rejecter", s.DeadLetter.Consumer)
	require.NoError(t, s.Err)
	assert.Equal(t, "bad", s.Delivery.Ignition.Name)
	require.NoError(t, stop())
}

func TestFollowAndCheckStreamSayWhenTheStreamIsMissing(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b, err := bus.Connect(t.Context(), bus.Options{URLs: []string{srv.URL()}})
	require.NoError(t, err)
	defer func() { _ = b.Close() }()
	require.ErrorIs(t, b.CheckStream(t.Context()), bus.ErrNoStream)
	err = b.Follow(t.Context(), bus.FollowOptions{}, func(bus.Seen) {})
	require.ErrorIs(t, err, bus.ErrNoStream)
	require.NoError(t, b.EnsureStream(t.Context(), bus.StreamOptions{}))
	require.NoError(t, b.CheckStream(t.Context()))
}
