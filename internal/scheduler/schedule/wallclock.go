package schedule

import (
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// maxSteps bounds the candidates wallClock.next looks at past a repeated hour.
const maxSteps = 10000

// wallClock is a cron schedule whose fields name wall-clock times in loc. Each
// wall-clock time c fires once, at the first instant whose wall clock shows c
// or later: in a repeated hour that is the first occurrence, in a skipped hour
// the instant the gap ends. Only times strictly after from count.
type wallClock struct {
	spec *cron.SpecSchedule // Location UTC: matches civil times, which UTC has all of, once
	loc  *time.Location
	from time.Time
}

// starBit is robfig/cron's mark of a "*" field, beside the bits of its values.
const starBit = 1 << 63

// check refuses a schedule that can never fire: a field that matches no value
// (robfig/cron accepts "," as an empty list, and would then search five years,
// minute by minute, at each call) or a date that does not exist (30 February).
func (w wallClock) check() error {
	for _, f := range []struct {
		name string
		bits uint64
	}{{"minute", w.spec.Minute}, {"hour", w.spec.Hour}, {"day of month", w.spec.Dom}, {"month", w.spec.Month}, {"day of week", w.spec.Dow}} {
		if f.bits&^starBit == 0 {
			return fmt.Errorf("has a %s field that matches no value", f.name)
		}
	}
	if w.next(w.from).IsZero() {
		return errors.New("matches no time in the five years after the Ignitor's creation")
	}
	return nil
}

func (w wallClock) next(after time.Time) time.Time {
	if after.Before(w.from) {
		after = w.from
	}
	c := civil(after.In(w.loc))
	for range maxSteps {
		if c = w.spec.Next(c); c.IsZero() {
			return time.Time{} // robfig/cron gives up after five years without a match
		}
		// instant is monotonic in c, and every c' <= civil(after) has
		// instant(c') <= after; in a repeated hour's second pass the candidates
		// of that hour fired in its first pass and are passed over here.
		if t := w.instant(c); t.After(after) {
			return t
		}
	}
	return time.Time{}
}

// instant returns the first instant whose wall clock in w.loc shows the civil
// time c (given in UTC) or later.
func (w wallClock) instant(c time.Time) time.Time {
	t := time.Date(c.Year(), c.Month(), c.Day(), c.Hour(), c.Minute(), c.Second(), 0, w.loc)
	if wall := civil(t); !wall.Equal(c) {
		// c lies in a skipped hour: Go moved it across the gap one way or the
		// other; the gap ends at a zone boundary of t.
		start, end := t.ZoneBounds()
		gapEnd := end
		if wall.After(c) {
			gapEnd = start
		}
		if gapEnd.IsZero() || civil(gapEnd.In(w.loc)).Before(c) {
			return t // not a gap of this zone's rules after all: keep Go's choice
		}
		return gapEnd
	}
	// c exists; in a repeated hour it also exists in the zone before t's, at an
	// earlier instant: the first occurrence wins.
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return t
	}
	_, off := t.Zone()
	_, prevOff := start.Add(-time.Second).Zone()
	if e := t.Add(time.Duration(off-prevOff) * time.Second); e.Before(start) && civil(e.In(w.loc)).Equal(c) {
		return e
	}
	return t
}

// civil returns the wall-clock reading of t as the same reading in UTC.
func civil(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}
