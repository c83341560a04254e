package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Handler handles one event. Returning nil acknowledges the message; a Permanent
// error dead-letters it; any other error makes it come back after a backoff.
type Handler func(ctx context.Context, d *Delivery) error

// permanentError marks an error that no redelivery can fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that no redelivery can fix: the message is moved to
// the dead letters with err as the reason instead of being retried.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked by Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// ConsumerOptions configure a durable consumer. Services that share a Name share
// the consumer: each message goes to one of them.
type ConsumerOptions struct {
	// Name of the durable consumer, e.g. "orca-dispatcher".
	Name string
	// Subjects to receive, e.g. FilterIgnitions.
	Subjects []string
	// Concurrency is the number of handlers in flight; default 16.
	Concurrency int
	// MaxDeliver is how many deliveries a message gets before it is dead-lettered;
	// default 10.
	MaxDeliver int
	// AckWait is how long the server waits for an ack before redelivering, also
	// after a crash; default 30s. Long handlers keep their message with progress
	// acks.
	AckWait time.Duration
	// RetryMin and RetryMax bound the exponential backoff between deliveries after
	// a handler error; defaults 200ms and 30s.
	RetryMin, RetryMax time.Duration
	// MaxDataSize is the largest event data accepted; default 256 KiB. Larger
	// events are dead-lettered.
	MaxDataSize int
}

func (o *ConsumerOptions) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = 10
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 200 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 30 * time.Second
	}
	if o.MaxDataSize <= 0 {
		o.MaxDataSize = 256 << 10
	}
}

// Consumer receives messages of a durable consumer and runs a Handler on each.
type Consumer struct {
	bus     *Bus
	opts    ConsumerOptions
	handler Handler
	log     *slog.Logger

	ctx    context.Context // handlers' context: ends when Consume's ctx does
	iter   jetstream.MessagesContext
	wg     sync.WaitGroup
	done   chan struct{}
	stopMu sync.Once
}

// Consume creates (or updates) the durable consumer and starts handling its
// messages until ctx ends or Stop is called.
func (b *Bus) Consume(ctx context.Context, o ConsumerOptions, h Handler) (*Consumer, error) {
	o.defaults()
	if o.Name == "" || len(o.Subjects) == 0 {
		return nil, errors.New("consumer needs a name and subjects")
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, b.stream, jetstream.ConsumerConfig{
		Durable:        o.Name,
		Description:    "Orca consumer " + o.Name,
		FilterSubjects: o.Subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        o.AckWait,
		// Deliveries are counted here, not by the server, so that a message that
		// used up its deliveries is dead-lettered instead of left behind.
		MaxDeliver:    -1,
		MaxAckPending: max(4*o.Concurrency, 256),
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on stream %s: %w", o.Name, b.stream, err)
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(o.Concurrency))
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", o.Name, err)
	}
	for _, outcome := range []string{"acked", "retried", "deadlettered"} {
		metrics.handled.WithLabelValues(o.Name, outcome) // scraped as 0 from the start
	}
	c := &Consumer{
		bus: b, opts: o, handler: h, ctx: ctx, iter: iter, done: make(chan struct{}),
		log: b.log.With("consumer", o.Name),
	}
	metrics.stream.track(c)
	go c.loop()
	go func() {
		select {
		case <-ctx.Done():
			c.Stop()
		case <-c.done:
		}
	}()
	return c, nil
}

// Stop stops fetching messages, lets the handlers in flight finish (they see their
// context end only when Consume's context ended) and returns when all are done.
// Messages fetched but not handled are released for redelivery.
func (c *Consumer) Stop() {
	c.stopMu.Do(func() { c.iter.Drain() })
	select {
	case <-c.done:
	case <-time.After(c.opts.AckWait):
		// Draining needs the server; without it, stop at once: what was not
		// acked is redelivered anyway.
		c.iter.Stop()
		<-c.done
	}
}

// Done is closed when the consumer has stopped.
func (c *Consumer) Done() <-chan struct{} { return c.done }

func (c *Consumer) loop() {
	defer close(c.done)
	defer c.wg.Wait()
	sem := make(chan struct{}, c.opts.Concurrency)
	failures := 0
	for {
		msg, err := c.iter.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || c.bus.nc.IsClosed() {
				return
			}
			failures++
			c.log.Warn("fetch messages", "err", err)
			time.Sleep(backoff(failures, 10*time.Millisecond, time.Second))
			continue
		}
		failures = 0
		sem <- struct{}{}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer func() { <-sem }()
			c.handle(msg)
		}()
	}
}

func (c *Consumer) handle(msg jetstream.Msg) {
	start := time.Now()
	md, err := msg.Metadata()
	if err != nil {
		// Not a JetStream message: nothing to ack or dead-letter.
		c.log.Error("message without metadata", "subject", msg.Subject(), "err", err)
		return
	}
	d, err := parse(msg.Subject(), msg.Headers(), msg.Data(), c.opts.MaxDataSize)
	if err != nil {
		c.deadLetter(msg, md, err.Error())
		return
	}
	d.NumDelivered = md.NumDelivered
	if md.NumDelivered > uint64(c.opts.MaxDeliver) {
		c.deadLetter(msg, md, fmt.Sprintf("delivered %d times without an ack", md.NumDelivered-1))
		return
	}

	err = c.call(msg, d)
	metrics.latency.WithLabelValues(c.opts.Name).Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		if err := msg.DoubleAck(context.WithoutCancel(c.ctx)); err != nil {
			// The message comes back after AckWait; the handler is idempotent.
			c.log.Warn("ack failed", "subject", msg.Subject(), "id", d.Event.ID(), "err", err)
			return
		}
		metrics.handled.WithLabelValues(c.opts.Name, "acked").Inc()
		metrics.age.WithLabelValues(c.opts.Name).Observe(time.Since(md.Timestamp).Seconds())
	case IsPermanent(err):
		c.deadLetter(msg, md, err.Error())
	case c.ctx.Err() != nil:
		// Shutting down: hand the message back at once to another replica.
		_ = msg.Nak()
		metrics.handled.WithLabelValues(c.opts.Name, "retried").Inc()
	case md.NumDelivered >= uint64(c.opts.MaxDeliver):
		c.deadLetter(msg, md, fmt.Sprintf("handler failed %d times, last: %v", md.NumDelivered, err))
	default:
		delay := backoff(int(md.NumDelivered)-1, c.opts.RetryMin, c.opts.RetryMax)
		c.log.Info("handler failed, will retry", "subject", msg.Subject(), "id", d.Event.ID(),
			"delivery", md.NumDelivered, "retryIn", delay, "err", err)
		if err := msg.NakWithDelay(delay); err != nil {
			c.log.Warn("nak failed", "subject", msg.Subject(), "err", err)
		}
		metrics.handled.WithLabelValues(c.opts.Name, "retried").Inc()
	}
}

// call runs the handler, telling the server the message is in progress while it
// runs, and turns a panic into an error.
func (c *Consumer) call(msg jetstream.Msg, d *Delivery) (err error) {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(c.opts.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("handler panicked", "subject", msg.Subject(), "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return c.handler(c.ctx, d)
}
