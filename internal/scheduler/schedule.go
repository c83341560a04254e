package scheduler

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// maxCount bounds the counting of skipped cron times after a long downtime.
const maxCount = 100000

// schedule is a parsed spec.scheduled: either one time or a cron schedule.
type schedule struct {
	at   time.Time     // the one-shot time; zero for a cron schedule
	cron cron.Schedule // nil for a one-shot time
	desc string        // what the schedule is, for the ScheduleValid condition
}

// plan is what a schedule asks for at a given moment.
type plan struct {
	// fire is the scheduled time to fire now; zero when nothing is due.
	fire time.Time
	// skipped counts the earlier due times that are not fired; skippedMore says
	// there were more than skipped (the count stopped at maxCount).
	skipped     int
	skippedMore bool
	// next is the scheduled time after fire (or after the last firing); zero when
	// there is none.
	next time.Time
}

// parseSchedule parses the schedule of an Ignitor created at created.
func parseSchedule(spec orcav1.IgnitorSpec, created time.Time) (schedule, error) {
	s := strings.TrimSpace(spec.Scheduled)
	if s == orcav1.ScheduledNow {
		return schedule{at: created, desc: "fires once, when created"}, nil
	}
	if at, err := time.Parse(time.RFC3339, strings.ToUpper(s)); err == nil {
		return schedule{at: at, desc: "fires once, at " + at.UTC().Format(time.RFC3339)}, nil
	}
	tz := spec.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	if err := checkTimeZone(tz); err != nil {
		return schedule{}, err
	}
	sched, err := parseCron(s, tz)
	if err != nil {
		return schedule{}, fmt.Errorf("scheduled %q is neither NOW, an RFC 3339 time nor a cron expression: %w", s, err)
	}
	return schedule{cron: sched, desc: fmt.Sprintf("cron %q in time zone %s", s, tz)}, nil
}

// checkTimeZone accepts an IANA time zone name; "Local" depends on the machine
// and is refused.
func checkTimeZone(tz string) error {
	if strings.EqualFold(tz, "Local") || strings.ContainsAny(tz, " \t\n") {
		return fmt.Errorf("timeZone %q is not an IANA time zone such as Europe/Rome", tz)
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return fmt.Errorf("timeZone %q is not an IANA time zone such as Europe/Rome: %w", tz, err)
	}
	return nil
}

// parseCron parses a standard cron expression in the time zone tz, which must be
// valid. robfig/cron panics on some input: a panic is an error here.
func parseCron(expr, tz string) (sched cron.Schedule, err error) {
	if strings.Contains(expr, "TZ=") {
		return nil, errors.New("a time zone belongs in spec.timeZone, not in the expression")
	}
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("cron parser failed: %v", r)
		}
	}()
	sched, err = cron.ParseStandard("CRON_TZ=" + tz + " " + expr)
	if err != nil {
		return nil, fmt.Errorf("cron expression: %w", err)
	}
	return sched, nil
}

// plan says what is due at now for an Ignitor created at created whose last
// firing was for lastFired (nil if none).
func (s schedule) plan(created time.Time, lastFired *time.Time, now time.Time) plan {
	if s.cron == nil {
		if lastFired != nil && !recordedTime(s.at).After(*lastFired) {
			return plan{} // fired already
		}
		if now.Before(s.at) {
			return plan{next: s.at}
		}
		return plan{fire: s.at}
	}
	after := created
	if lastFired != nil && lastFired.After(after) {
		after = *lastFired
	}
	first := s.cron.Next(after)
	if first.IsZero() || first.After(now) {
		return plan{next: first}
	}
	last := latest(s.cron, after, now)
	skipped, more := count(s.cron, first, last)
	return plan{fire: last, skipped: skipped, skippedMore: more, next: s.cron.Next(last)}
}

// latest returns the last time of sched in (after, now]; there must be one.
// @every counts from after; a calendar schedule's times are found by looking back
// from now through growing windows instead of stepping from after, which may be
// long ago.
func latest(sched cron.Schedule, after, now time.Time) time.Time {
	if d, ok := sched.(cron.ConstantDelaySchedule); ok {
		first := sched.Next(after)
		return first.Add(now.Sub(first) / d.Delay * d.Delay)
	}
	start := after
	for w := time.Minute; w < 100*365*24*time.Hour; w *= 2 {
		from := now.Add(-w)
		if !from.After(after) {
			break
		}
		if t := sched.Next(from); !t.IsZero() && !t.After(now) {
			start = from
			break
		}
	}
	last := sched.Next(start)
	for {
		t := sched.Next(last)
		if t.IsZero() || t.After(now) {
			return last
		}
		last = t
	}
}

// count counts the times of sched in [first, last), up to maxCount.
func count(sched cron.Schedule, first, last time.Time) (n int, more bool) {
	if d, ok := sched.(cron.ConstantDelaySchedule); ok {
		n64 := int64(last.Sub(first) / d.Delay)
		return int(min(n64, maxCount)), n64 > maxCount
	}
	for t := first; t.Before(last); t = sched.Next(t) {
		if n == maxCount {
			return n, true
		}
		n++
	}
	return n, false
}

// recordedTime is a scheduled time as status.lastFired keeps it: whole seconds.
func recordedTime(t time.Time) time.Time { return t.Truncate(time.Second) }

// eventID is the id of the firing of the Ignitor uid for the scheduled time t.
func eventID(uid string, t time.Time) string { return fmt.Sprintf("%s-%d", uid, t.Unix()) }
