package bus_test

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/bus"
)

// startNATS starts an embedded nats-server on file storage in a test folder.
func startNATS(t testing.TB, storeDir string, port int) *bus.Embedded {
	t.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: storeDir, Port: port})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	return srv
}

// connect connects a Bus and makes sure the stream exists.
func connect(t testing.TB, url string) *bus.Bus {
	t.Helper()
	b, err := bus.Connect(context.Background(), bus.Options{URLs: []string{url}, Name: t.Name()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.EnsureStream(context.Background(), bus.StreamOptions{}))
	return b
}

func rawConn(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// collect consumes into a channel with fast retries.
func collect(t testing.TB, b *bus.Bus, name string, subjects []string, h bus.Handler) (<-chan *bus.Delivery, *bus.Consumer) {
	t.Helper()
	ch := make(chan *bus.Delivery, 100)
	c, err := b.Consume(context.Background(), bus.ConsumerOptions{
		Name: name, Subjects: subjects, RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		RetryFor: 2 * time.Second, AckWait: time.Second, MaxDataSize: 4096,
	}, func(ctx context.Context, d *bus.Delivery) error {
		ch <- d
		if h != nil {
			return h(ctx, d)
		}
		return nil
	})
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	return ch, c
}

func receive(t testing.TB, ch <-chan *bus.Delivery) *bus.Delivery {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10s")
		return nil
	}
}

func streamInfo(t testing.TB, url string) *jetstream.StreamInfo {
	t.Helper()
	js, err := jetstream.New(rawConn(t, url))
	require.NoError(t, err)
	s, err := js.Stream(t.Context(), bus.DefaultStream)
	require.NoError(t, err)
	info, err := s.Info(t.Context())
	require.NoError(t, err)
	return info
}

func consumerInfo(t testing.TB, url, name string) *jetstream.ConsumerInfo {
	t.Helper()
	js, err := jetstream.New(rawConn(t, url))
	require.NoError(t, err)
	c, err := js.Consumer(t.Context(), bus.DefaultStream, name)
	require.NoError(t, err)
	info, err := c.Info(t.Context())
	require.NoError(t, err)
	return info
}

// eventually polls cond until it holds or 10s pass.
func eventually(t testing.TB, cond func() bool, msg string) {
	t.Helper()
	within(t, 10*time.Second, cond, msg)
}

// within polls cond until it holds or d passes.
func within(t testing.TB, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %s", d, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPublishedEventsRoundTrip(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	ch, _ := collect(t, b, "roundtrip", []string{bus.SubjectAll}, nil)

	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	ig := bus.Ignition{ID: "uid-1-1764064800", Source: "orca/scheduler", Namespace: "default", Name: "ignitor1.v2", Data: []byte("hello"), Time: at}
	require.NoError(t, b.PublishIgnition(t.Context(), ig))
	d := receive(t, ch)
	assert.Equal(t, "orca.ignited.default.ignitor1.v2", d.Subject)
	require.NotNil(t, d.Ignition)
	assert.Equal(t, "ignitor1.v2", d.Ignition.Name)
	assert.Equal(t, "default", d.Ignition.Namespace)
	assert.Equal(t, []byte("hello"), d.Ignition.Data)
	assert.Equal(t, "uid-1-1764064800", d.Ignition.Run, "an ignition without a run runs under its own id")
	assert.Equal(t, "ignitor1.v2", d.Event.Subject())
	assert.True(t, at.Equal(d.Event.Time()))

	for _, succeeded := range []bool{true, false} {
		started := at.Add(-time.Minute)
		te := bus.TaskEvent{ID: "pod-uid-" + strconv.FormatBool(succeeded), Source: "orca/watcher", Succeeded: succeeded, Result: bus.TaskResult{
			Task: "task1", Namespace: "ns1", Pod: "task1-abc", Run: "run-7", Initiator: "ignitor1",
			ExitCode: 2, Message: "the message", Reason: "Error", StartedAt: &started, FinishedAt: at,
		}}
		require.NoError(t, b.PublishTaskEvent(t.Context(), te))
		d := receive(t, ch)
		require.NotNil(t, d.Task)
		assert.Equal(t, bus.TaskSubject(succeeded, "ns1", "task1"), d.Subject)
		assert.Equal(t, te.Type(), d.Event.Type())
		assert.Equal(t, "run-7", d.Run())
		assert.Equal(t, te.ID, d.Task.ID)
		assert.Equal(t, succeeded, d.Task.Succeeded)
		assert.Equal(t, te.Result.Message, d.Task.Result.Message)
		assert.Equal(t, te.Result.ExitCode, d.Task.Result.ExitCode)
		assert.True(t, started.Equal(*d.Task.Result.StartedAt))
	}
}

func TestBinaryHeadersWrittenByHandAreAccepted(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	ch, _ := collect(t, b, "byhand", []string{bus.FilterIgnitions}, nil)

	msg := nats.NewMsg("orca.ignited.team-a.nightly")
	msg.Header.Set("ce-specversion", "1.0")
	msg.Header.Set("ce-id", "ext-1")
	msg.Header.Set("ce-source", "billing-system")
	msg.Header.Set("ce-type", "cloud.sirocco.orca.ignited")
	msg.Header.Set("ce-orcarun", "billing-42")
	msg.Header.Set("content-type", "text/plain")
	msg.Data = []byte("invoice batch 42")
	require.NoError(t, rawConn(t, srv.URL()).PublishMsg(msg))

	d := receive(t, ch)
	require.NotNil(t, d.Ignition)
	assert.Equal(t, "nightly", d.Ignition.Name)
	assert.Equal(t, "team-a", d.Ignition.Namespace)
	assert.Equal(t, "billing-42", d.Ignition.Run)
	assert.Equal(t, "invoice batch 42", string(d.Ignition.Data))
}

func TestStructuredModeIsAccepted(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	ch, _ := collect(t, b, "structured", []string{bus.SubjectAll}, nil)
	nc := rawConn(t, srv.URL())

	msg := nats.NewMsg("orca.ignited.default.ignitor1")
	msg.Header.Set("content-type", "application/cloudevents+json; charset=utf-8")
	msg.Data = []byte(`{"specversion":"1.0","id":"s-1","source":"ext","type":"cloud.sirocco.orca.ignited","subject":"ignitor1","datacontenttype":"text/plain","data":"from json"}`)
	require.NoError(t, nc.PublishMsg(msg))
	d := receive(t, ch)
	require.NotNil(t, d.Ignition)
	assert.Equal(t, "from json", string(d.Ignition.Data))
	assert.Equal(t, "s-1", d.Ignition.Run)

	msg = nats.NewMsg("orca.task.succeeded.default.task1")
	msg.Header.Set("content-type", "application/cloudevents+json")
	msg.Data = []byte(`{"specversion":"1.0","id":"s-2","source":"ext","type":"cloud.sirocco.orca.task.succeeded","orcarun":"r1","datacontenttype":"application/json","data":{"task":"task1","namespace":"default","pod":"p","message":"m","exitCode":0,"finishedAt":"2026-11-25T10:00:00Z"}}`)
	require.NoError(t, nc.PublishMsg(msg))
	d = receive(t, ch)
	require.NotNil(t, d.Task)
	assert.Equal(t, "m", d.Task.Result.Message)
	assert.Equal(t, "r1", d.Task.Result.Run)
}

func TestPublishingTwiceStoresOneMessage(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	ig := bus.Ignition{ID: "same-id", Source: "test", Namespace: "default", Name: "i"}
	require.NoError(t, b.PublishIgnition(t.Context(), ig))
	require.NoError(t, b.PublishIgnition(t.Context(), ig))
	assert.Equal(t, uint64(1), streamInfo(t, srv.URL()).State.Msgs)
}

func TestFailingHandlerIsRetriedUntilItSucceeds(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	var calls atomic.Int32
	ch, _ := collect(t, b, "retry", []string{bus.FilterIgnitions}, func(context.Context, *bus.Delivery) error {
		if calls.Add(1) <= 2 {
			return assert.AnError
		}
		return nil
	})
	require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: "r1", Source: "test", Namespace: "default", Name: "i"}))
	for want := uint64(1); want <= 3; want++ {
		assert.Equal(t, want, receive(t, ch).NumDelivered)
	}
	eventually(t, func() bool {
		info := consumerInfo(t, srv.URL(), "retry")
		return info.NumAckPending == 0 && info.NumPending == 0 && info.AckFloor.Stream == 1
	}, "message acked")
	select {
	case d := <-ch:
		t.Fatalf("fourth delivery %d after success", d.NumDelivered)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestMessageOfACrashedConsumerIsRedelivered(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	publisher := connect(t, srv.URL())

	crashed, err := bus.Connect(t.Context(), bus.Options{URLs: []string{srv.URL()}})
	require.NoError(t, err)
	release := make(chan struct{})
	ch, _ := collect(t, crashed, "crash", []string{bus.FilterIgnitions}, func(context.Context, *bus.Delivery) error {
		<-release
		return nil
	})
	t.Cleanup(func() { close(release) })
	require.NoError(t, publisher.PublishIgnition(t.Context(), bus.Ignition{ID: "c1", Source: "test", Namespace: "default", Name: "i"}))
	receive(t, ch)
	// The process dies mid-handler: its connection goes without an ack or a nak.
	crashed.Conn().Close()

	restarted := connect(t, srv.URL())
	ch2, _ := collect(t, restarted, "crash", []string{bus.FilterIgnitions}, nil)
	d := receive(t, ch2)
	assert.Equal(t, "c1", d.Event.ID())
	assert.Equal(t, uint64(2), d.NumDelivered)
}

func TestNothingIsLostAcrossANATSRestart(t *testing.T) {
	store := t.TempDir()
	port := freePort(t)
	srv := startNATS(t, store, port)
	b := connect(t, srv.URL())
	for i := range 3 {
		require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: "n" + strconv.Itoa(i), Source: "test", Namespace: "default", Name: "i"}))
	}
	srv.Shutdown()
	srv = startNATS(t, store, port)

	// The same Bus reconnects by itself to the restarted server.
	ch, _ := collect(t, b, "restart", []string{bus.FilterIgnitions}, nil)
	// Handlers run concurrently: the order of arrival is not kept.
	var got []string
	for range 3 {
		got = append(got, receive(t, ch).Event.ID())
	}
	assert.ElementsMatch(t, []string{"n0", "n1", "n2"}, got)
	require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: "after", Source: "test", Namespace: "default", Name: "i"}))
	assert.Equal(t, "after", receive(t, ch).Event.ID())
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
