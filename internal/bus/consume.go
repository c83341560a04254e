package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Handler handles one event. Returning nil acknowledges the message; a Permanent
// error dead-letters it; any other error makes it come back after a backoff, for
// as long as ConsumerOptions.RetryFor allows.
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

// laterError asks for the message again after a set time, without counting it as
// a failure.
type laterError struct{ after time.Duration }

func (e laterError) Error() string { return fmt.Sprintf("not due yet: again in %s", e.after) }

// Later asks for the message to be delivered again after d (at least 1 ms): the
// message is not due yet, which is not a failure. Nothing is logged at Info or
// above, and RetryFor does not apply; the wait lives in the server (a delayed
// nak), so it survives restarts of the service. A handler uses it for durable
// timers: a retry's backoff, a join's timeout.
func Later(d time.Duration) error { return laterError{after: max(d, time.Millisecond)} }

// IsLater reports whether err was made by Later.
func IsLater(err error) bool { return errors.As(err, new(laterError)) }

// Defaults of ConsumerOptions.
const (
	DefaultRetryFor      = 24 * time.Hour
	DefaultMaxAckPending = 10000
	DefaultMaxWaiting    = 512
)

// pullShares is how many processes of one durable consumer fit in its
// MaxWaiting with all their pulls: each keeps at most MaxWaiting/pullShares pull
// requests waiting at the server.
const pullShares = 4

// ConsumerOptions configure a durable consumer. Services that share a Name share
// the consumer: each message goes to one of them.
type ConsumerOptions struct {
	// Name of the durable consumer, e.g. "orca-dispatcher".
	Name string
	// Subjects to receive, e.g. FilterIgnitions.
	Subjects []string
	// Concurrency is the number of handlers in flight; default 16. A message is
	// pulled only for a free handler, so none waits in the process. Free handlers
	// keep at most MaxWaiting/4 pull requests waiting at the server.
	Concurrency int
	// MaxWaiting is how many pull requests the server keeps waiting for the
	// durable consumer, from all its processes together; default
	// DefaultMaxWaiting, the server's own. A pull request beyond it is dropped by
	// the server, so each process keeps at most a quarter of it waiting: four
	// processes (replicas) with all their pulls fit. It is set when the durable
	// consumer is created; an existing one keeps its own.
	MaxWaiting int
	// AckWait is how long the server waits for an ack before redelivering, also
	// after a crash; default 30s. Long handlers keep their message with progress
	// acks.
	AckWait time.Duration
	// RetryMin and RetryMax bound the exponential backoff between deliveries after
	// a handler error; defaults 200ms and 30s.
	RetryMin, RetryMax time.Duration
	// RetryFor is how long after it was stored a message whose handler keeps
	// failing is retried before it is dead-lettered; default DefaultRetryFor. It
	// is cut to what the stream's MaxAge leaves, so that a message is
	// dead-lettered before the stream drops it.
	RetryFor time.Duration
	// MaxAckPending is how many messages may be unacknowledged at once, those
	// waiting for a retry included; default DefaultMaxAckPending.
	MaxAckPending int
	// MaxDataSize is the largest event data accepted; default 256 KiB. Larger
	// events are dead-lettered.
	MaxDataSize int
	// CheckInterval is how often the consumer and the stream are checked (the
	// consumer is recreated when it was deleted, its position saved and the
	// stream's usage measured); default 2s. A consumer created again after it
	// was deleted starts where its predecessor stood at the last check.
	CheckInterval time.Duration
	// Received, when set, is told the stream sequence of each message as soon as
	// it is pulled, before it is decoded, and the func it returns is called once
	// the message was handled: a handler can tell which earlier messages are
	// handled at the same time.
	Received func(seq uint64) (handled func())
}

func (o *ConsumerOptions) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 16
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
	if o.RetryFor <= 0 {
		o.RetryFor = DefaultRetryFor
	}
	if o.MaxAckPending <= 0 {
		o.MaxAckPending = DefaultMaxAckPending
	}
	if o.MaxWaiting <= 0 {
		o.MaxWaiting = DefaultMaxWaiting
	}
	if o.MaxDataSize <= 0 {
		o.MaxDataSize = 256 << 10
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = 2 * time.Second
	}
}

// fetchWait is how long one pull request waits for a message at the server.
const fetchWait = 30 * time.Second

