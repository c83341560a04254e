package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sirocco-cloud/orca/internal/bus"
)

// EventsOptions configure Events.
type EventsOptions struct {
	// NATS says how to reach NATS.
	NATS bus.Options
	// Namespace limits the events to one namespace; ignored with AllNamespaces.
	Namespace string
	// AllNamespaces follows every namespace, and also messages that are not Orca
	// events.
	AllNamespaces bool
	// Since first prints what the stream stored in that past duration; 0 prints
	// only new events.
	Since time.Duration
	// Timeout bounds connecting to NATS; default 5s.
	Timeout time.Duration
	// Location of the printed times; default time.Local.
	Location *time.Location
	// Started, when set, is called once the events are followed (tests).
	Started func()
}

// Events follows Orca's events (ignitions, task successes and failures, dead
// letters) and prints each on one line to stdout until ctx ends. It uses an
// ephemeral consumer that goes away with it.
func Events(ctx context.Context, stdout, stderr io.Writer, o EventsOptions) error {
	if !o.AllNamespaces {
		if err := validateName("namespace", o.Namespace, true); err != nil {
			return err
		}
	}
	loc := o.Location
	if loc == nil {
		loc = time.Local
	}
	b, err := connect(ctx, o.NATS, o.Timeout, true)
	if err != nil {
		return fmt.Errorf("follow events: %w", err)
	}
	defer func() { _ = b.Close() }()

	fo := bus.FollowOptions{Subjects: []string{bus.SubjectAll}}
	scope := "all namespaces"
	if !o.AllNamespaces {
		fo.Subjects = bus.NamespaceSubjects(o.Namespace)
		scope = "namespace " + o.Namespace
	}
	if o.Since > 0 {
		fo.Since = time.Now().Add(-o.Since)
	}
	fo.Started = func() {
		fmt.Fprintf(stderr, "following Orca's events in %s on %s (Ctrl-C to stop)\n", scope, natsURL(o.NATS))
		if o.Started != nil {
			o.Started()
		}
	}
	err = b.Follow(ctx, fo, func(s bus.Seen) {
		fmt.Fprintln(stdout, FormatEvent(s, loc))
	})
	if err != nil {
		return fmt.Errorf("follow events on %s: %w", natsURL(o.NATS), err)
	}
	return nil
}

// FormatEvent returns the line Events prints for a message:
//
//	<time> <kind> <namespace>/<name> run=<run> <details>
//
// where kind is ignited, succeeded, failed, retrying (an attempt that a retry
// follows), halted (the loop guard), forbidden (concurrencyPolicy Forbid),
// skipped, timer (a join's timer), deadletter or unknown; details are the data of
// an ignition, the exit code, reason and message of a task event (and the
// attempt, and when the next one starts), the steps of a halted run, the Pods
// that held a forbidden start's slots, the reason and message of a skip, when a
// timer is due, and the reason of a dead letter.
func FormatEvent(s bus.Seen, loc *time.Location) string {
	var b strings.Builder
	when := s.Stored
	if when.IsZero() && s.Delivery != nil {
		when = s.Delivery.Event.Time()
	}
	b.WriteString(when.In(loc).Format(time.RFC3339))
	b.WriteByte(' ')
	d := s.Delivery
	kind := "unknown"
	switch {
	case s.DeadLetter != nil:
		kind = "deadletter"
	case d != nil && d.Ignition != nil:
		kind = "ignited"
	case d != nil && d.Task != nil && d.Task.Succeeded:
		kind = "succeeded"
	case d != nil && d.Task != nil:
		kind = "failed"
	case d != nil && d.Retry != nil:
		kind = "retrying"
	case d != nil && d.Halt != nil:
		kind = "halted"
	case d != nil && d.Forbidden != nil:
		kind = "forbidden"
	case d != nil && d.Skipped != nil:
		kind = "skipped"
	case d != nil && d.JoinTimer != nil:
		kind = "timer"
	}
	fmt.Fprintf(&b, "%-10s ", kind)
	if d == nil {
		subject := s.Subject
		if s.DeadLetter != nil {
			subject = s.DeadLetter.Subject
		}
		b.WriteString(subject)
	} else {
		b.WriteString(objectOf(d))
		b.WriteString(" run=")
		b.WriteString(d.Run())
	}
	switch {
	case d != nil && d.Ignition != nil:
		if s.DeadLetter != nil {
			b.WriteString(" event=ignited")
		}
		fmt.Fprintf(&b, " data=%s", shorten(string(d.Ignition.Data), 60))
	case d != nil && d.Task != nil:
		r := d.Task.Result
		if s.DeadLetter != nil {
			b.WriteString(" event=" + map[bool]string{true: "succeeded", false: "failed"}[d.Task.Succeeded])
		}
		fmt.Fprintf(&b, " exit=%d", r.ExitCode)
		if r.Reason != "" {
			fmt.Fprintf(&b, " reason=%s", r.Reason)
		}
		fmt.Fprintf(&b, " message=%s", shorten(r.Message, 60))
	case d != nil && d.Retry != nil:
		r := d.Retry.Retry
		fmt.Fprintf(&b, " attempt=%d exit=%d reason=%s next=%d at=%s", r.Attempt, r.ExitCode, r.Reason,
			r.NextAttempt, r.RetryAt.In(loc).Format(time.RFC3339))
	case d != nil && d.Halt != nil:
		h := d.Halt.Halt
		fmt.Fprintf(&b, " steps=%d limit=%d initiator=%s", h.Steps, h.Limit, h.Initiator)
	case d != nil && d.Forbidden != nil:
		f := d.Forbidden
		fmt.Fprintf(&b, " pod=%s running=%s", f.Pod, strings.Join(f.Running, ","))
	case d != nil && d.Skipped != nil:
		if s.DeadLetter != nil {
			b.WriteString(" event=skipped")
		}
		fmt.Fprintf(&b, " reason=%s message=%s", d.Skipped.Result.Reason, shorten(d.Skipped.Result.Message, 80))
	case d != nil && d.JoinTimer != nil:
		fmt.Fprintf(&b, " due=%s", d.JoinTimer.Due.In(loc).Format(time.RFC3339))
	}
	if s.DeadLetter != nil {
		fmt.Fprintf(&b, " deadletter-reason=%s", shorten(s.DeadLetter.Reason, 120))
		if s.DeadLetter.Consumer != "" {
			fmt.Fprintf(&b, " by=%s", s.DeadLetter.Consumer)
		}
	} else if d == nil && s.Err != nil {
		fmt.Fprintf(&b, " error=%s", shorten(s.Err.Error(), 120))
	}
	return b.String()
}

