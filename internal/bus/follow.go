package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoStream says that Orca's stream does not exist on the NATS server.
var ErrNoStream = errors.New("stream not found")

// CheckStream reports whether Orca's stream exists and holds Orca's subjects. The
// error wraps ErrNoStream when the stream is missing.
func (b *Bus) CheckStream(ctx context.Context) error {
	if _, err := b.js.Stream(ctx, b.stream); errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w: %s", ErrNoStream, b.stream)
	}
	return b.checkStream(ctx)
}

// Stream returns the name of the stream the Bus publishes to.
func (b *Bus) Stream() string { return b.stream }

// FollowOptions configure Follow.
type FollowOptions struct {
	// Subjects to follow; default SubjectAll. Filters must not overlap.
	Subjects []string
	// Since, when set, first replays what the stream stored from that time on;
	// the zero value follows new messages only.
	Since time.Time
	// InactiveThreshold is how long the server keeps the ephemeral consumer after
	// its client went away without deleting it; default 30s.
	InactiveThreshold time.Duration
	// Started, when set, is called once the consumer exists, before any message.
	Started func()
}

// Seen is one message that Follow saw.
type Seen struct {
	// Subject the message was stored on.
	Subject string
	// Sequence in the stream, and the time the stream stored it.
	Sequence uint64
	Stored   time.Time
	// Delivery is the decoded event (for a dead letter, the original event), or
	// nil when the message does not decode; Err then says why.
	Delivery *Delivery
	Err      error
	// DeadLetter is set for a message on orca.deadletter.>.
	DeadLetter *DeadLetter
}

// DeadLetter describes a message moved to the dead letters.
type DeadLetter struct {
	// Subject the message was first published on.
	Subject string
	// Reason it was moved, and the consumer that moved it.
	Reason, Consumer string
}

// Follow watches the stream live with an ephemeral ordered consumer (no acks, in
// memory, deleted when Follow returns and otherwise removed by the server after
// InactiveThreshold) and calls fn for each message in stream order. It returns nil
// when ctx ends, or an error when the consumer cannot be created or the connection
// closes.
func (b *Bus) Follow(ctx context.Context, o FollowOptions, fn func(Seen)) error {
	if len(o.Subjects) == 0 {
		o.Subjects = []string{SubjectAll}
	}
	if o.InactiveThreshold <= 0 {
		o.InactiveThreshold = 30 * time.Second
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    o.Subjects,
		DeliverPolicy:     jetstream.DeliverNewPolicy,
		InactiveThreshold: o.InactiveThreshold,
	}
	if !o.Since.IsZero() {
		since := o.Since
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &since
	}
	cons, err := b.js.OrderedConsumer(ctx, b.stream, cfg)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("follow %v: %w: %s", o.Subjects, ErrNoStream, b.stream)
		}
		return fmt.Errorf("follow %v on stream %s: %w", o.Subjects, b.stream, err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { fn(seen(msg)) })
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("follow %v: %w: %s", o.Subjects, ErrNoStream, b.stream)
		}
		return fmt.Errorf("follow %v on stream %s: %w", o.Subjects, b.stream, err)
	}
	if o.Started != nil {
		o.Started()
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for err = nil; err == nil && ctx.Err() == nil; {
		select {
		case <-ctx.Done():
		case <-tick.C:
			if b.nc.IsClosed() {
				err = errors.New("nats connection closed")
			}
		}
	}
	cc.Stop()
	<-cc.Closed()
	// Do not leave the consumer behind for InactiveThreshold.
	if info := cons.CachedInfo(); info != nil && !b.nc.IsClosed() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = b.js.DeleteConsumer(dctx, b.stream, info.Name)
		cancel()
	}
	return err
}

func seen(msg jetstream.Msg) Seen {
	s := Seen{Subject: msg.Subject()}
	if md, err := msg.Metadata(); err == nil {
		s.Sequence, s.Stored = md.Sequence.Stream, md.Timestamp
	}
	subject := msg.Subject()
	if strings.HasPrefix(subject, SubjectDeadLetter+".") {
		h := msg.Headers()
		s.DeadLetter = &DeadLetter{
			Subject:  h.Get(HeaderDeadLetterSubject),
			Reason:   h.Get(HeaderDeadLetterReason),
			Consumer: h.Get(HeaderDeadLetterConsumer),
		}
		if s.DeadLetter.Subject == "" {
			s.DeadLetter.Subject = strings.TrimPrefix(subject, SubjectDeadLetter+".")
		}
		subject = s.DeadLetter.Subject
	}
	s.Delivery, s.Err = parse(subject, msg.Headers(), msg.Data(), 0)
	return s
}

// NamespaceSubjects returns the filters that follow every event of a namespace:
// its ignitions, its Tasks' successes, failures, skips, retried attempts, halted
// runs and forbidden starts, and their dead letters.
func NamespaceSubjects(namespace string) []string {
	prefixes := []string{SubjectIgnited, SubjectTaskSucceeded, SubjectTaskFailed, SubjectTaskSkipped,
		SubjectTaskRetrying, SubjectTaskHalted, SubjectTaskForbidden}
	subjects := ScopedSubjects([]string{namespace}, prefixes...)
	for _, p := range prefixes {
		subjects = append(subjects, ScopedSubjects([]string{namespace}, DeadLetterSubject(p))...)
	}
	return subjects
}
