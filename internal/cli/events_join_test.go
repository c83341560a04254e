package cli_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/cli"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// TestEventsShowsSkips follows a namespace: a Task skipped in a run shows, the
// dispatcher's join timers do not (orca events -A shows them).
func TestEventsShowsSkips(t *testing.T) {
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
	case <-time.After(10 * time.Second):
		t.Fatal("Events did not start within 10s")
	}
	require.NoError(t, b.PublishJoinTimer(t.Context(), bus.JoinTimer{ID: "t-1", Source: "test", Namespace: "team-a", Task: "d", TaskUID: "u", Run: "run-1", Due: time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)}))
	require.NoError(t, b.PublishTaskSkipped(t.Context(), bus.TaskSkipped{ID: "s-1", Source: "test", Result: bus.TaskResult{
		Task: "d", Namespace: "team-a", Run: "run-1", ExitCode: -1, Reason: "ConditionFalse", Message: "the condition is false: b failed", FinishedAt: time.Now(),
	}}))
	waitFor(t, "the skip printed", func() bool { return len(lines(out.String())) >= 1 })
	got := lines(out.String())
	require.Len(t, got, 1, "the timer is not shown: %q", got)
	assert.Regexp(t, `^\S+ skipped    team-a/d run=run-1 reason=ConditionFalse message="the condition is false: b failed"$`, got[0])

	cancel()
	require.NoError(t, <-done)

	// With -A, the timer too.
	var all testenv.Buffer
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() {
		done <- cli.Events(ctx, &all, io.Discard, cli.EventsOptions{
			NATS: bus.Options{URLs: []string{srv.URL()}}, AllNamespaces: true, Since: time.Hour, Location: time.UTC,
		})
	}()
	waitFor(t, "the timer and the skip printed", func() bool { return len(lines(all.String())) >= 2 })
	assert.Regexp(t, `^\S+ timer      team-a/d run=run-1 due=2030-01-02T00:00:00Z$`, lines(all.String())[0])
}
