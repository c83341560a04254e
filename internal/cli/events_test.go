package cli_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/cli"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// TestEventsPrintsIgnitionsAndTaskEventsOfItsNamespace follows one namespace live
// and stops when its context is cancelled.
func TestEventsPrintsIgnitionsAndTaskEventsOfItsNamespace(t *testing.T) {
	srv, b := testenv.NATS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out testenv.Buffer
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- cli.Events(ctx, &out, io.Discard, cli.EventsOptions{
			NATS: bus.Options{URLs: []string{srv.URL()}}, Namespace: "team-a",
			Location: time.UTC, Started: func() { close(started) },
		})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("Events returned: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Events did not start within 10s")
	}

	require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: "other", Source: "test", Namespace: "team-b", Name: "ignitor1"}))
	require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{
		ID: "e-1", Source: "test", Namespace: "team-a", Name: "ignitor1", Run: "run-1", Data: []byte("hello"),
	}))
	require.NoError(t, b.PublishTaskEvent(t.Context(), bus.TaskEvent{ID: "pod-uid", Source: "test", Result: bus.TaskResult{
		Task: "task1", Namespace: "team-a", Pod: "task1-x", Run: "run-1", ExitCode: 3, Reason: "Error",
		Message: "line one\n" + strings.Repeat("x", 200), FinishedAt: time.Now(),
	}}))
	require.NoError(t, b.PublishTaskEvent(t.Context(), bus.TaskEvent{ID: "pod-uid-2", Source: "test", Succeeded: true, Result: bus.TaskResult{
		Task: "task2", Namespace: "team-a", Run: "run-1", Message: "42", FinishedAt: time.Now(),
	}}))
	waitFor(t, "three lines printed", func() bool { return len(lines(out.String())) >= 3 })

	got := lines(out.String())
	require.Len(t, got, 3, "team-b's ignition is not shown: %q", got)
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ignited    team-a/ignitor1 run=run-1 data="hello"$`, got[0])
	assert.Regexp(t, `^\S+ failed     team-a/task1 run=run-1 exit=3 reason=Error message="line one\\nx{51}…"$`, got[1])
	assert.Regexp(t, `^\S+ succeeded  team-a/task2 run=run-1 exit=0 message="42"$`, got[2])

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Events did not return after its context was cancelled")
	}
}

// TestEventsAllNamespacesSinceShowsDeadLetters replays the past through the
// command line with -A --since, dead letters included.
func TestEventsAllNamespacesSinceShowsDeadLetters(t *testing.T) {
	srv, b := testenv.NATS(t)
	c, err := b.Consume(context.Background(), bus.ConsumerOptions{Name: "rejecter", Subjects: []string{bus.FilterIgnitions}},
		func(context.Context, *bus.Delivery) error { return bus.Permanent(errors.New("no Task may start")) })
	require.NoError(t, err)
	require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: "e-2", Source: "test", Namespace: "team-c", Name: "go"}))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testenv.Buffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"orca", "events", "-A", "--since", "1h", "--nats-url", srv.URL()}, nil, &stdout, &stderr)
	}()
	waitFor(t, "the ignition and its dead letter printed", func() bool { return len(lines(stdout.String())) >= 2 })
	c.Stop()
	got := lines(stdout.String())
	assert.Contains(t, got[0], " ignited    team-c/go run=e-2")
	assert.Contains(t, got[1], ` deadletter team-c/go run=e-2 event=ignited data="" deadletter-reason="no Task may start" by=rejecter`)
	assert.Contains(t, stderr.String(), "following Orca's events in all namespaces on "+srv.URL())
	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 0, code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("orca events did not return after its context was cancelled")
	}
}

// TestFormatEventNamesEveryKindOfRunEvent checks the lines of the events of run
// policies, which a line of their own says what happened to.
func TestFormatEventNamesEveryKindOfRunEvent(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		d    bus.Delivery
		want string
	}{{
		name: "retrying",
		d: bus.Delivery{Retry: &bus.RetryEvent{Retry: bus.TaskRetry{
			TaskResult:  bus.TaskResult{Task: "flaky", Namespace: "ns", Attempt: 1, ExitCode: 3, Reason: "Error"},
			NextAttempt: 2, RetryAt: at.Add(time.Second),
		}}},
		want: "retrying   ns/flaky run= attempt=1 exit=3 reason=Error next=2 at=2026-12-01T10:00:01Z",
	}, {
		name: "halted",
		d:    bus.Delivery{Halt: &bus.HaltEvent{Halt: bus.TaskHalt{Task: "again", Namespace: "ns", Steps: 10, Limit: 10, Initiator: "b"}}},
		want: "halted     ns/again run= steps=10 limit=10 initiator=b",
	}, {
		name: "forbidden",
		d:    bus.Delivery{Forbidden: &bus.ForbiddenStart{Task: "once", Namespace: "ns", Pod: "once-x", Running: []string{"once-a"}}},
		want: "forbidden  ns/once run= pod=once-x running=once-a",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := cli.FormatEvent(bus.Seen{Stored: at, Delivery: &tt.d}, time.UTC)
			assert.Equal(t, "2026-12-01T10:00:00Z "+tt.want, line)
		})
	}
}
