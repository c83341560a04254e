package bus_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/bus"
)

// The benchmarks publish 512-byte events. Compare each with its baseline of the
// same run: BenchmarkCorePublish for publishing, BenchmarkCoreRoundTrip for the
// publish-to-handler hop.

var payload = make([]byte, 512)

// BenchmarkCorePublish is the baseline: a core NATS publish, flushed, no storage.
func BenchmarkCorePublish(b *testing.B) {
	srv := startNATS(b, b.TempDir(), 0)
	nc := rawConn(b, srv.URL())
	for b.Loop() {
		if err := nc.Publish("bench.core", payload); err != nil {
			b.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublish is Orca's publish: a CloudEvent stored in the stream (file
// storage), waiting for the stream's ack.
func BenchmarkPublish(b *testing.B) {
	srv := startNATS(b, b.TempDir(), 0)
	bs := connect(b, srv.URL())
	i := 0
	for b.Loop() {
		i++
		ig := bus.Ignition{ID: "bench-" + strconv.Itoa(i), Source: "bench", Namespace: "default", Name: "i", Data: payload}
		if err := bs.PublishIgnition(context.Background(), ig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCoreRoundTrip is the baseline of the hop: core publish to a subscriber
// on another connection.
func BenchmarkCoreRoundTrip(b *testing.B) {
	srv := startNATS(b, b.TempDir(), 0)
	pub, sub := rawConn(b, srv.URL()), rawConn(b, srv.URL())
	got := make(chan struct{})
	_, err := sub.Subscribe("bench.rt", func(*nats.Msg) { got <- struct{}{} })
	require.NoError(b, err)
	require.NoError(b, sub.Flush())
	for b.Loop() {
		if err := pub.Publish("bench.rt", payload); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}

// BenchmarkPublishToHandler is Orca's hop on the bus: publish, store, deliver to
// a durable consumer's handler, which returns before the ack.
func BenchmarkPublishToHandler(b *testing.B) {
	srv := startNATS(b, b.TempDir(), 0)
	bs := connect(b, srv.URL())
	got := make(chan struct{})
	c, err := bs.Consume(context.Background(), bus.ConsumerOptions{Name: "bench", Subjects: []string{bus.FilterIgnitions}},
		func(context.Context, *bus.Delivery) error { got <- struct{}{}; return nil })
	require.NoError(b, err)
	b.Cleanup(c.Stop)
	i := 0
	for b.Loop() {
		i++
		ig := bus.Ignition{ID: "rt-" + strconv.Itoa(i), Source: "bench", Namespace: "default", Name: "i", Data: payload}
		if err := bs.PublishIgnition(context.Background(), ig); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			b.Fatal("no delivery")
		}
	}
}
