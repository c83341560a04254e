package bus

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// unanswered reports whether a JetStream API call may succeed when tried again:
// it timed out or found no responder (a NATS server restarting, the connection
// reconnecting, a cluster electing the stream's leader), JetStream said it is
// not available yet, or the server failed on its side (a 500, such as a store
// file of a consumer deleted a moment before).
func unanswered(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.Code == 500 || api.Code == 503 || api.Code == 504 || api.Code == 408
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrReconnectBufExceeded)
}

// untilAnswered calls f until it returns nil or an error that waiting does not
// fix, ctx ends, or, when tries is above 0, f was called that many times.
// Between two calls that JetStream did not answer (see unanswered) it waits a
// backoff; it logs the wait, first at once and then every half minute or so.
// A missing stream (ErrNoStream) is not waited for.
func (b *Bus) untilAnswered(ctx context.Context, what string, tries int, f func(ctx context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := f(ctx)
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrNoStream) || !unanswered(err) ||
			(tries > 0 && attempt+1 >= tries) {
			return err
		}
		if attempt%16 == 0 {
			b.log.Info("waiting for JetStream", "for", what, "err", err)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff(attempt, 50*time.Millisecond, 2*time.Second)):
		}
	}
}
