package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/sirocco-cloud/orca/internal/bus"
)

// Consumer is a manager runnable that consumes from the bus once the manager's
// cache has synced, and until the manager stops. It runs in every replica: the
// replicas share the durable consumer, and each message goes to one of them.
type Consumer struct {
	Cache interface {
		WaitForCacheSync(ctx context.Context) bool
	}
	Bus     *bus.Bus
	Options bus.ConsumerOptions
	Handler bus.Handler
}

// NeedLeaderElection is false: every replica consumes.
func (r *Consumer) NeedLeaderElection() bool { return false }

// Start consumes until ctx ends.
func (r *Consumer) Start(ctx context.Context) error {
	if !r.Cache.WaitForCacheSync(ctx) {
		return errors.New("cache did not sync")
	}
	c, err := r.Bus.Consume(ctx, r.Options, r.Handler)
	if err != nil {
		return fmt.Errorf("consume %s: %w", r.Options.Name, err)
	}
	slog.Info("consuming events", "consumer", r.Options.Name, "subjects", r.Options.Subjects)
	<-c.Done()
	return nil
}
