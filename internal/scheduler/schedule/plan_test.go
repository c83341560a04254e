package schedule

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

func TestPlan(t *testing.T) {
	c := mustTime(t, "2026-01-01T10:00:30Z")
	at := func(s string) time.Time { return mustTime(t, s) }
	latest := Policy{CatchUp: orcav1.CatchUpLatest, MaxCatchUpRuns: 1}
	none := Policy{CatchUp: orcav1.CatchUpNone, MaxCatchUpRuns: 1}
	all3 := Policy{CatchUp: orcav1.CatchUpAll, MaxCatchUpRuns: 3}
	withDeadline := func(p Policy, d time.Duration) Policy { p.StartingDeadline = d; return p }
	type skip struct {
		first, last      time.Time
		missed, expired  int
		missedMore, more bool
	}
	tests := []struct {
		name, scheduled, tz string
		pol                 Policy
		mark                time.Time // last fired or skipped time
		now                 time.Time
		fire                []time.Time
		skip                *skip
		next                time.Time
	}{
		{name: "now, not fired", scheduled: "NOW", now: c.Add(time.Second), fire: []time.Time{c}},
		{name: "now, fired", scheduled: "NOW", mark: c, now: c.Add(time.Hour)},
		{name: "now, None, on time", scheduled: "NOW", pol: none, now: c.Add(OnTime), fire: []time.Time{c}},
		{name: "now, None, late", scheduled: "NOW", pol: none, now: c.Add(OnTime + time.Second),
			skip: &skip{first: c, last: c, missed: 1}},
		{name: "now, past the deadline", scheduled: "NOW", pol: withDeadline(latest, 5*time.Second), now: c.Add(6 * time.Second),
			skip: &skip{first: c, last: c, expired: 1}},
		{name: "one-shot ahead", scheduled: "2026-01-01T11:00:00Z", now: c, next: at("2026-01-01T11:00:00Z")},
		{name: "one-shot past, never fired", scheduled: "2026-01-01T09:00:00Z", now: c, fire: []time.Time{at("2026-01-01T09:00:00Z")}},
		{name: "one-shot fired", scheduled: "2026-01-01T09:00:00Z", mark: at("2026-01-01T09:00:00Z"), now: c},
		{name: "one-shot fraction fired", scheduled: "2026-01-01T09:00:00.7Z", mark: at("2026-01-01T09:00:00Z"), now: c},
		{name: "one-shot edited after last firing", scheduled: "2026-01-01T10:30:00Z",
			mark: at("2026-01-01T09:00:00Z"), now: c.Add(time.Hour), fire: []time.Time{at("2026-01-01T10:30:00Z")}},
		{name: "one-shot edited before last firing", scheduled: "2026-01-01T08:00:00Z", mark: at("2026-01-01T09:00:00Z"), now: c},
		{name: "every, not yet", scheduled: "@every 1m", now: c.Add(30 * time.Second), next: c.Add(time.Minute)},
		{name: "every, due", scheduled: "@every 1m", now: c.Add(time.Minute),
			fire: []time.Time{c.Add(time.Minute)}, next: c.Add(2 * time.Minute)},
		{name: "every, missed", scheduled: "@every 1m", now: c.Add(5*time.Minute + 30*time.Second),
			fire: []time.Time{c.Add(5 * time.Minute)}, next: c.Add(6 * time.Minute),
			skip: &skip{first: c.Add(time.Minute), last: c.Add(4 * time.Minute), missed: 4}},
		{name: "every, missed, None", scheduled: "@every 1m", pol: none, now: c.Add(5*time.Minute + 30*time.Second),
			next: c.Add(6 * time.Minute), skip: &skip{first: c.Add(time.Minute), last: c.Add(5 * time.Minute), missed: 5}},
		{name: "every, missed, None, latest on time", scheduled: "@every 1m", pol: none, now: c.Add(5*time.Minute + 3*time.Second),
			fire: []time.Time{c.Add(5 * time.Minute)}, next: c.Add(6 * time.Minute),
			skip: &skip{first: c.Add(time.Minute), last: c.Add(4 * time.Minute), missed: 4}},
		{name: "every, missed, All within the cap", scheduled: "@every 1m", pol: all3, now: c.Add(3*time.Minute + 30*time.Second),
			fire: []time.Time{c.Add(time.Minute), c.Add(2 * time.Minute), c.Add(3 * time.Minute)}, next: c.Add(4 * time.Minute)},
		{name: "every, missed, All past the cap", scheduled: "@every 1m", pol: all3, now: c.Add(10*time.Minute + 30*time.Second),
			fire: []time.Time{c.Add(8 * time.Minute), c.Add(9 * time.Minute), c.Add(10 * time.Minute)}, next: c.Add(11 * time.Minute),
			skip: &skip{first: c.Add(time.Minute), last: c.Add(7 * time.Minute), missed: 7}},
		{name: "every, All with a deadline", scheduled: "@every 1m", pol: withDeadline(all3, 150*time.Second), now: c.Add(10*time.Minute + 30*time.Second),
			// 10:30 - 2:30 = 8:00: the 8-minute time is just within it.
			fire: []time.Time{c.Add(8 * time.Minute), c.Add(9 * time.Minute), c.Add(10 * time.Minute)}, next: c.Add(11 * time.Minute),
			skip: &skip{first: c.Add(time.Minute), last: c.Add(7 * time.Minute), expired: 7}},
		{name: "every, All, deadline cuts into the cap", scheduled: "@every 1m", pol: withDeadline(all3, 90*time.Second), now: c.Add(10*time.Minute + 30*time.Second),
			fire: []time.Time{c.Add(9 * time.Minute), c.Add(10 * time.Minute)}, next: c.Add(11 * time.Minute),
			skip: &skip{first: c.Add(time.Minute), last: c.Add(8 * time.Minute), expired: 8}},
		{name: "every, Latest, deadline splits the skipped", scheduled: "@every 1m", pol: withDeadline(latest, 150*time.Second), now: c.Add(10*time.Minute + 30*time.Second),
			fire: []time.Time{c.Add(10 * time.Minute)}, next: c.Add(11 * time.Minute),
			skip: &skip{first: c.Add(time.Minute), last: c.Add(9 * time.Minute), expired: 7, missed: 2}},
		{name: "every, everything past the deadline", scheduled: "@every 1m", pol: withDeadline(latest, 20*time.Second), now: c.Add(3*time.Minute + 30*time.Second),
			next: c.Add(4 * time.Minute), skip: &skip{first: c.Add(time.Minute), last: c.Add(3 * time.Minute), expired: 3}},
		{name: "cron, missed after last firing", scheduled: "*/5 * * * *",
			mark: at("2026-01-01T10:05:00Z"), now: at("2026-01-01T12:07:00Z"),
			fire: []time.Time{at("2026-01-01T12:05:00Z")}, next: at("2026-01-01T12:10:00Z"),
			skip: &skip{first: at("2026-01-01T10:10:00Z"), last: at("2026-01-01T12:00:00Z"), missed: 23}},
		{name: "cron in a zone", scheduled: "0 * * * *", tz: "Asia/Kolkata", now: c.Add(3 * time.Hour),
			fire: []time.Time{at("2026-01-01T12:30:00Z")}, next: at("2026-01-01T13:30:00Z"),
			skip: &skip{first: at("2026-01-01T10:30:00Z"), last: at("2026-01-01T11:30:00Z"), missed: 2}},
		{name: "cron, a year down", scheduled: "* * * * *", now: c.Add(365 * 24 * time.Hour),
			fire: []time.Time{at("2027-01-01T10:00:00Z")}, next: at("2027-01-01T10:01:00Z"),
			skip: &skip{first: at("2026-01-01T10:01:00Z"), last: at("2027-01-01T09:59:00Z"), missed: MaxCount, missedMore: true, more: true}},
		{name: "cron, a year down, All", scheduled: "* * * * *", pol: Policy{CatchUp: orcav1.CatchUpAll, MaxCatchUpRuns: 3},
			now: c.Add(365 * 24 * time.Hour), next: at("2027-01-01T10:01:00Z"),
			fire: []time.Time{at("2027-01-01T09:58:00Z"), at("2027-01-01T09:59:00Z"), at("2027-01-01T10:00:00Z")},
			skip: &skip{first: at("2026-01-01T10:01:00Z"), last: at("2027-01-01T09:57:00Z"), missed: MaxCount, missedMore: true, more: true}},
		{name: "leap day", scheduled: "0 0 29 2 *", now: c, next: at("2028-02-29T00:00:00Z")},
		{name: "suspended over the repeated hour, All", scheduled: "30 2 * * *", tz: "Europe/Berlin",
			pol: Policy{CatchUp: orcav1.CatchUpAll, MaxCatchUpRuns: 10}, mark: at("2026-10-23T00:30:00Z"), now: at("2026-10-27T12:00:00Z"),
			fire: []time.Time{at("2026-10-24T00:30:00Z"), at("2026-10-25T00:30:00Z"), at("2026-10-26T01:30:00Z"), at("2026-10-27T01:30:00Z")},
			next: at("2026-10-28T01:30:00Z")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, orcav1.IgnitorSpec{Scheduled: tt.scheduled, TimeZone: tt.tz}, c)
			pol := tt.pol
			if pol.CatchUp == "" {
				pol = latest
			}
			got := s.Plan(tt.mark, tt.now, pol)
			assert.Equal(t, format(t, tt.fire), format(t, got.Fire), "fire")
			assert.True(t, got.Next.Equal(tt.next), "next: got %s, want %s", got.Next, tt.next)
			if tt.skip == nil {
				assert.Nil(t, got.Skip, "skip")
				return
			}
			require.NotNil(t, got.Skip, "skip")
			assert.True(t, got.Skip.First.Equal(tt.skip.first), "first skipped: got %s, want %s", got.Skip.First, tt.skip.first)
			assert.True(t, got.Skip.Last.Equal(tt.skip.last), "last skipped: got %s, want %s", got.Skip.Last, tt.skip.last)
			assert.Equal(t, Count{N: tt.skip.missed, More: tt.skip.missedMore}, got.Skip.Missed, "missed")
			assert.Equal(t, Count{N: tt.skip.expired}, got.Skip.Expired, "expired")
			assert.Equal(t, tt.skip.more, got.Skip.Total().More, "total more")
		})
	}
}

