package bus_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/bus"
)

func TestUnusableMessagesAreDeadLettered(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	nc := rawConn(t, srv.URL())
	dead, err := nc.SubscribeSync(bus.FilterDeadLetter)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	ch, _ := collect(t, b, "dl", []string{bus.FilterIgnitions, bus.FilterTaskEvents[0], bus.FilterTaskEvents[1]}, nil)

	ce := func(subject string, headers map[string]string, data string) *nats.Msg {
		m := nats.NewMsg(subject)
		for k, v := range headers {
			m.Header.Set(k, v)
		}
		m.Data = []byte(data)
		return m
	}
	valid := map[string]string{"ce-specversion": "1.0", "ce-id": "x", "ce-source": "s", "ce-type": bus.TypeIgnited}
	without := func(key string, add map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range valid {
			if k != key {
				out[k] = v
			}
		}
		for k, v := range add {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name   string
		msg    *nats.Msg
		reason string
	}{
		{"garbage bytes", ce("orca.ignited.default.x", nil, "\x00\xff garbage"), "not a CloudEvent"},
		{"missing source", ce("orca.ignited.default.x", without("ce-source", nil), ""), "source"},
		{"unknown type", ce("orca.ignited.default.x", without("", map[string]string{"ce-type": "com.example.other"}), ""), `unknown event type "com.example.other"`},
		{"oversize", ce("orca.ignited.default.x", valid, strings.Repeat("a", 5000)), "over the limit of 4096"},
		{"broken structured json", ce("orca.ignited.default.x", map[string]string{"content-type": "application/cloudevents+json"}, "{nope"), "structured CloudEvent"},
		// Found by FuzzDecodeStructured: the SDK's decoder panics on it.
		{"structured data_base64 not a string", ce("orca.ignited.default.x", map[string]string{"content-type": "application/cloudevents+json"},
			`{"specversion":"1.0","id":"x","source":"s","type":"cloud.sirocco.orca.ignited","data_base64":0}`), "structured CloudEvent: malformed"},
		// A structured event can carry what a header cannot: Orca could not pass it on.
		{"run with a line break", ce("orca.ignited.default.x", map[string]string{"content-type": "application/cloudevents+json"},
			`{"specversion":"1.0","id":"x","source":"s","type":"cloud.sirocco.orca.ignited","orcarun":"a\nb"}`), "control character"},
		{"task data not json", ce("orca.task.failed.default.t", without("", map[string]string{"ce-type": bus.TypeTaskFailed, "content-type": "application/json"}), "nope"), "not TaskResult JSON"},
		{"no name in subject", ce("orca.ignited.default", valid, ""), "want orca.ignited.<namespace>.<name>"},
		{"bad time", ce("orca.ignited.default.x", without("", map[string]string{"ce-time": "yesterday"}), ""), `attribute "time"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, nc.PublishMsg(tt.msg))
			dl, err := dead.NextMsg(10 * time.Second)
			require.NoError(t, err)
			assert.Equal(t, bus.DeadLetterSubject(tt.msg.Subject), dl.Subject)
			assert.Contains(t, dl.Header.Get(bus.HeaderDeadLetterReason), tt.reason)
			assert.Equal(t, tt.msg.Subject, dl.Header.Get(bus.HeaderDeadLetterSubject))
			assert.Equal(t, tt.msg.Data, dl.Data, "the message is kept whole")
			for k := range tt.msg.Header {
				assert.Equal(t, tt.msg.Header.Get(k), dl.Header.Get(k))
			}

			// The consumer goes on with the next message.
			require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: "after-" + tt.name, Source: "t", Namespace: "default", Name: "ok"}))
			assert.Equal(t, "after-"+tt.name, receive(t, ch).Event.ID())
		})
	}
	// Each dead letter is stored in the stream, and nothing is left pending.
	eventually(t, func() bool {
		info := consumerInfo(t, srv.URL(), "dl")
		return info.NumAckPending == 0 && info.NumPending == 0
	}, "consumer caught up")
}

func TestHandlerErrorsEndInTheDeadLetters(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	nc := rawConn(t, srv.URL())
	dead, err := nc.SubscribeSync(bus.FilterDeadLetter)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	ch, _ := collect(t, b, "failing", []string{bus.FilterIgnitions}, func(_ context.Context, d *bus.Delivery) error {
		if d.Ignition.Name == "permanent" {
			return bus.Permanent(assert.AnError)
		}
		return assert.AnError
	})
	_ = ch

	require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: "p", Source: "t", Namespace: "default", Name: "permanent"}))
	dl, err := dead.NextMsg(10 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, "orca.deadletter.orca.ignited.default.permanent", dl.Subject)
	assert.Contains(t, dl.Header.Get(bus.HeaderDeadLetterReason), assert.AnError.Error())

	// A handler that always fails is retried for RetryFor (2s), then gives up.
	require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: "f", Source: "t", Namespace: "default", Name: "flaky"}))
	dl, err = dead.NextMsg(10 * time.Second)
	require.NoError(t, err)
	assert.Contains(t, dl.Header.Get(bus.HeaderDeadLetterReason), "handler still failing")
	assert.Contains(t, dl.Header.Get(bus.HeaderDeadLetterReason), assert.AnError.Error())
}

// A failure that a retry may fix is retried far beyond a few deliveries: it is
// not dead-lettered while its handler may still succeed.
func TestRetryableFailuresAreRetriedUntilTheyPass(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	nc := rawConn(t, srv.URL())
	dead, err := nc.SubscribeSync(bus.FilterDeadLetter)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	var calls atomic.Int32
	acked := make(chan uint64, 1)
	c, err := b.Consume(t.Context(), bus.ConsumerOptions{
		Name: "patient", Subjects: []string{bus.FilterIgnitions}, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond,
	}, func(_ context.Context, d *bus.Delivery) error {
		if calls.Add(1) <= 25 {
			return errors.New("admission webhook unavailable")
		}
		acked <- d.NumDelivered
		return nil
	})
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: "p", Source: "t", Namespace: "default", Name: "i"}))
	select {
	case n := <-acked:
		assert.Equal(t, uint64(26), n)
	case <-time.After(20 * time.Second):
		t.Fatalf("not handled after %d calls", calls.Load())
	}
	_, err = dead.NextMsg(100 * time.Millisecond)
	assert.ErrorIs(t, err, nats.ErrTimeout, "no dead letter")
}

// Retries end before the stream drops the message: a stream keeping messages for
// 3s cuts a day of retries to what it leaves, and the message is dead-lettered,
// not lost.
func TestRetriesEndBeforeTheStreamDropsTheMessage(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b, err := bus.Connect(t.Context(), bus.Options{URLs: []string{srv.URL()}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.EnsureStream(t.Context(), bus.StreamOptions{MaxAge: 3 * time.Second}))
	nc := rawConn(t, srv.URL())
	dead, err := nc.SubscribeSync(bus.FilterDeadLetter)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	c, err := b.Consume(t.Context(), bus.ConsumerOptions{
		Name: "short", Subjects: []string{bus.FilterIgnitions}, AckWait: time.Second, RetryMin: 50 * time.Millisecond, RetryMax: 100 * time.Millisecond,
	}, func(context.Context, *bus.Delivery) error { return errors.New("quota exceeded") })
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: "s", Source: "t", Namespace: "default", Name: "i"}))
	dl, err := dead.NextMsg(10 * time.Second)
	require.NoError(t, err)
	assert.Contains(t, dl.Header.Get(bus.HeaderDeadLetterReason), "quota exceeded")
	assert.Contains(t, dl.Header.Get(bus.HeaderDeadLetterReason), "retried for up to 1.9s")
}
