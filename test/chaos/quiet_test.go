package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
)

// waitQuiet waits until the system is quiet: every process runs, no Pod changed
// for quiet and every Pod has ended, and every durable consumer of the stream
// (Orca's own ones must exist) has nothing pending and nothing unacknowledged.
// After timeout it returns what still was not quiet.
func waitQuiet(ctx context.Context, k *kubelet, js jetstream.JetStream, procs []*proc, quiet, timeout time.Duration, say func(string, ...any)) error {
	start := time.Now()
	told := start
	for {
		reason := notQuiet(ctx, k, js, procs, quiet)
		if reason == "" {
			return nil
		}
		if time.Since(start) > timeout {
			return fmt.Errorf("not quiet after %s: %s (%s)", timeout, reason, k.summary())
		}
		if time.Since(told) >= 30*time.Second {
			say("waiting for quiet: %s (%s)", reason, k.summary())
			told = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// notQuiet says what is not quiet now; "" when all is.
func notQuiet(ctx context.Context, k *kubelet, js jetstream.JetStream, procs []*proc, quiet time.Duration) string {
	for _, p := range procs {
		if !p.running() {
			return p.name + " is not running"
		}
	}
	if !k.idle(quiet) {
		return fmt.Sprintf("Pods changed in the last %s or have not ended", quiet)
	}
	busy, err := busyConsumers(ctx, js)
	if err != nil {
		return err.Error()
	}
	return strings.Join(busy, "; ")
}

// busyConsumers lists the consumers of the stream that have messages pending or
// unacknowledged, and Orca's consumers that are missing. The join timers'
// consumer holds each run's timer unacknowledged until its timeout: it is busy
// only with timers not delivered yet.
func busyConsumers(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, bus.DefaultStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", bus.DefaultStream, err)
	}
	var busy, seen []string
	list := stream.ListConsumers(ctx)
	for info := range list.Info() {
		seen = append(seen, info.Name)
		if info.NumPending > 0 || info.NumAckPending > 0 && info.Name != dispatcher.JoinConsumerName {
			busy = append(busy, fmt.Sprintf("consumer %s has %d pending and %d unacknowledged",
				info.Name, info.NumPending, info.NumAckPending))
		}
	}
	if err := list.Err(); err != nil {
		return nil, fmt.Errorf("list consumers: %w", err)
	}
	for _, name := range consumers {
		if !slices.Contains(seen, name) {
			busy = append(busy, "consumer "+name+" is missing")
		}
	}
	return busy, nil
}
