package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// supervise checks the consumer and the stream every CheckInterval, and at once
// when a worker's pull failed, until the consumer stops.
func (c *Consumer) supervise() {
	t := time.NewTicker(c.opts.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-c.pulling.Done():
			return
		case <-t.C:
		case <-c.poke:
		}
		ctx, cancel := context.WithTimeout(c.pulling, 10*time.Second)
		err := c.check(ctx)
		cancel()
		if c.pulling.Err() != nil {
			return
		}
		if c.ready.set(err) {
			if err != nil {
				c.log.Error("cannot consume", "err", err)
			} else {
				c.log.Info("consuming again")
			}
		}
	}
}

// check finds the stream and the durable consumer, recreates the consumer when
// it was deleted, and records the consumer's position and the stream's usage. It
// returns why the consumer cannot consume, or nil.
func (c *Consumer) check(ctx context.Context) error {
	si, err := c.bus.streamInfo(ctx)
	if err != nil {
		return err
	}
	c.bus.observeStream(si)
	c.limitRetries(si)
	info, err := (*c.cons.Load()).Info(ctx)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		c.log.Warn("durable consumer was deleted, creating it again")
		return c.ensure(ctx, si)
	}
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.opts.Name, err)
	}
	c.pos.observe(ctx, c, si, info)
	return nil
}

// ensure creates the durable consumer, or updates its settings when it exists.
// A new consumer starts after the position its predecessor of the same name
// reached on this stream (ConsumerPosition), else at the stream's first message.
func (c *Consumer) ensure(ctx context.Context, si *jetstream.StreamInfo) error {
	cfg := jetstream.ConsumerConfig{
		Durable:        c.opts.Name,
		Description:    "Orca consumer " + c.opts.Name,
		FilterSubjects: c.opts.Subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.opts.AckWait,
		// Deliveries are not limited by the server: a failing message is retried
		// until RetryFor, then dead-lettered by the consumer.
		MaxDeliver:    -1,
		MaxAckPending: c.opts.MaxAckPending,
		MaxWaiting:    c.opts.MaxWaiting,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	js, stream := c.bus.js, c.bus.stream
	for attempt := 0; ; attempt++ {
		cur, err := js.Consumer(ctx, stream, c.opts.Name)
		var cons jetstream.Consumer
		switch {
		case err == nil:
			// Where a consumer starts, and how many pulls the server keeps
			// waiting for it, cannot change: keep them.
			old := cur.CachedInfo().Config
			cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = old.DeliverPolicy, old.OptStartSeq, old.OptStartTime
			cfg.MaxWaiting = old.MaxWaiting
			cons, err = js.UpdateConsumer(ctx, stream, cfg)
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			start := c.pos.resume(ctx, c, si)
			if start > 1 {
				cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
			}
			cons, err = js.CreateConsumer(ctx, stream, cfg)
			if errors.Is(err, jetstream.ErrConsumerExists) && attempt < 3 {
				continue // a replica created it meanwhile
			}
			if err == nil {
				c.log.Info("durable consumer created", "stream", stream, "startSequence", max(start, 1))
			}
		case errors.Is(err, jetstream.ErrStreamNotFound):
			return fmt.Errorf("%w: %s", ErrNoStream, stream)
		}
		if err != nil {
			return fmt.Errorf("create consumer %s on stream %s: %w", c.opts.Name, stream, err)
		}
		c.cons.Store(&cons)
		start := uint64(0)
		if cfg.DeliverPolicy == jetstream.DeliverByStartSequencePolicy {
			start = cfg.OptStartSeq
		}
		c.startSeq.Store(start)
		c.pos.observe(ctx, c, si, cons.CachedInfo())
		return nil
	}
}

// limitRetries cuts RetryFor to what the stream's MaxAge leaves, so that a
// failing message is dead-lettered before the stream drops it.
func (c *Consumer) limitRetries(si *jetstream.StreamInfo) {
	want, maxAge := c.opts.RetryFor, si.Config.MaxAge
	if maxAge > 0 {
		limit := maxAge - c.opts.RetryMax - c.opts.AckWait
		if limit <= 0 {
			limit = maxAge / 2
		}
		want = min(want, limit)
	}
	if old := time.Duration(c.retryFor.Swap(int64(want))); old != want && want != c.opts.RetryFor {
		c.log.Warn("retries cut to what the stream keeps", "retryFor", want, "configured", c.opts.RetryFor, "streamMaxAge", maxAge)
	}
}

// position is how far a consumer got: every message of the stream up to seq was
// handled. It is kept in memory and saved under ConsumerPosition, so that a
// consumer created again (after it was deleted, or while its service was down)
// starts after it instead of replaying the stream.
type position struct {
	mu      sync.Mutex
	created time.Time // creation time of the stream that seq numbers
	seq     uint64
	saved   uint64
	failed  string // the last error saving it, logged once
}

// observe records the consumer's ack floor and saves it when it moved.
func (p *position) observe(ctx context.Context, c *Consumer, si *jetstream.StreamInfo, info *jetstream.ConsumerInfo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.created.Equal(si.Created) {
		p.created, p.seq, p.saved = si.Created, 0, 0
	}
	p.seq = max(p.seq, info.AckFloor.Stream)
	if p.seq == p.saved {
		return
	}
	err := c.bus.saveConsumerPosition(ctx, c.opts.Name, ConsumerPosition{StreamCreated: p.created, Sequence: p.seq})
	switch {
	case err == nil:
		p.saved, p.failed = p.seq, ""
	case err.Error() != p.failed:
		p.failed = err.Error()
		c.log.Warn("save consumer position", "sequence", p.seq, "err", err)
	}
}

// resume returns the stream sequence a new consumer starts at: after the
// position known in memory or saved, if it belongs to this stream; else 0.
func (p *position) resume(ctx context.Context, c *Consumer, si *jetstream.StreamInfo) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seq > 0 && p.created.Equal(si.Created) {
		return p.seq + 1
	}
	saved, err := c.bus.loadConsumerPosition(ctx, c.opts.Name)
	if err != nil {
		c.log.Warn("read consumer position, starting at the first message", "err", err)
		return 0
	}
	if saved == nil || !saved.StreamCreated.Equal(si.Created) || saved.Sequence == 0 {
		return 0
	}
	p.created, p.seq, p.saved = si.Created, saved.Sequence, saved.Sequence
	return p.seq + 1
}
