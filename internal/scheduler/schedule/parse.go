package schedule

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// line is the times of one schedule.
type line interface {
	// next returns the first time strictly after after, or zero when none.
	next(after time.Time) time.Time
}

// Schedule is the union of an Ignitor's schedules.
type Schedule struct {
	lines []line
	// Desc says what the schedule is, for the ScheduleValid condition.
	Desc string
}

// Parse parses spec.scheduled and spec.schedules of an Ignitor created at
// created, in spec.timeZone. The error names the unusable value.
func Parse(spec orcav1.IgnitorSpec, created time.Time) (*Schedule, error) {
	created = created.Truncate(time.Second)
	tz := spec.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	var loc *time.Location // loaded when a cron expression needs it
	s := &Schedule{}
	var descs []string
	values := append([]string{spec.Scheduled}, schedulesOf(spec)...)
	for i, v := range values {
		field := "scheduled"
		if i > 0 {
			field = fmt.Sprintf("schedules[%d]", i-1)
		}
		l, desc, err := parseOne(strings.TrimSpace(v), created, tz, &loc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		s.lines = append(s.lines, l)
		descs = append(descs, desc)
	}
	s.Desc = strings.Join(descs, "; ")
	return s, nil
}

func schedulesOf(spec orcav1.IgnitorSpec) []string {
	out := make([]string, len(spec.Schedules))
	for i, v := range spec.Schedules {
		out[i] = string(v)
	}
	return out
}

// parseOne parses one schedule; loc caches the time zone.
func parseOne(s string, created time.Time, tz string, loc **time.Location) (line, string, error) {
	if s == orcav1.ScheduledNow {
		return oneShot(created), "fires once, when created", nil
	}
	if at, err := time.Parse(time.RFC3339, strings.ToUpper(s)); err == nil {
		at = at.Truncate(time.Second)
		return oneShot(at), "fires once, at " + at.UTC().Format(time.RFC3339), nil
	}
	if *loc == nil {
		l, err := loadZone(tz)
		if err != nil {
			return nil, "", err
		}
		*loc = l
	}
	sched, err := parseCron(s)
	if err != nil {
		return nil, "", fmt.Errorf("%q is neither NOW, an RFC 3339 time nor a cron expression: %w", s, err)
	}
	switch c := sched.(type) {
	case cron.ConstantDelaySchedule:
		return every{from: created, d: c.Delay}, fmt.Sprintf("%s from the creation", s), nil
	case *cron.SpecSchedule:
		c.Location = time.UTC // fields are matched on the wall clock, see wallClock
		w := wallClock{spec: c, loc: *loc, from: created}
		if err := w.check(); err != nil {
			return nil, "", fmt.Errorf("cron expression %q %w", s, err)
		}
		return w, fmt.Sprintf("cron %q in time zone %s", s, tz), nil
	default:
		return nil, "", fmt.Errorf("%q: unexpected cron schedule %T", s, sched)
	}
}

// loadZone loads an IANA time zone; "Local" depends on the machine and is
// refused.
func loadZone(tz string) (*time.Location, error) {
	if strings.EqualFold(tz, "Local") || strings.ContainsAny(tz, " \t\n") {
		return nil, fmt.Errorf("timeZone %q is not an IANA time zone such as Europe/Rome", tz)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("timeZone %q is not an IANA time zone such as Europe/Rome: %w", tz, err)
	}
	return loc, nil
}

// parseCron parses a standard cron expression. robfig/cron panics on some
// input: a panic is an error here.
func parseCron(expr string) (sched cron.Schedule, err error) {
	if strings.Contains(expr, "TZ=") {
		return nil, errors.New("a time zone belongs in spec.timeZone, not in the expression")
	}
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("cron parser failed: %v", r)
		}
	}()
	sched, err = cron.ParseStandard(expr)
	if err != nil {
		return nil, fmt.Errorf("cron expression: %w", err)
	}
	return sched, nil
}

// Next returns the first scheduled time strictly after after, or zero when
// there is none.
func (s *Schedule) Next(after time.Time) time.Time {
	var best time.Time
	for _, l := range s.lines {
		if t := l.next(after); !t.IsZero() && (best.IsZero() || t.Before(best)) {
			best = t
		}
	}
	return best
}

// oneShot fires once, at its time.
type oneShot time.Time

func (o oneShot) next(after time.Time) time.Time {
	if t := time.Time(o); t.After(after) {
		return t
	}
	return time.Time{}
}

// every fires at from + k*d, k >= 1.
type every struct {
	from time.Time
	d    time.Duration
}

func (e every) next(after time.Time) time.Time {
	if after.Before(e.from) {
		return e.from.Add(e.d)
	}
	k := after.Sub(e.from)/e.d + 1
	if k > math.MaxInt64/e.d {
		return time.Time{} // beyond what a time.Duration holds: centuries away
	}
	return e.from.Add(k * e.d)
}
