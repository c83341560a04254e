package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of the stream's limits.
const (
	DefaultStreamMaxAge   = 7 * 24 * time.Hour
	DefaultStreamMaxBytes = 1 << 30
	DefaultStreamMaxMsgs  = 1_000_000
)

// Usage ratios of the stream at which the consumers log a warning and an error.
const (
	StreamUsageWarn = 0.8
	StreamUsageFull = 0.95
)

// StreamOptions configure the stream that EnsureStream creates.
type StreamOptions struct {
	// Replicas of the stream; default 1.
	Replicas int
	// DuplicateWindow for Nats-Msg-Id deduplication; default 2 minutes.
	DuplicateWindow time.Duration
	// MaxAge of stored events; default DefaultStreamMaxAge (0 in the config
	// means forever).
	MaxAge time.Duration
	// MaxBytes and MaxMsgs limit the stream; defaults DefaultStreamMaxBytes and
	// DefaultStreamMaxMsgs, -1 for no limit. At a limit the stream refuses new
	// messages (publishers get an error and retry) instead of dropping old ones,
	// which may not be handled yet.
	MaxBytes, MaxMsgs int64
	// MemoryStorage stores the stream in memory instead of files (tests only).
	MemoryStorage bool
}

// EnsureStream creates Orca's stream (subjects orca.>) when it does not exist. It
// is safe to call from several services at once: an existing stream is kept as it
// is, and only checked to cover Orca's subjects.
func (b *Bus) EnsureStream(ctx context.Context, o StreamOptions) error {
	cfg := jetstream.StreamConfig{
		Name:        b.stream,
		Description: "Orca's CloudEvents: ignitions, task events and dead letters",
		Subjects:    []string{SubjectAll},
		Storage:     jetstream.FileStorage,
		Replicas:    max(o.Replicas, 1),
		Duplicates:  o.DuplicateWindow,
		MaxAge:      o.MaxAge,
		MaxBytes:    o.MaxBytes,
		MaxMsgs:     o.MaxMsgs,
		Retention:   jetstream.LimitsPolicy,
		// At a limit, refuse new messages: dropping the oldest would lose events
		// that were stored (acknowledged to their publisher) but maybe not handled.
		Discard: jetstream.DiscardNew,
	}
	if cfg.Duplicates == 0 {
		cfg.Duplicates = 2 * time.Minute
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultStreamMaxAge
	}
	if cfg.MaxAge > 0 {
		cfg.Duplicates = min(cfg.Duplicates, cfg.MaxAge)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultStreamMaxBytes
	}
	if cfg.MaxMsgs == 0 {
		cfg.MaxMsgs = DefaultStreamMaxMsgs
	}
	if o.MemoryStorage {
		cfg.Storage = jetstream.MemoryStorage
	}
	// JetStream may still be starting, or electing the stream's leader: wait
	// for it, but not for ever at a service's start.
	err := b.untilAnswered(ctx, "stream "+b.stream, 50, func(ctx context.Context) error {
		_, err := b.js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return b.checkStream(ctx)
		}
		if err != nil {
			return fmt.Errorf("create stream %s: %w", b.stream, err)
		}
		b.log.Info("stream created", "stream", b.stream, "replicas", cfg.Replicas, "duplicateWindow", cfg.Duplicates,
			"maxAge", cfg.MaxAge, "maxBytes", cfg.MaxBytes, "maxMsgs", cfg.MaxMsgs)
		return nil
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("create stream %s: %w", b.stream, ctx.Err())
	}
	return err
}

func (b *Bus) checkStream(ctx context.Context) error {
	s, err := b.js.Stream(ctx, b.stream)
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", b.stream, err)
	}
	cfg := s.CachedInfo().Config
	if !slices.Contains(cfg.Subjects, SubjectAll) {
		return fmt.Errorf("stream %s exists with subjects %v: it must hold %s", b.stream, cfg.Subjects, SubjectAll)
	}
	if cfg.Discard == jetstream.DiscardOld && (cfg.MaxBytes > 0 || cfg.MaxMsgs > 0 || cfg.MaxAge == 0) {
		b.log.Warn("stream drops its oldest messages at its limits, which may not be handled yet: set discard policy new",
			"stream", b.stream, "maxBytes", cfg.MaxBytes, "maxMsgs", cfg.MaxMsgs, "fix", "nats stream edit "+b.stream+" --discard new")
	}
	return nil
}

// streamInfo asks the server for the stream's configuration and state.
func (b *Bus) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	s, err := b.js.Stream(ctx, b.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoStream, b.stream)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", b.stream, err)
	}
	return s.CachedInfo(), nil
}

// StreamUsage returns how full the stream is: the larger of its messages over
// MaxMsgs and its bytes over MaxBytes (0 without limits).
func StreamUsage(si *jetstream.StreamInfo) float64 {
	ratio := 0.0
	if m := si.Config.MaxMsgs; m > 0 {
		ratio = max(ratio, float64(si.State.Msgs)/float64(m))
	}
	if m := si.Config.MaxBytes; m > 0 {
		ratio = max(ratio, float64(si.State.Bytes)/float64(m))
	}
	return ratio
}

// usageLevel is the last logged level of the stream's usage: 0 fine, 1 filling
// up, 2 full.
type usageLevel struct {
	mu    sync.Mutex
	level int
}

// observeStream exports the stream's usage as metrics and logs when it crosses
// StreamUsageWarn or StreamUsageFull, either way.
func (b *Bus) observeStream(si *jetstream.StreamInfo) {
	ratio := StreamUsage(si)
	metrics.streamUsage.WithLabelValues(b.stream).Set(ratio)
	level := 0
	switch {
	case ratio >= StreamUsageFull:
		level = 2
	case ratio >= StreamUsageWarn:
		level = 1
	}
	b.usage.mu.Lock()
	defer b.usage.mu.Unlock()
	if level == b.usage.level {
		return
	}
	b.usage.level = level
	args := []any{"stream", b.stream, "usage", fmt.Sprintf("%.0f%%", 100*ratio), "messages", si.State.Msgs,
		"maxMsgs", si.Config.MaxMsgs, "bytes", si.State.Bytes, "maxBytes", si.Config.MaxBytes}
	switch level {
	case 2:
		b.log.Error("stream is full: new events are refused until old ones age out; raise its limits", args...)
	case 1:
		b.log.Warn("stream is filling up", args...)
	default:
		b.log.Info("stream usage is back to normal", args...)
	}
}
