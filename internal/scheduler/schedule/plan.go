package schedule

import (
	"fmt"
	"slices"
	"time"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// OnTime is how late the latest due time may be handled and still count as on
// time rather than missed: catchUp None fires it only within this.
const OnTime = 10 * time.Second

// MaxCount bounds the counting of skipped times after a long downtime.
const MaxCount = 100000

// maxWindow bounds how far back Plan looks for the latest due times.
const maxWindow = 100 * 365 * 24 * time.Hour

// Policy is what an Ignitor's spec says about missed times.
type Policy struct {
	CatchUp orcav1.CatchUpPolicy
	// MaxCatchUpRuns caps the times catchUp All fires at once.
	MaxCatchUpRuns int
	// StartingDeadline, when set, skips a time handled later than this after it.
	StartingDeadline time.Duration
}

// PolicyOf reads the policy from spec; unset fields take the API's defaults.
func PolicyOf(spec orcav1.IgnitorSpec) Policy {
	p := Policy{CatchUp: spec.CatchUp, MaxCatchUpRuns: int(spec.MaxCatchUpRuns)}
	if p.CatchUp == "" {
		p.CatchUp = orcav1.CatchUpLatest
	}
	if p.MaxCatchUpRuns < 1 {
		p.MaxCatchUpRuns = 1
	}
	if spec.StartingDeadlineSeconds != nil && *spec.StartingDeadlineSeconds > 0 {
		p.StartingDeadline = time.Duration(*spec.StartingDeadlineSeconds) * time.Second
	}
	return p
}

// runs is how many of the latest due times may fire.
func (p Policy) runs() int {
	switch p.CatchUp {
	case orcav1.CatchUpAll:
		return max(p.MaxCatchUpRuns, 1)
	default: // None fires at most the latest, and only on time
		return 1
	}
}

// Count is a number of times, counted up to MaxCount.
type Count struct {
	N    int
	More bool // there were more than N
}

func (c Count) String() string {
	if c.More {
		return fmt.Sprintf("more than %d", c.N)
	}
	return fmt.Sprint(c.N)
}

// Skip describes the due times that do not fire.
type Skip struct {
	// First and Last are the first and the last skipped times.
	First, Last time.Time
	// Missed were skipped by the catch-up rule, Expired by the starting deadline.
	Missed, Expired Count
}

// Total is the number of skipped times.
func (s Skip) Total() Count {
	n := s.Missed.N + s.Expired.N
	return Count{N: min(n, MaxCount), More: s.Missed.More || s.Expired.More || n > MaxCount}
}

// Plan is what a schedule asks for at a moment.
type Plan struct {
	// Fire lists the times to fire now, oldest first.
	Fire []time.Time
	// Skip, when set, describes the due times that are skipped.
	Skip *Skip
	// Next is the first time after the due ones; zero when there is none.
	Next time.Time
}

// Due says whether the plan fires or skips anything.
func (p Plan) Due() bool { return len(p.Fire) > 0 || p.Skip != nil }

// Plan decides, at now, on the times after mark (the last fired or skipped time;
// zero when none) under the policy pol.
func (s *Schedule) Plan(mark, now time.Time, pol Policy) Plan {
	first := s.Next(mark)
	if first.IsZero() || first.After(now) {
		return Plan{Next: first}
	}
	k := pol.runs()
	due := s.latest(mark, now, k+1) // the k+1 latest due times, oldest first
	fire := due[max(len(due)-k, 0):]
	// The starting deadline and None's on-time rule keep a suffix of them.
	for len(fire) > 0 && pol.StartingDeadline > 0 && now.Sub(fire[0]) > pol.StartingDeadline {
		fire = fire[1:]
	}
	if pol.CatchUp == orcav1.CatchUpNone && len(fire) > 0 && now.Sub(fire[0]) > OnTime {
		fire = nil
	}
	p := Plan{Fire: fire, Next: s.Next(due[len(due)-1])}
	if rest := due[:len(due)-len(fire)]; len(rest) > 0 {
		p.Skip = s.skip(mark, rest[len(rest)-1], now, pol)
	}
	return p
}

// skip counts the times in (mark, last], splitting them at the deadline.
func (s *Schedule) skip(mark, last, now time.Time, pol Policy) *Skip {
	sk := &Skip{First: s.Next(mark), Last: last}
	end := last.Add(time.Nanosecond) // counting bounds are exclusive
	if pol.StartingDeadline <= 0 {
		sk.Missed = s.count(mark, end)
		return sk
	}
	// A time t expired when now - t > deadline, that is t < cutoff.
	cutoff := now.Add(-pol.StartingDeadline)
	sk.Expired = s.count(mark, minTime(cutoff, end))
	if from := cutoff.Add(-time.Nanosecond); from.Before(last) {
		sk.Missed = s.count(maxTime(mark, from), end)
	}
	return sk
}

// latest returns up to n of the last times in (after, now], oldest first. It
// looks back from now through growing windows, so that a long downtime does not
// mean stepping through every time since after.
func (s *Schedule) latest(after, now time.Time, n int) []time.Time {
	for w := time.Minute; ; w *= 2 {
		from := now.Add(-w)
		if w > maxWindow || !from.After(after) {
			from = after
		}
		ring := make([]time.Time, 0, n)
		total := 0
		for t := s.Next(from); !t.IsZero() && !t.After(now); t = s.Next(t) {
			if len(ring) < n {
				ring = append(ring, t)
			} else {
				ring[total%n] = t
			}
			total++
		}
		if total >= n || from.Equal(after) {
			i := total % n // the oldest, once the ring has wrapped
			if total <= n {
				i = 0
			}
			return slices.Concat(ring[i:], ring[:i])
		}
	}
}

// count counts the times t with after < t < before, up to MaxCount.
func (s *Schedule) count(after, before time.Time) Count {
	n := 0
	for t := s.Next(after); !t.IsZero() && t.Before(before); t = s.Next(t) {
		if n == MaxCount {
			return Count{N: n, More: true}
		}
		n++
	}
	return Count{N: n}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
