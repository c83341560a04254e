package app

import (
	"context"
	"fmt"
	"time"

	"github.com/sirocco-cloud/orca/internal/bus"
)

// The default timing of leader election. A standby takes over from a leader that
// died without a word (SIGKILL, a lost node) within WorstTakeover, 14.4 s; from a
// leader that stopped (SIGTERM, a rolling update) within about two retry periods,
// as the leader releases its lease. A leader that cannot renew for the renew
// deadline gives up and exits before any standby can take over.
const (
	DefaultLeaseDuration = 10 * time.Second
	DefaultRenewDeadline = 7 * time.Second
	DefaultRetryPeriod   = time.Second
)

// jitterFactor is client-go's leaderelection.JitterFactor: a standby waits between
// one and 1+jitterFactor retry periods between two tries.
const jitterFactor = 1.2

// election returns the election timing with defaults for what is zero.
func (o *Options) election() (lease, renew, retry time.Duration) {
	lease, renew, retry = o.LeaseDuration, o.RenewDeadline, o.RetryPeriod
	if lease == 0 {
		lease = DefaultLeaseDuration
	}
	if renew == 0 {
		renew = DefaultRenewDeadline
	}
	if retry == 0 {
		retry = DefaultRetryPeriod
	}
	return lease, renew, retry
}

// WorstTakeover bounds the time from a leader's sudden death to a standby leading:
// the standby sees the leader's last renewal up to 1+jitterFactor retry periods
// late, waits the lease duration (whole seconds, as a Lease records it), and
// tries again up to 1+jitterFactor retry periods after it ran out.
func (o *Options) WorstTakeover() time.Duration {
	lease, _, retry := o.election()
	return lease.Truncate(time.Second) + time.Duration(2*(1+jitterFactor)*float64(retry))
}

// checkLeaderElection refuses a timing under which two leaders could overlap or
// client-go would refuse to elect.
func (o *Options) checkLeaderElection() error {
	lease, renew, retry := o.election()
	switch {
	case lease < 0 || renew < 0 || retry < 0:
		return fmt.Errorf("--leader-elect-lease-duration, --leader-elect-renew-deadline and --leader-elect-retry-period must be positive")
	case renew <= time.Duration(jitterFactor*float64(retry)):
		return fmt.Errorf("--leader-elect-renew-deadline %s must be longer than %.1f times --leader-elect-retry-period %s", renew, jitterFactor, retry)
	case lease.Truncate(time.Second) <= renew+retry:
		// The leader gives up at most a retry period plus the renew deadline
		// after its last renewal; a standby may lead one lease after it.
		return fmt.Errorf("--leader-elect-lease-duration %s must be longer than --leader-elect-renew-deadline %s plus --leader-elect-retry-period %s, "+
			"or a leader that cannot renew may still work when another takes over", lease.Truncate(time.Second), renew, retry)
	}
	return nil
}

// checkDuplicateWindow makes sure that the stream remembers event ids longer than
// a takeover can last: a leader that published an event and died before it
// recorded that (an Ignitor's lastFired, a Pod's finalizer) has its successor
// publish the same event again, and only the duplicate window drops it. Twice the
// worst takeover leaves room for the successor's cache sync and retries.
func (o *Options) checkDuplicateWindow(ctx context.Context, b *bus.Bus) error {
	window, err := b.DuplicateWindow(ctx)
	if err != nil {
		return err
	}
	if need := 2 * o.WorstTakeover(); window < need {
		return fmt.Errorf("stream %s drops duplicate events for %s only, less than %s (twice the worst leader takeover, %s): "+
			"raise its duplicate window (nats stream edit %s --dupe-window 2m) or shorten --leader-elect-lease-duration",
			o.streamName(), window, need, o.WorstTakeover(), o.streamName())
	}
	return nil
}

func (o *Options) streamName() string {
	if o.NATS.Stream == "" {
		return bus.DefaultStream
	}
	return o.NATS.Stream
}
