package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

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
