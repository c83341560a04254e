package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers of a dead letter.
const (
	HeaderDeadLetterReason   = "Orca-Deadletter-Reason"
	HeaderDeadLetterSubject  = "Orca-Deadletter-Subject"
	HeaderDeadLetterConsumer = "Orca-Deadletter-Consumer"
	HeaderDeadLetterSequence = "Orca-Deadletter-Sequence"
	HeaderDeadLetterTruncate = "Orca-Deadletter-Truncated"
)

// DeadLetterSubject returns the subject a message published on subject is moved to.
func DeadLetterSubject(subject string) string { return SubjectDeadLetter + "." + subject }

// deadLetter stores msg, whole, on the dead-letter subject with the reason, then
// terminates the original. If the dead letter cannot be stored the original is
// handed back for a later try: it is never dropped.
func (c *Consumer) deadLetter(msg jetstream.Msg, md *jetstream.MsgMetadata, reason string) {
	dl := nats.NewMsg(DeadLetterSubject(msg.Subject()))
	for k, v := range msg.Headers() {
		// JetStream's own headers (Nats-Msg-Id, Nats-Expected-..., Nats-TTL) would
		// act on the dead letter itself: leave them out.
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue
		}
		dl.Header[k] = v
	}
	// A header value is one line.
	reason = strings.ReplaceAll(strings.TrimSpace(reason), "\n", " / ")
	dl.Header.Set(HeaderDeadLetterReason, reason)
	dl.Header.Set(HeaderDeadLetterSubject, msg.Subject())
	dl.Header.Set(HeaderDeadLetterConsumer, c.opts.Name)
	dl.Header.Set(HeaderDeadLetterSequence, strconv.FormatUint(md.Sequence.Stream, 10))
	dl.Data = msg.Data()
	id := fmt.Sprintf("deadletter-%s-%s-%d", md.Stream, c.opts.Name, md.Sequence.Stream)

	ctx := context.WithoutCancel(c.ctx)
	_, err := c.bus.js.PublishMsg(ctx, dl, jetstream.WithMsgID(id))
	if errors.Is(err, nats.ErrMaxPayload) {
		// The headers pushed a message at the size limit over it: keep what fits.
		keep := max(int(c.bus.nc.MaxPayload())-4096-len(reason), 0)
		dl.Data = dl.Data[:min(keep, len(dl.Data))]
		dl.Header.Set(HeaderDeadLetterTruncate, strconv.Itoa(len(msg.Data())))
		_, err = c.bus.js.PublishMsg(ctx, dl, jetstream.WithMsgID(id))
	}
	if err != nil {
		c.log.Error("store dead letter failed, will retry", "subject", msg.Subject(), "reason", reason, "err", err)
		_ = msg.NakWithDelay(backoff(int(md.NumDelivered), c.opts.RetryMin, c.opts.RetryMax))
		return
	}
	if err := msg.TermWithReason(reason); err != nil {
		c.log.Warn("terminate dead-lettered message", "subject", msg.Subject(), "err", err)
	}
	metrics.handled.WithLabelValues(c.opts.Name, "deadlettered").Inc()
	c.log.Warn("message dead-lettered", "subject", msg.Subject(), "sequence", md.Sequence.Stream, "reason", reason)
}

// DeadLetters returns the dead letters stored under subjects (dead-letter
// subjects, such as FilterDeadLetter, the default), oldest first, decoded as
// Follow decodes them.
func (b *Bus) DeadLetters(ctx context.Context, subjects ...string) ([]Seen, error) {
	if len(subjects) == 0 {
		subjects = []string{FilterDeadLetter}
	}
	cons, err := b.js.OrderedConsumer(ctx, b.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: 30 * time.Second,
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoStream, b.stream)
	}
	if err != nil {
		return nil, fmt.Errorf("read dead letters of stream %s: %w", b.stream, err)
	}
	defer func() {
		// Do not leave the consumer behind for its InactiveThreshold.
		if info := cons.CachedInfo(); info != nil {
			_ = b.js.DeleteConsumer(context.WithoutCancel(ctx), b.stream, info.Name)
		}
	}()
	var out []Seen
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return nil, fmt.Errorf("read dead letters of stream %s: %w", b.stream, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			out = append(out, seen(msg))
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("read dead letters of stream %s: %w", b.stream, err)
		}
		if n == 0 {
			return out, nil
		}
	}
}

// Replayed says what Replay did with one dead letter.
type Replayed struct {
	// Subject the event was published on again, and its Nats-Msg-Id: the event id.
	Subject, ID string
	// Duplicate is set when the stream already held an event with that id within
	// its duplicate window, and did not store it again.
	Duplicate bool
}

// Replay publishes the dead letter stored at seq again on its original subject,
// with its original headers and data and Nats-Msg-Id set to its event id, so that
// it is deduplicated like any event (within the duplicate window of the original,
// which was dead-lettered, the id is "<event id>-replay"); then, unless keep is
// set, it deletes the dead letter. A dead letter whose data was truncated is not
// replayed.
func (b *Bus) Replay(ctx context.Context, seq uint64, keep bool) (*Replayed, error) {
	s, err := b.js.Stream(ctx, b.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoStream, b.stream)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", b.stream, err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("no message %d in stream %s", seq, b.stream)
	}
	if err != nil {
		return nil, fmt.Errorf("get message %d of stream %s: %w", seq, b.stream, err)
	}
	subject, ok := strings.CutPrefix(raw.Subject, SubjectDeadLetter+".")
	if !ok {
		return nil, fmt.Errorf("message %d is on %s, not a dead letter", seq, raw.Subject)
	}
	if original := raw.Header.Get(HeaderDeadLetterSubject); original != "" {
		subject = original
	}
	if n := raw.Header.Get(HeaderDeadLetterTruncate); n != "" {
		return nil, fmt.Errorf("dead letter %d keeps only part of its %s bytes of data: it cannot be replayed", seq, n)
	}
	msg := nats.NewMsg(subject)
	for k, v := range raw.Header {
		if !strings.HasPrefix(strings.ToLower(k), "orca-deadletter-") && !strings.HasPrefix(strings.ToLower(k), "nats-") {
			msg.Header[k] = v
		}
	}
	msg.Data = raw.Data
	id := replayID(msg.Header, msg.Data, b.stream, seq)
	ack, err := b.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(b.stream))
	if err == nil && ack.Duplicate && strconv.FormatUint(ack.Sequence, 10) == raw.Header.Get(HeaderDeadLetterSequence) {
		// The duplicate is the dead-lettered original itself, still within the
		// duplicate window: store the replay under an id of its own, which
		// deduplicates the replays of this event among themselves.
		ack, err = b.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id+"-replay"), jetstream.WithExpectStream(b.stream))
	}
	if err != nil {
		return nil, fmt.Errorf("publish dead letter %d on %s: %w", seq, subject, err)
	}
	if !keep {
		if err := s.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, fmt.Errorf("replayed dead letter %d on %s, but deleting it failed: %w", seq, subject, err)
		}
	}
	return &Replayed{Subject: subject, ID: id, Duplicate: ack.Duplicate}, nil
}

// replayID returns the id a replayed message is deduplicated by: its event id,
// else (a message that is no CloudEvent) one derived from the dead letter.
func replayID(h nats.Header, data []byte, stream string, seq uint64) string {
	if e, _ := decode(h, data); e.ID() != "" {
		return e.ID()
	}
	return fmt.Sprintf("replay-%s-%d", stream, seq)
}
