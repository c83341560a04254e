package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/bus"
)

// counter counts deliveries by event id.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[id]++
}

func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

func admin(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(rawConn(t, url))
	require.NoError(t, err)
	return js
}

// savedPosition returns the position saved for a consumer in the state bucket.
func savedPosition(t testing.TB, url, consumer string) uint64 {
	t.Helper()
	kv, err := admin(t, url).KeyValue(t.Context(), bus.StateBucket(bus.DefaultStream))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return 0
	}
	require.NoError(t, err)
	e, err := kv.Get(t.Context(), "position."+consumer)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0
	}
	require.NoError(t, err)
	var p bus.ConsumerPosition
	require.NoError(t, json.Unmarshal(e.Value(), &p))
	return p.Sequence
}

func publishIgnitions(t testing.TB, b *bus.Bus, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := prefix + strconv.Itoa(i)
		require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: id, Source: "test", Namespace: "default", Name: "i"}))
		ids = append(ids, id)
	}
	return ids
}

func once(ids ...string) map[string]int {
	out := map[string]int{}
	for _, id := range ids {
		out[id] = 1
	}
	return out
}

// Messages waiting for a free handler must not pass AckWait: a slow handler would
// otherwise see each of them twice.
func TestWaitingMessagesDoNotTimeOut(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	var got counter
	c, err := b.Consume(t.Context(), bus.ConsumerOptions{
		Name: "slow", Subjects: []string{bus.FilterIgnitions}, Concurrency: 1, AckWait: time.Second,
	}, func(_ context.Context, d *bus.Delivery) error {
		got.add(d.Event.ID())
		time.Sleep(2500 * time.Millisecond)
		return nil
	})
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	ids := publishIgnitions(t, b, "slow-", 5)

	within(t, 20*time.Second, func() bool {
		info := consumerInfo(t, srv.URL(), "slow")
		return info.AckFloor.Stream == 5 && info.NumAckPending == 0
	}, "all acked")
	assert.Equal(t, once(ids...), got.snapshot())
}

// A deleted durable consumer is noticed and recreated; it goes on where the
// deleted one was, without handling again what was acked.
func TestDeletedConsumerIsRecreated(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	var got counter
	c, err := b.Consume(t.Context(), bus.ConsumerOptions{Name: "deleted", Subjects: []string{bus.FilterIgnitions}, CheckInterval: 50 * time.Millisecond},
		func(_ context.Context, d *bus.Delivery) error {
			got.add(d.Event.ID())
			return nil
		})
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	before := publishIgnitions(t, b, "before-", 3)
	within(t, 10*time.Second, func() bool { return consumerInfo(t, srv.URL(), "deleted").AckFloor.Stream == 3 }, "acked")
	require.NoError(t, c.Ready())
	within(t, 10*time.Second, func() bool { return savedPosition(t, srv.URL(), "deleted") == 3 }, "position saved")

	require.NoError(t, admin(t, srv.URL()).DeleteConsumer(t.Context(), bus.DefaultStream, "deleted"))
	after := publishIgnitions(t, b, "after-", 3)
	within(t, 10*time.Second, func() bool { return len(got.snapshot()) == 6 }, "events after the deletion handled")
	assert.Equal(t, once(append(before, after...)...), got.snapshot())
	require.NoError(t, c.Ready())
}

// A deleted stream makes the consumer not ready until the stream is back (it is
// not recreated behind an operator's back: a restore would fail); then it goes on.
func TestDeletedStreamMakesTheConsumerNotReadyUntilItIsBack(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	var got counter
	c, err := b.Consume(t.Context(), bus.ConsumerOptions{Name: "orphan", Subjects: []string{bus.FilterIgnitions}},
		func(_ context.Context, d *bus.Delivery) error {
			got.add(d.Event.ID())
			return nil
		})
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	publishIgnitions(t, b, "old-", 2)
	within(t, 10*time.Second, func() bool { return len(got.snapshot()) == 2 }, "handled")

	require.NoError(t, admin(t, srv.URL()).DeleteStream(t.Context(), bus.DefaultStream))
	// A worker's failed pull may say so first ("consumer deleted"); the
	// supervisor's check then finds the stream missing.
	within(t, 10*time.Second, func() bool {
		err := c.Ready()
		return err != nil && errors.Is(err, bus.ErrNoStream)
	}, "not ready without its stream")
	assert.ErrorContains(t, c.Ready(), "stream")

	require.NoError(t, b.EnsureStream(t.Context(), bus.StreamOptions{}))
	within(t, 10*time.Second, func() bool { return c.Ready() == nil }, "ready again")
	// The new stream numbers from 1 again: its messages are all new.
	ids := publishIgnitions(t, b, "new-", 2)
	within(t, 10*time.Second, func() bool { return len(got.snapshot()) == 4 }, "new events handled")
	for _, id := range ids {
		assert.Equal(t, 1, got.snapshot()[id], id)
	}
}

