package bus

import (
	"context"
	"fmt"
	"time"
)

// DuplicateWindow returns how long the stream remembers a Nats-Msg-Id: a second
// publish of the same event within it is dropped. It waits while JetStream
// does not answer.
func (b *Bus) DuplicateWindow(ctx context.Context) (time.Duration, error) {
	var window time.Duration
	err := b.untilAnswered(ctx, "stream "+b.stream, 0, func(ctx context.Context) error {
		s, err := b.js.Stream(ctx, b.stream)
		if err != nil {
			return fmt.Errorf("look up stream %s: %w", b.stream, err)
		}
		window = s.CachedInfo().Config.Duplicates
		return nil
	})
	return window, err
}