func objectOf(d *bus.Delivery) string {
	switch {
	case d.Ignition != nil:
		return d.Ignition.Namespace + "/" + d.Ignition.Name
	case d.Task != nil:
		return d.Task.Result.Namespace + "/" + d.Task.Result.Task
	case d.Retry != nil:
		return d.Retry.Retry.Namespace + "/" + d.Retry.Retry.Task
	case d.Halt != nil:
		return d.Halt.Halt.Namespace + "/" + d.Halt.Halt.Task
	case d.Forbidden != nil:
		return d.Forbidden.Namespace + "/" + d.Forbidden.Task
	case d.Skipped != nil:
		return d.Skipped.Result.Namespace + "/" + d.Skipped.Result.Task
	case d.JoinTimer != nil:
		return d.JoinTimer.Namespace + "/" + d.JoinTimer.Task
	}
	return d.Subject
}

// shorten quotes s on one line, cut to at most n runes with an ellipsis.
func shorten(s string, n int) string {
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > n {
		r := []rune(s)
		s = string(r[:n]) + "…"
	}
	return strconv.Quote(s)
}

func eventsCmd(ctx context.Context, c *cmdEnv, args []string) error {
	fs := newFlagSet("events")
	var kube KubeOptions
	kube.bindFlags(fs)
	complete := bindNATSFlags(fs)
	var o EventsOptions
	var ns string
	fs.StringVar(&ns, "n", "", "namespace to follow (default: the kubeconfig context's, else default)")
	fs.StringVar(&ns, "namespace", "", "same as -n")
	fs.BoolVar(&o.AllNamespaces, "A", false, "follow all namespaces")
	fs.BoolVar(&o.AllNamespaces, "all-namespaces", false, "same as -A")
	fs.DurationVar(&o.Since, "since", 0, "first print the events of this past duration, e.g. 1h (default: only new events)")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Second, "how long to try to reach NATS")
	pos, err := parse(c, fs, "events [-n NAMESPACE | -A] [--since DURATION]",
		`Follows Orca's events live until Ctrl-C: ignitions, task successes,
failures and skips (a Task whose startWhen condition turned false in a run),
and dead letters, decoded, one line each:

  <time> <kind> <namespace>/<name> run=<run> <details>

Task events show the exit code, the reason of a failure and the termination
message (shortened). Nothing is left behind on the server: the consumer is
ephemeral. --kubeconfig and --context only choose the default namespace.

Example:
  orca events -A --since 10m
`, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf("events takes no arguments, got %q", pos)
	}
	if o.AllNamespaces && ns != "" {
		return usageErrorf("pass -n or -A, not both")
	}
	if o.Since < 0 {
		return usageErrorf("--since must not be negative")
	}
	if !o.AllNamespaces {
		o.Namespace = kube.resolveNamespace(ns)
	}
	o.NATS = complete()
	return Events(ctx, c.stdout, c.stderr, o)
}
