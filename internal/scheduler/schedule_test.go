package scheduler

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}

func TestParseSchedule(t *testing.T) {
	created := mustTime(t, "2026-01-01T10:00:30Z")
	tests := []struct {
		name, scheduled, tz string
		wantAt              string // a one-shot time
		wantCron            bool
		wantErr             string
	}{
		{name: "now", scheduled: "NOW", wantAt: "2026-01-01T10:00:30Z"},
		{name: "rfc3339", scheduled: "2030-02-03T19:34:05Z", wantAt: "2030-02-03T19:34:05Z"},
		{name: "rfc3339 lowercase with offset", scheduled: "2030-02-03t21:34:05+02:00", wantAt: "2030-02-03T19:34:05Z"},
		{name: "five fields", scheduled: "*/5 * * * *", wantCron: true},
		{name: "five fields with zone", scheduled: "0 9 * * MON-FRI", tz: "Europe/Rome", wantCron: true},
		{name: "descriptor", scheduled: "@hourly", wantCron: true},
		{name: "every", scheduled: "@every 10m", wantCron: true},
		{name: "minute out of range", scheduled: "61 * * * *", wantErr: `"61 * * * *"`},
		{name: "unknown zone", scheduled: "0 * * * *", tz: "Mars/Olympus", wantErr: `timeZone "Mars/Olympus"`},
		{name: "local zone", scheduled: "0 * * * *", tz: "Local", wantErr: `timeZone "Local"`},
		{name: "zone in expression", scheduled: "CRON_TZ=UTC", wantErr: "spec.timeZone"},
		{name: "six fields", scheduled: "0 0 * * * *", wantErr: "cron expression"},
		{name: "lowercase now", scheduled: "now", wantErr: "cron expression"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseSchedule(orcav1.IgnitorSpec{Scheduled: tt.scheduled, TimeZone: tt.tz}, created)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.NotEmpty(t, s.desc)
			if tt.wantCron {
				assert.NotNil(t, s.cron)
				return
			}
			assert.Nil(t, s.cron)
			assert.True(t, s.at.Equal(mustTime(t, tt.wantAt)), "at %s", s.at)
		})
	}
}

func TestPlan(t *testing.T) {
	c := mustTime(t, "2026-01-01T10:00:30Z")
	ptr := func(t time.Time) *time.Time { return &t }
	tests := []struct {
		name, scheduled, tz string
		lastFired           *time.Time
		now                 time.Time
		want                plan
	}{
		{name: "now, not fired", scheduled: "NOW", now: c.Add(time.Second), want: plan{fire: c}},
		{name: "now, fired", scheduled: "NOW", lastFired: ptr(c), now: c.Add(time.Hour)},
		{name: "one-shot ahead", scheduled: "2026-01-01T11:00:00Z", now: c,
			want: plan{next: mustTime(t, "2026-01-01T11:00:00Z")}},
		{name: "one-shot past, never fired", scheduled: "2026-01-01T09:00:00Z", now: c,
			want: plan{fire: mustTime(t, "2026-01-01T09:00:00Z")}},
		{name: "one-shot fired", scheduled: "2026-01-01T09:00:00Z", lastFired: ptr(mustTime(t, "2026-01-01T09:00:00Z")), now: c},
		{name: "one-shot fraction fired", scheduled: "2026-01-01T09:00:00.7Z", lastFired: ptr(mustTime(t, "2026-01-01T09:00:00Z")), now: c},
		{name: "one-shot edited after last firing", scheduled: "2026-01-01T10:30:00Z",
			lastFired: ptr(mustTime(t, "2026-01-01T09:00:00Z")), now: c.Add(time.Hour),
			want: plan{fire: mustTime(t, "2026-01-01T10:30:00Z")}},
		{name: "one-shot edited before last firing", scheduled: "2026-01-01T08:00:00Z",
			lastFired: ptr(mustTime(t, "2026-01-01T09:00:00Z")), now: c},
		{name: "every, not yet", scheduled: "@every 1m", now: c.Add(30 * time.Second), want: plan{next: c.Add(time.Minute)}},
		{name: "every, due", scheduled: "@every 1m", now: c.Add(time.Minute),
			want: plan{fire: c.Add(time.Minute), next: c.Add(2 * time.Minute)}},
		{name: "every, missed", scheduled: "@every 1m", now: c.Add(5*time.Minute + 30*time.Second),
			want: plan{fire: c.Add(5 * time.Minute), skipped: 4, next: c.Add(6 * time.Minute)}},
		{name: "cron, missed after last firing", scheduled: "*/5 * * * *",
			lastFired: ptr(mustTime(t, "2026-01-01T10:05:00Z")), now: mustTime(t, "2026-01-01T12:07:00Z"),
			want: plan{fire: mustTime(t, "2026-01-01T12:05:00Z"), skipped: 23, next: mustTime(t, "2026-01-01T12:10:00Z")}},
		{name: "cron in a zone", scheduled: "0 * * * *", tz: "Asia/Kolkata", now: c.Add(3 * time.Hour),
			want: plan{fire: mustTime(t, "2026-01-01T12:30:00Z"), skipped: 2, next: mustTime(t, "2026-01-01T13:30:00Z")}},
		{name: "cron, a year down", scheduled: "* * * * *", now: c.Add(365 * 24 * time.Hour),
			want: plan{fire: mustTime(t, "2027-01-01T10:00:00Z"), skipped: maxCount, skippedMore: true,
				next: mustTime(t, "2027-01-01T10:01:00Z")}},
		{name: "cron that never fires", scheduled: "0 0 30 2 *", now: c},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseSchedule(orcav1.IgnitorSpec{Scheduled: tt.scheduled, TimeZone: tt.tz}, c)
			require.NoError(t, err)
			got := s.plan(c, tt.lastFired, tt.now)
			assert.True(t, got.fire.Equal(tt.want.fire), "fire: got %s, want %s", got.fire, tt.want.fire)
			assert.True(t, got.next.Equal(tt.want.next), "next: got %s, want %s", got.next, tt.want.next)
			assert.Equal(t, tt.want.skipped, got.skipped, "skipped")
			assert.Equal(t, tt.want.skippedMore, got.skippedMore, "skippedMore")
		})
	}
}

func TestEventID(t *testing.T) {
	assert.Equal(t, "abc-1767261630", eventID("abc", mustTime(t, "2026-01-01T10:00:30Z")))
	assert.Equal(t, "abc-1767261630", eventID("abc", mustTime(t, "2026-01-01T10:00:30.9Z")))
}
