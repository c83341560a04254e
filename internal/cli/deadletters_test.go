package cli_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/cli"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// orca runs the command line and returns its exit code, stdout and stderr.
func orca(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr testenv.Buffer
	code := cli.Main(t.Context(), append([]string{"orca"}, args...), nil, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// seqOf returns the SEQ of the listed dead letter whose line contains s.
func seqOf(t *testing.T, list, s string) string {
	t.Helper()
	for _, l := range lines(list) {
		if strings.Contains(l, s) {
			return strings.Fields(l)[0]
		}
	}
	t.Fatalf("no dead letter with %q in:\n%s", s, list)
	return ""
}

// Dead letters are listed with their reasons, by namespace; a replay publishes
// one again on its original subject, where the consumer handles it once the
// cause is fixed; a second replay of the same event is deduplicated.
func TestDeadLettersAreListedAndReplayed(t *testing.T) {
	srv, b := testenv.NATS(t)
	url := srv.URL()
	var mu sync.Mutex
	fixed := false
	handled := map[string]int{}
	c, err := b.Consume(context.Background(), bus.ConsumerOptions{Name: "picky", Subjects: []string{bus.FilterIgnitions}},
		func(_ context.Context, d *bus.Delivery) error {
			mu.Lock()
			defer mu.Unlock()
			if !fixed {
				return bus.Permanent(errors.New("no Task may start\nsecond line"))
			}
			handled[d.Event.ID()]++
			return nil
		})
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: "dl-a", Source: "test", Namespace: "team-a", Name: "nightly", Data: []byte("x")}))
	require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: "dl-b", Source: "test", Namespace: "team-b", Name: "nightly"}))
	garbage := nats.NewMsg("orca.ignited.team-a.broken")
	garbage.Data = []byte("not an event")
	require.NoError(t, rawPublish(url, garbage))

	var list string
	waitFor(t, "three dead letters listed", func() bool {
		code, out, _ := orca(t, "deadletters", "-A", "--nats-url", url)
		list = out
		return code == 0 && len(lines(out)) == 4
	})
	assert.Regexp(t, `^SEQ\s+STORED\s+SUBJECT\s+ID\s+CONSUMER\s+REASON$`, lines(list)[0])
	assert.Regexp(t, regexp.MustCompile(`(?m)\s+orca\.ignited\.team-a\.nightly\s+dl-a\s+picky\s+no Task may start / second line$`), list)
	assert.Regexp(t, `\s+orca\.ignited\.team-a\.broken\s+-\s+picky\s+not a CloudEvent`, list)

	code, out, stderr := orca(t, "deadletters", "-n", "team-b", "--nats-url", url)
	require.Equal(t, 0, code, stderr)
	require.Len(t, lines(out), 2, out)
	assert.Contains(t, out, "dl-b")

	mu.Lock()
	fixed = true
	mu.Unlock()
	seq := seqOf(t, list, "dl-a")
	code, out, stderr = orca(t, "deadletters", "replay", seq, "--nats-url", url)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, seq+": replayed event dl-a on orca.ignited.team-a.nightly\n", out)
	waitFor(t, "the replayed event handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return handled["dl-a"] == 1
	})
	_, out, _ = orca(t, "deadletters", "-A", "--nats-url", url)
	assert.NotContains(t, out, "dl-a", "a replayed dead letter is deleted")

	// --all in team-b, keeping the dead letter: replayed twice, stored once.
	for range 2 {
		code, out, stderr = orca(t, "deadletters", "replay", "--all", "--keep", "-n", "team-b", "--nats-url", url)
		require.Equal(t, 0, code, stderr)
	}
	assert.Contains(t, out, "event dl-b is already in the stream (duplicate window): not stored again")
	waitFor(t, "dl-b handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return handled["dl-b"] == 1
	})
	_, out, _ = orca(t, "deadletters", "-n", "team-b", "--nats-url", url)
	assert.Contains(t, out, "dl-b", "--keep keeps it")

	code, _, stderr = orca(t, "deadletters", "replay", "--nats-url", url)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "pass the sequence numbers to replay, or --all")
	code, _, stderr = orca(t, "deadletters", "replay", "1", "--nats-url", url)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "message 1 is on orca.ignited.team-a.nightly, not a dead letter")
}

func rawPublish(url string, msg *nats.Msg) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	_, err = nc.RequestMsg(msg, nats.DefaultTimeout)
	return err
}
