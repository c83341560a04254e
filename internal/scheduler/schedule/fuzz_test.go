package schedule

import (
	"testing"
	"time"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// FuzzParse feeds Parse any scheduled value, extra schedule and time zone, and
// checks what every accepted schedule must do: no panic; times that are whole
// seconds and strictly increasing; Next that misses no time; each wall-clock time
// of a cron expression at most once, on its own reading or where a skipped hour
// ends; and a Plan that fires only due times, at most as many as the policy
// allows, after everything it skips. The seed corpus is in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add("30 2 * * *", "", "Europe/Berlin", int64(1792360800), uint32(86400), uint8(0))
	f.Fuzz(func(t *testing.T, scheduled, extra, tz string, createdUnix int64, span uint32, policy uint8) {
		// Creation times from 1970 to 2200, a span of up to about a week.
		created := time.Unix(createdUnix%(230*365*86400), 0).UTC()
		if created.Before(time.Unix(0, 0)) {
			created = created.Add(230 * 365 * 86400 * time.Second)
		}
		spec := orcav1.IgnitorSpec{Scheduled: scheduled, TimeZone: tz}
		if extra != "" {
			spec.Schedules = []orcav1.Schedule{orcav1.Schedule(extra)}
		}
		s, err := Parse(spec, created)
		if err != nil {
			return
		}
		if s.Desc == "" {
			t.Fatal("no description")
		}
		checkTimes(t, s, created)
		now := created.Add(time.Duration(span%(8*86400)) * time.Second)
		checkPlan(t, s, created.Add(-time.Duration(policy)*time.Minute), now, policyFor(policy))
	})
}

func policyFor(b uint8) Policy {
	p := Policy{MaxCatchUpRuns: 1}
	switch b % 3 {
	case 0:
		p.CatchUp = orcav1.CatchUpNone
	case 1:
		p.CatchUp = orcav1.CatchUpLatest
	default:
		p.CatchUp, p.MaxCatchUpRuns = orcav1.CatchUpAll, int(b%7)+2
	}
	if b%5 == 0 {
		p.StartingDeadline = time.Duration(b) * time.Second
	}
	return p
}

func checkTimes(t *testing.T, s *Schedule, created time.Time) {
	t.Helper()
	wc, pureCron := s.lines[0].(wallClock)
	pureCron = pureCron && len(s.lines) == 1
	seen := map[time.Time]time.Time{} // wall-clock reading -> instant
	prev := created.Add(-24 * time.Hour)
	for range 40 {
		next := s.Next(prev)
		if next.IsZero() {
			return
		}
		if !next.After(prev) {
			t.Fatalf("Next(%s) = %s, not after it", prev, next)
		}
		if next.Nanosecond() != 0 {
			t.Fatalf("Next(%s) = %s, not a whole second", prev, next)
		}
		if mid := prev.Add(next.Sub(prev) / 2); mid.After(prev) && !s.Next(mid).Equal(next) {
			t.Fatalf("Next(%s) = %s but Next(%s) = %s", prev, next, mid, s.Next(mid))
		}
		if pureCron {
			c := civil(next.In(wc.loc))
			if first, ok := seen[c]; ok {
				t.Fatalf("wall-clock time %s fires twice: %s and %s", c.Format(time.DateTime), first, next)
			}
			seen[c] = next
			start, _ := next.ZoneBounds()
			if !wc.spec.Next(c.Add(-time.Second)).Equal(c) && !start.Equal(next) {
				t.Fatalf("%s (%s in %s) is neither a time of the schedule nor the end of a skipped hour", next, c.Format(time.DateTime), wc.loc)
			}
		}
		prev = next
	}
}

func checkPlan(t *testing.T, s *Schedule, mark, now time.Time, pol Policy) {
	t.Helper()
	p := s.Plan(mark, now, pol)
	if len(p.Fire) > pol.runs() {
		t.Fatalf("plan fires %d times, the policy allows %d", len(p.Fire), pol.runs())
	}
	for i, f := range p.Fire {
		if !f.After(mark) || f.After(now) || (i > 0 && !f.After(p.Fire[i-1])) {
			t.Fatalf("plan fires %v: not due, or out of order (mark %s, now %s)", p.Fire, mark, now)
		}
	}
	if !p.Next.IsZero() && !p.Next.After(now) && p.Due() {
		t.Fatalf("next %s is not after now %s", p.Next, now)
	}
	if sk := p.Skip; sk != nil {
		if sk.First.After(sk.Last) || !sk.First.After(mark) || sk.Last.After(now) {
			t.Fatalf("skip %+v outside (%s, %s]", sk, mark, now)
		}
		if len(p.Fire) > 0 && !sk.Last.Before(p.Fire[0]) {
			t.Fatalf("skipped %s is not before the fired %s", sk.Last, p.Fire[0])
		}
		if sk.Total().N < 1 {
			t.Fatalf("skip of no time: %+v", sk)
		}
	}
	// Carrying the plan out leaves nothing due before now.
	if after := s.Plan(markAfter(p), now, pol); p.Due() && after.Due() {
		t.Fatalf("after carrying out %+v, still due: %+v", p, after)
	}
}
