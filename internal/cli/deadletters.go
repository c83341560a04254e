package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/sirocco-cloud/orca/internal/bus"
)

// DeadLettersOptions configure DeadLetters and Replay.
type DeadLettersOptions struct {
	// NATS says how to reach NATS.
	NATS bus.Options
	// Namespace limits the dead letters to one namespace; ignored with
	// AllNamespaces.
	Namespace string
	// AllNamespaces takes every dead letter, also of messages that name no
	// namespace.
	AllNamespaces bool
	// Timeout bounds connecting to NATS; default 5s.
	Timeout time.Duration
	// Location of the printed times; default time.Local.
	Location *time.Location
}

// subjects returns the dead-letter subjects of the options' scope.
func (o DeadLettersOptions) subjects() []string {
	if o.AllNamespaces {
		return []string{bus.FilterDeadLetter}
	}
	var out []string
	for _, p := range []string{bus.SubjectIgnited, bus.SubjectTaskSucceeded, bus.SubjectTaskFailed} {
		out = append(out, bus.ScopedSubjects([]string{o.Namespace}, bus.DeadLetterSubject(p))...)
	}
	return out
}

func (o DeadLettersOptions) connect(ctx context.Context) (*bus.Bus, error) {
	if !o.AllNamespaces {
		if err := validateName("namespace", o.Namespace, true); err != nil {
			return nil, err
		}
	}
	return connect(ctx, o.NATS, o.Timeout, true)
}

// DeadLetters prints the dead letters of the options' scope, oldest first, one
// line each: the sequence to replay it by, when it was stored, the original
// subject, the event id, the consumer that gave up on it and why.
func DeadLetters(ctx context.Context, stdout io.Writer, o DeadLettersOptions) error {
	b, err := o.connect(ctx)
	if err != nil {
		return fmt.Errorf("list dead letters: %w", err)
	}
	defer func() { _ = b.Close() }()
	list, err := b.DeadLetters(ctx, o.subjects()...)
	if err != nil {
		return fmt.Errorf("list dead letters on %s: %w", natsURL(o.NATS), err)
	}
	loc := o.Location
	if loc == nil {
		loc = time.Local
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tSTORED\tSUBJECT\tID\tCONSUMER\tREASON")
	for _, s := range list {
		id := "-"
		if s.Delivery != nil {
			id = s.Delivery.Event.ID()
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", s.Sequence, s.Stored.In(loc).Format(time.RFC3339),
			s.DeadLetter.Subject, id, orDash(s.DeadLetter.Consumer), s.DeadLetter.Reason)
	}
	return w.Flush()
}

// Replay publishes dead letters again on their original subjects: those stored
// at seqs, or with all every dead letter of the options' scope. Each is
// deduplicated like any event (Nats-Msg-Id is its event id) and deleted from the
// dead letters unless keep is set. It reports each on stdout and fails when one
// could not be replayed.
func Replay(ctx context.Context, stdout io.Writer, o DeadLettersOptions, seqs []uint64, all, keep bool) error {
	b, err := o.connect(ctx)
	if err != nil {
		return fmt.Errorf("replay dead letters: %w", err)
	}
	defer func() { _ = b.Close() }()
	if all {
		list, err := b.DeadLetters(ctx, o.subjects()...)
		if err != nil {
			return fmt.Errorf("list dead letters on %s: %w", natsURL(o.NATS), err)
		}
		for _, s := range list {
			seqs = append(seqs, s.Sequence)
		}
		if len(seqs) == 0 {
			fmt.Fprintln(stdout, "no dead letters to replay")
		}
	}
	var errs []error
	for _, seq := range seqs {
		r, err := b.Replay(ctx, seq, keep)
		switch {
		case err != nil:
			errs = append(errs, err)
		case r.Duplicate:
			fmt.Fprintf(stdout, "%d: event %s is already in the stream (duplicate window): not stored again\n", seq, r.ID)
		default:
			fmt.Fprintf(stdout, "%d: replayed event %s on %s\n", seq, r.ID, r.Subject)
		}
	}
	return errors.Join(errs...)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func deadLettersCmd(ctx context.Context, c *cmdEnv, args []string) error {
	replay := len(args) > 0 && args[0] == "replay"
	if replay {
		args = args[1:]
	}
	fs := newFlagSet("deadletters")
	var kube KubeOptions
	kube.bindFlags(fs)
	complete := bindNATSFlags(fs)
	var o DeadLettersOptions
	var ns string
	var all, keep bool
	fs.StringVar(&ns, "n", "", "namespace (default: the kubeconfig context's, else default)")
	fs.StringVar(&ns, "namespace", "", "same as -n")
	fs.BoolVar(&o.AllNamespaces, "A", false, "all namespaces")
	fs.BoolVar(&o.AllNamespaces, "all-namespaces", false, "same as -A")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Second, "how long to try to reach NATS")
	synopsis, description := "deadletters [-n NAMESPACE | -A]", `Lists the dead letters: the messages that Orca's consumers gave up on, kept
whole in the stream with the reason, oldest first:

  SEQ  STORED  SUBJECT  ID  CONSUMER  REASON

SEQ is the dead letter's sequence in the stream, by which 'deadletters replay'
takes it. A message that names no namespace shows only with -A.

Example:
  orca deadletters -A
`
	if replay {
		fs.BoolVar(&all, "all", false, "replay every dead letter of the namespace (with -A: of all namespaces)")
		fs.BoolVar(&keep, "keep", false, "keep the dead letters after replaying them (default: delete them)")
		synopsis, description = "deadletters replay (SEQ... | --all) [-n NAMESPACE | -A] [--keep]", `Publishes dead letters again on the subject they were first published on, with
their headers and data, after the cause was fixed. Each is deduplicated like any
event: Nats-Msg-Id is its event id, so a replay within the stream's duplicate
window is stored once, and the services ignore what they already did (a Pod that
exists, an Action that ran). A replayed dead letter is deleted, unless --keep.
One that fails again becomes a new dead letter.

Examples:
  orca deadletters replay 1042 1043
  orca deadletters replay --all -n team-a
`
	}
	pos, err := parse(c, fs, synopsis, description, args)
	if err != nil {
		return err
	}
	if o.AllNamespaces && ns != "" {
		return usageErrorf("pass -n or -A, not both")
	}
	var seqs []uint64
	for _, p := range pos {
		seq, err := strconv.ParseUint(p, 10, 64)
		if err != nil || seq == 0 || !replay {
			if !replay {
				return usageErrorf("deadletters takes no arguments, got %q (did you mean 'deadletters replay'?)", pos)
			}
			return usageErrorf("%q is not a sequence number: take it from the SEQ column of 'deadletters'", p)
		}
		seqs = append(seqs, seq)
	}
	if replay && all == (len(seqs) > 0) {
		return usageErrorf("pass the sequence numbers to replay, or --all")
	}
	if !o.AllNamespaces {
		o.Namespace = kube.resolveNamespace(ns)
	}
	o.NATS = complete()
	if replay {
		return Replay(ctx, c.stdout, o, seqs, all, keep)
	}
	return DeadLetters(ctx, c.stdout, o)
}
