package bus

import (
	"context"
	"fmt"
	"time"
)

// DuplicateWindow returns how long the stream remembers a Nats-Msg-Id: a second
// publish of the same event within it is dropped.
func (b *Bus) DuplicateWindow(ctx context.Context) (time.Duration, error) {
	s, err := b.js.Stream(ctx, b.stream)
	if err != nil {
		return 0, fmt.Errorf("look up stream %s: %w", b.stream, err)
	}
	return s.CachedInfo().Config.Duplicates, nil
}