// markAfter returns the mark once p is carried out: the last time it fires or
// skips, as the scheduler records it in lastFired and lastSkip.last.
func markAfter(p Plan) time.Time {
	var m time.Time
	if len(p.Fire) > 0 {
		m = p.Fire[len(p.Fire)-1]
	}
	if p.Skip != nil && p.Skip.Last.After(m) {
		m = p.Skip.Last
	}
	return m
}

func TestCountString(t *testing.T) {
	assert.Equal(t, "3", Count{N: 3}.String())
	assert.Equal(t, "more than 100000", Count{N: MaxCount, More: true}.String())
}

// TestREADMECatchUpExample pins the catch-up table of the README: "@every 1m"
// created at 10:00:30, 10:01:30 fired, the scheduler back at 10:10:45.
func TestREADMECatchUpExample(t *testing.T) {
	c := mustTime(t, "2026-01-01T10:00:30Z")
	s := mustParse(t, orcav1.IgnitorSpec{Scheduled: "@every 1m"}, c)
	mark, now := mustTime(t, "2026-01-01T10:01:30Z"), mustTime(t, "2026-01-01T10:10:45Z")
	clock := func(ts []time.Time) []string {
		var out []string
		for _, x := range ts {
			out = append(out, x.Format("15:04:05"))
		}
		return out
	}
	tests := []struct {
		pol             Policy
		fire            []string
		missed, expired int
		firstSkipped    string
		lastSkipped     string
	}{
		{pol: Policy{CatchUp: orcav1.CatchUpNone, MaxCatchUpRuns: 1}, missed: 9, firstSkipped: "10:02:30", lastSkipped: "10:10:30"},
		{pol: Policy{CatchUp: orcav1.CatchUpLatest, MaxCatchUpRuns: 1}, fire: []string{"10:10:30"}, missed: 8, firstSkipped: "10:02:30", lastSkipped: "10:09:30"},
		{pol: Policy{CatchUp: orcav1.CatchUpAll, MaxCatchUpRuns: 3}, fire: []string{"10:08:30", "10:09:30", "10:10:30"}, missed: 6, firstSkipped: "10:02:30", lastSkipped: "10:07:30"},
		{pol: Policy{CatchUp: orcav1.CatchUpAll, MaxCatchUpRuns: 10},
			fire: []string{"10:02:30", "10:03:30", "10:04:30", "10:05:30", "10:06:30", "10:07:30", "10:08:30", "10:09:30", "10:10:30"}},
		{pol: Policy{CatchUp: orcav1.CatchUpAll, MaxCatchUpRuns: 10, StartingDeadline: 150 * time.Second},
			fire: []string{"10:08:30", "10:09:30", "10:10:30"}, expired: 6, firstSkipped: "10:02:30", lastSkipped: "10:07:30"},
	}
	for _, tt := range tests {
		p := s.Plan(mark, now, tt.pol)
		assert.Equal(t, tt.fire, clock(p.Fire), "%+v", tt.pol)
		if tt.missed+tt.expired == 0 {
			assert.Nil(t, p.Skip, "%+v", tt.pol)
			continue
		}
		require.NotNil(t, p.Skip, "%+v", tt.pol)
		assert.Equal(t, tt.missed, p.Skip.Missed.N, "%+v", tt.pol)
		assert.Equal(t, tt.expired, p.Skip.Expired.N, "%+v", tt.pol)
		assert.Equal(t, []string{tt.firstSkipped, tt.lastSkipped}, clock([]time.Time{p.Skip.First, p.Skip.Last}), "%+v", tt.pol)
	}
}
