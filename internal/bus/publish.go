package bus

import (
	"context"
	"errors"
	"fmt"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"

	"github.com/sirocco-cloud/orca/internal/telemetry"
)

// ErrDuplicate says that the stream already held an event with the same source
// and id, published within its duplicate window, and stored nothing.
var ErrDuplicate = errors.New("the stream already holds an event with this source and id")

// PublishIgnition publishes an ignition and waits until the stream stored it; a
// republish of an ignition the stream holds is a success.
func (b *Bus) PublishIgnition(ctx context.Context, ig Ignition) error {
	err := b.PublishNewIgnition(ctx, ig)
	if errors.Is(err, ErrDuplicate) {
		return nil
	}
	return err
}

// PublishNewIgnition is PublishIgnition for a publisher that means a new
// ignition: it returns ErrDuplicate when the stream held one with the same source
// and id already, which then starts nothing.
func (b *Bus) PublishNewIgnition(ctx context.Context, ig Ignition) error {
	e, err := ig.Event()
	if err != nil {
		return fmt.Errorf("ignition %s/%s: %w", ig.Namespace, ig.Name, err)
	}
	dup, err := b.publish(ctx, IgnitionSubject(ig.Namespace, ig.Name), e)
	if err == nil && dup {
		return fmt.Errorf("ignition %s/%s with source %q and id %q: %w", ig.Namespace, ig.Name, ig.Source, ig.ID, ErrDuplicate)
	}
	return err
}

// PublishTaskEvent publishes a task event and waits until the stream stored it.
func (b *Bus) PublishTaskEvent(ctx context.Context, te TaskEvent) error {
	e, err := te.Event()
	if err != nil {
		return fmt.Errorf("task event %s/%s: %w", te.Result.Namespace, te.Result.Task, err)
	}
	_, err = b.publish(ctx, TaskSubject(te.Succeeded, te.Result.Namespace, te.Result.Task), e)
	return err
}

// publish stores e on subject with Nats-Msg-Id set to MsgID(source, id); a
// duplicate within the stream's window is acknowledged and dropped by the
// server, and reported as duplicate.
func (b *Bus) publish(ctx context.Context, subject string, e cloudevents.Event) (duplicate bool, err error) {
	ctx, span := startPublish(ctx, subject, &e)
	defer func() { telemetry.End(span, err) }()
	msg := encodeBinary(subject, e)
	telemetry.W3C.Inject(ctx, headerCarrier(msg.Header))
	ack, err := b.js.PublishMsg(ctx, msg, jetstream.WithMsgID(MsgID(e.Source(), e.ID())), jetstream.WithExpectStream(b.stream))
	if err != nil {
		metrics.published.WithLabelValues(e.Type(), "error").Inc()
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			err = fmt.Errorf("%w: %s (no stream answered)", ErrNoStream, b.stream)
		}
		return false, fmt.Errorf("publish %s %q on %s: %w", e.Type(), e.ID(), subject, err)
	}
	outcome := "stored"
	if ack.Duplicate {
		outcome = "duplicate"
	}
	metrics.published.WithLabelValues(e.Type(), outcome).Inc()
	if ack.Duplicate && span.IsRecording() {
		span.SetAttributes(attribute.Bool("orca.duplicate", true))
	}
	return ack.Duplicate, nil
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