// A handler that says "later" gets the message again after that time, with no
// retry counted; the wait is held by the server, so a consumer stopped meanwhile
// and started again still sees the message at its time, and only then.
func TestLaterRedeliversAtItsTimeAcrossARestart(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	const wait = 1500 * time.Millisecond
	var mu sync.Mutex
	var seen []time.Time
	handler := func(_ context.Context, d *bus.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, time.Now())
		if len(seen) == 1 {
			return bus.Later(wait)
		}
		return nil
	}
	opts := bus.ConsumerOptions{Name: "later", Subjects: []string{bus.FilterIgnitions}, RetryFor: time.Millisecond}
	c, err := b.Consume(t.Context(), opts, handler)
	require.NoError(t, err)
	publishIgnitions(t, b, "later-", 1)
	within(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 1 }, "first delivery")
	c.Stop()

	c, err = b.Consume(t.Context(), opts, handler)
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	within(t, 10*time.Second, func() bool { return consumerInfo(t, srv.URL(), "later").AckFloor.Stream == 1 }, "acked after the wait")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 2, "delivered once more, not dead-lettered although RetryFor is 1ms")
	assert.GreaterOrEqual(t, seen[1].Sub(seen[0]), wait-100*time.Millisecond, "redelivered after the wait")
}

// Replicas of a consumer with more workers, all together, than the server keeps
// pull requests waiting for (MaxWaiting, 512 by default) still get every message
// at once, and share them: a pull request beyond MaxWaiting would be dropped by
// the server without a word, its worker left idle until the missing heartbeats
// time it out (10s) and its process logging a failed pull.
func TestReplicasWithMoreWorkersThanMaxWaitingGetEveryMessage(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	const replicas, workers = 2, 400
	release := make(chan struct{})
	var inFlight [replicas]atomic.Int32
	logs := make([]*logBuffer, replicas)
	var b *bus.Bus
	for i := range replicas {
		logs[i] = &logBuffer{}
		var err error
		b, err = bus.Connect(t.Context(), bus.Options{URLs: []string{srv.URL()}, Logger: slog.New(slog.NewTextHandler(logs[i], nil))})
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close() })
		require.NoError(t, b.EnsureStream(t.Context(), bus.StreamOptions{}))
		c, err := b.Consume(t.Context(), bus.ConsumerOptions{Name: "wide", Subjects: []string{bus.FilterIgnitions}, Concurrency: workers},
			func(context.Context, *bus.Delivery) error {
				inFlight[i].Add(1)
				<-release
				return nil
			})
		require.NoError(t, err)
		t.Cleanup(c.Stop)
	}
	t.Cleanup(func() { close(release) }) // before the consumers stop
	// Each process keeps at most a quarter of MaxWaiting, 128, waiting.
	eventually(t, func() bool { return consumerInfo(t, srv.URL(), "wide").NumWaiting >= 2*128 }, "pulls waiting")

	publishIgnitions(t, b, "wide-", replicas*workers)
	within(t, 5*time.Second, func() bool { return inFlight[0].Load()+inFlight[1].Load() == replicas*workers },
		"every message in a handler at once")
	t.Logf("messages in the handlers of each replica: %d, %d", inFlight[0].Load(), inFlight[1].Load())
	for i := range replicas {
		assert.Equal(t, int32(workers), inFlight[i].Load(), "replica %d: a message in each of its workers", i)
		assert.NotContains(t, logs[i].String(), "pull failed", "replica %d", i)
	}
}

// A durable consumer that exists keeps its MaxWaiting, which the server cannot
// change, and a process takes its quarter of it.
func TestAnExistingConsumerKeepsItsMaxWaiting(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	_, err := admin(t, srv.URL()).CreateConsumer(t.Context(), bus.DefaultStream, jetstream.ConsumerConfig{
		Durable: "kept", FilterSubjects: []string{bus.FilterIgnitions}, AckPolicy: jetstream.AckExplicitPolicy, MaxWaiting: 64,
	})
	require.NoError(t, err)
	c, err := b.Consume(t.Context(), bus.ConsumerOptions{Name: "kept", Subjects: []string{bus.FilterIgnitions}, Concurrency: 100},
		func(context.Context, *bus.Delivery) error { return nil })
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	eventually(t, func() bool { return consumerInfo(t, srv.URL(), "kept").NumWaiting == 64/4 }, "a quarter of MaxWaiting waiting")
	assert.Equal(t, 64, consumerInfo(t, srv.URL(), "kept").Config.MaxWaiting)
	ids := publishIgnitions(t, b, "kept-", 3)
	within(t, 10*time.Second, func() bool { return consumerInfo(t, srv.URL(), "kept").AckFloor.Stream == uint64(len(ids)) }, "handled")
	require.NoError(t, c.Ready())
}