// Consumer receives messages of a durable consumer and runs a Handler on each.
// Each of its Concurrency workers pulls one message, handles it and pulls the
// next, at most MaxWaiting/4 of them waiting for a message at once; a supervisor
// checks the consumer and the stream every CheckInterval and whenever a pull
// fails.
type Consumer struct {
	bus     *Bus
	opts    ConsumerOptions
	handler Handler
	log     *slog.Logger

	ctx       context.Context // handlers' context: ends when Consume's ctx does
	pulling   context.Context // ends on Stop: no more pulls
	stopPulls context.CancelFunc
	cons      atomic.Pointer[jetstream.Consumer]
	startSeq  atomic.Uint64 // the stream sequence the consumer starts at, 0 for the first
	retryFor  atomic.Int64  // RetryFor, cut to the stream's MaxAge
	pulls     chan struct{} // a token per pull request waiting at the server
	ready     readiness
	pos       position
	poke      chan struct{}
	wg        sync.WaitGroup
	done      chan struct{}
	stopOnce  sync.Once
}

// Consume creates (or updates) the durable consumer and starts handling its
// messages until ctx ends or Stop is called. A consumer that did not exist starts
// where the last one of its name stood (see ConsumerPosition), else with the
// first message of the stream. It waits while JetStream does not answer; a
// missing stream is an error (ErrNoStream).
func (b *Bus) Consume(ctx context.Context, o ConsumerOptions, h Handler) (*Consumer, error) {
	o.defaults()
	if o.Name == "" || len(o.Subjects) == 0 {
		return nil, errors.New("consumer needs a name and subjects")
	}
	c := &Consumer{
		bus: b, opts: o, handler: h, ctx: ctx, done: make(chan struct{}),
		poke: make(chan struct{}, 1),
		log:  b.log.With("consumer", o.Name),
	}
	c.ready.init()
	c.retryFor.Store(int64(o.RetryFor))
	// A service starting while a NATS node restarts waits for JetStream here,
	// not ready, rather than exit and start again.
	err := b.untilAnswered(ctx, "consumer "+o.Name, 0, func(ctx context.Context) error {
		si, err := b.streamInfo(ctx)
		if err != nil {
			return err
		}
		c.limitRetries(si)
		return c.ensure(ctx, si)
	})
	if err != nil {
		return nil, err
	}
	// The share of the consumer's MaxWaiting (its own, when it existed) that
	// this process's pulls may take.
	maxWaiting := (*c.cons.Load()).CachedInfo().Config.MaxWaiting
	c.pulls = make(chan struct{}, max(1, min(o.Concurrency, maxWaiting/pullShares)))
	for _, outcome := range []string{"acked", "retried", "deferred", "deadlettered"} {
		metrics.handled.WithLabelValues(o.Name, outcome) // scraped as 0 from the start
	}
	c.pulling, c.stopPulls = context.WithCancel(context.WithoutCancel(ctx))
	c.wg.Add(o.Concurrency)
	for range o.Concurrency {
		go c.work()
	}
	metrics.stream.track(c)
	supervised := make(chan struct{})
	go func() {
		defer close(supervised)
		c.supervise()
	}()
	go func() {
		c.wg.Wait()
		c.stopPulls()
		<-supervised
		close(c.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			c.Stop()
		case <-c.done:
		}
	}()
	return c, nil
}

// Stop stops pulling messages, lets the handlers in flight finish (they see their
// context end only when Consume's context ended) and returns when all are done.
func (c *Consumer) Stop() {
	c.stopOnce.Do(func() { c.stopPulls() })
	<-c.done
}

// Done is closed when the consumer has stopped.
func (c *Consumer) Done() <-chan struct{} { return c.done }

// Ready reports whether the consumer can consume: nil once its durable consumer
// and the stream were last found in place, else what is wrong.
func (c *Consumer) Ready() error {
	select {
	case <-c.done:
		return errors.New("consumer " + c.opts.Name + " stopped")
	default:
	}
	return c.ready.get()
}

// work pulls and handles one message at a time until the consumer stops.
func (c *Consumer) work() {
	defer c.wg.Done()
	failures := 0
	for c.pulling.Err() == nil {
		msg, err := c.pull()
		switch {
		case err == nil:
			failures = 0
			done := c.received(msg)
			c.handle(msg)
			done()
		case c.pulling.Err() != nil:
			return
		case c.bus.nc.IsClosed():
			c.ready.set(errors.New("nats connection closed"))
			return
		case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
			// No message within fetchWait: pull again.
		default:
			failures++
			c.trouble(err)
			select {
			case <-c.pulling.Done():
			case <-time.After(backoff(failures, 20*time.Millisecond, 2*time.Second)):
			}
			select {
			case <-c.pulling.Done():
			case <-c.ready.wait():
			}
		}
	}
}

