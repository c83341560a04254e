package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"sigs.k8s.io/controller-runtime/pkg/manager"

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

	consumer atomic.Pointer[bus.Consumer]
}

// AddConsumer adds c to the manager, and its readiness to the manager's /readyz
// as the check "consumer-<name>".
func AddConsumer(mgr manager.Manager, c *Consumer) error {
	if err := mgr.Add(c); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("consumer-"+c.Options.Name, c.Ready)
}

// NeedLeaderElection is false: every replica consumes.
func (r *Consumer) NeedLeaderElection() bool { return false }

// Ready fails until the consumer consumes, and whenever it cannot: its durable
// consumer or the stream is missing and not back yet, or NATS is out of reach.
func (r *Consumer) Ready(*http.Request) error {
	c := r.consumer.Load()
	if c == nil {
		return fmt.Errorf("consumer %s not started", r.Options.Name)
	}
	return c.Ready()
}

// Start consumes until ctx ends. It fails when the consumer stops before: the
// process then exits, and starts again.
func (r *Consumer) Start(ctx context.Context) error {
	if !r.Cache.WaitForCacheSync(ctx) {
		return errors.New("cache did not sync")
	}
	c, err := r.Bus.Consume(ctx, r.Options, r.Handler)
	if err != nil {
		return fmt.Errorf("consume %s: %w", r.Options.Name, err)
	}
	r.consumer.Store(c)
	slog.Info("consuming events", "consumer", r.Options.Name, "subjects", r.Options.Subjects)
	<-c.Done()
	if ctx.Err() == nil {
		return fmt.Errorf("consumer %s stopped: %w", r.Options.Name, c.Ready())
	}
	return nil
}
