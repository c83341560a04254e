package bus

import (
	"context"
	"errors"
	"fmt"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go/jetstream"
)

// PublishIgnition publishes an ignition and waits until the stream stored it.
func (b *Bus) PublishIgnition(ctx context.Context, ig Ignition) error {
	e, err := ig.Event()
	if err != nil {
		return fmt.Errorf("ignition %s/%s: %w", ig.Namespace, ig.Name, err)
	}
	return b.publish(ctx, IgnitionSubject(ig.Namespace, ig.Name), e)
}

// PublishTaskEvent publishes a task event and waits until the stream stored it.
func (b *Bus) PublishTaskEvent(ctx context.Context, te TaskEvent) error {
	e, err := te.Event()
	if err != nil {
		return fmt.Errorf("task event %s/%s: %w", te.Result.Namespace, te.Result.Task, err)
	}
	return b.publish(ctx, TaskSubject(te.Succeeded, te.Result.Namespace, te.Result.Task), e)
}

// publish stores e on subject with Nats-Msg-Id set to its id; a duplicate within
// the stream's window is acknowledged and dropped by the server.
func (b *Bus) publish(ctx context.Context, subject string, e cloudevents.Event) error {
	msg := encodeBinary(subject, e)
	ack, err := b.js.PublishMsg(ctx, msg, jetstream.WithMsgID(e.ID()), jetstream.WithExpectStream(b.stream))
	if err != nil {
		metrics.published.WithLabelValues(e.Type(), "error").Inc()
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			err = fmt.Errorf("%w: %s (no stream answered)", ErrNoStream, b.stream)
		}
		return fmt.Errorf("publish %s %q on %s: %w", e.Type(), e.ID(), subject, err)
	}
	outcome := "stored"
	if ack.Duplicate {
		outcome = "duplicate"
	}
	metrics.published.WithLabelValues(e.Type(), outcome).Inc()
	return nil
}

// Republish publishes e in binary mode on any subject with core NATS, as the nats
// action does; a stream that covers the subject stores it like any publish.
func (b *Bus) Republish(subject string, e cloudevents.Event) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("invalid CloudEvent: %w", err)
	}
	if err := b.nc.PublishMsg(encodeBinary(subject, e)); err != nil {
		return fmt.Errorf("publish %s on %s: %w", e.Type(), subject, err)
	}
	return b.nc.Flush()
}