// pull waits for a message, once this process has fewer than its share of
// pull requests waiting at the server.
func (c *Consumer) pull() (jetstream.Msg, error) {
	select {
	case c.pulls <- struct{}{}:
	case <-c.pulling.Done():
		return nil, c.pulling.Err()
	}
	defer func() { <-c.pulls }()
	ctx, cancel := context.WithTimeout(c.pulling, fetchWait)
	defer cancel()
	return (*c.cons.Load()).Next(jetstream.FetchContext(ctx))
}

// received calls ConsumerOptions.Received for msg.
func (c *Consumer) received(msg jetstream.Msg) func() {
	if c.opts.Received == nil {
		return func() {}
	}
	md, err := msg.Metadata()
	if err != nil {
		return func() {}
	}
	return c.opts.Received(md.Sequence.Stream)
}

// trouble reports a failed pull: the consumer is not ready until the supervisor
// has found it (or made it) again.
func (c *Consumer) trouble(err error) {
	if c.ready.set(fmt.Errorf("pull from consumer %s: %w", c.opts.Name, err)) {
		c.log.Warn("pull failed, checking the consumer", "err", err)
	}
	select {
	case c.poke <- struct{}{}:
	default:
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
	if start := c.startSeq.Load(); md.Sequence.Stream < start {
		// Below where the consumer was created to start: handled before it was
		// deleted. (nats-server may hand a durable created again under the same
		// name some of its predecessor's messages.)
		c.log.Debug("message before the consumer's start, not handled again", "sequence", md.Sequence.Stream, "start", start)
		_ = msg.Ack()
		return
	}
	d, err := parse(msg.Subject(), msg.Headers(), msg.Data(), c.opts.MaxDataSize)
	if err != nil {
		c.deadLetter(msg, md, err.Error())
		return
	}
	d.NumDelivered, d.Sequence = md.NumDelivered, md.Sequence.Stream

	ctx, span := c.startReceive(msg.Headers(), d)
	err = c.call(ctx, msg, d)
	endReceive(span, err)
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
	case errors.As(err, new(laterError)):
		var later laterError
		errors.As(err, &later)
		c.log.Debug("message not due yet", "subject", msg.Subject(), "id", d.Event.ID(), "again", later.after)
		if err := msg.NakWithDelay(later.after); err != nil {
			c.log.Warn("nak failed", "subject", msg.Subject(), "err", err)
		}
		metrics.handled.WithLabelValues(c.opts.Name, "deferred").Inc()
	case c.ctx.Err() != nil:
		// Shutting down: hand the message back at once to another replica.
		_ = msg.Nak()
		metrics.handled.WithLabelValues(c.opts.Name, "retried").Inc()
	default:
		delay := backoff(int(md.NumDelivered)-1, c.opts.RetryMin, c.opts.RetryMax)
		age := time.Since(md.Timestamp)
		if retryFor := time.Duration(c.retryFor.Load()); age+delay > retryFor {
			c.deadLetter(msg, md, fmt.Sprintf("handler still failing %s after the event was stored (retried for up to %s, %d deliveries), last error: %v",
				age.Round(time.Second), retryFor, md.NumDelivered, err))
			return
		}
		c.log.Info("handler failed, will retry", "subject", msg.Subject(), "id", d.Event.ID(),
			"delivery", md.NumDelivered, "retryIn", delay, "err", err)
		if err := msg.NakWithDelay(delay); err != nil {
			c.log.Warn("nak failed", "subject", msg.Subject(), "err", err)
		}
		metrics.handled.WithLabelValues(c.opts.Name, "retried").Inc()
	}
}

// call runs the handler, telling the server the message is in progress while it
// runs. A panic is a bug that no retry fixes: it becomes a Permanent error, and
// the event can be replayed from the dead letters once the bug is fixed.
func (c *Consumer) call(ctx context.Context, msg jetstream.Msg, d *Delivery) (err error) {
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
			err = Permanent(fmt.Errorf("handler panicked: %v", r))
		}
	}()
	return c.handler(ctx, d)
}

// readiness is an error that workers can wait to become nil.
type readiness struct {
	mu    sync.Mutex
	err   error
	clear chan struct{} // closed while err is nil
}

func (r *readiness) init() {
	r.clear = make(chan struct{})
	close(r.clear)
}

func (r *readiness) get() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// set records err (nil: ready) and reports whether readiness changed.
func (r *readiness) set(err error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	was := r.err == nil
	r.err = err
	switch {
	case was && err != nil:
		r.clear = make(chan struct{})
	case !was && err == nil:
		close(r.clear)
	}
	return was != (err == nil)
}

// wait returns a channel that is closed while the consumer is ready.
func (r *readiness) wait() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clear
}
