package schedule

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

func mustParse(t *testing.T, spec orcav1.IgnitorSpec, created time.Time) *Schedule {
	t.Helper()
	s, err := Parse(spec, created)
	require.NoError(t, err)
	return s
}

// times returns the first n times of s after after.
func times(s *Schedule, after time.Time, n int) []time.Time {
	var out []time.Time
	for t := s.Next(after); !t.IsZero() && len(out) < n; t = s.Next(t) {
		out = append(out, t)
	}
	return out
}

func TestParse(t *testing.T) {
	created := mustTime(t, "2026-01-01T10:00:30Z")
	tests := []struct {
		name, scheduled, tz string
		schedules           []orcav1.Schedule
		want                []string // the first times after the zero time
		wantErr             string
	}{
		{name: "now", scheduled: "NOW", want: []string{"2026-01-01T10:00:30Z"}},
		{name: "rfc3339", scheduled: "2030-02-03T19:34:05Z", want: []string{"2030-02-03T19:34:05Z"}},
		{name: "rfc3339 lowercase with offset", scheduled: "2030-02-03t21:34:05+02:00", want: []string{"2030-02-03T19:34:05Z"}},
		{name: "rfc3339 fraction is dropped", scheduled: "2030-02-03T19:34:05.9Z", want: []string{"2030-02-03T19:34:05Z"}},
		{name: "rfc3339 before the creation", scheduled: "2020-01-01T00:00:00Z", want: []string{"2020-01-01T00:00:00Z"}},
		{name: "five fields", scheduled: "*/20 * * * *",
			want: []string{"2026-01-01T10:20:00Z", "2026-01-01T10:40:00Z", "2026-01-01T11:00:00Z"}},
		{name: "five fields with zone", scheduled: "0 9 * * MON-FRI", tz: "Europe/Rome",
			want: []string{"2026-01-02T08:00:00Z", "2026-01-05T08:00:00Z", "2026-01-06T08:00:00Z"}},
		{name: "descriptor", scheduled: "@hourly", want: []string{"2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z"}},
		{name: "every counts from the creation", scheduled: "@every 10m",
			want: []string{"2026-01-01T10:10:30Z", "2026-01-01T10:20:30Z"}},
		{name: "every below a second is a second", scheduled: "@every 10ms",
			want: []string{"2026-01-01T10:00:31Z", "2026-01-01T10:00:32Z"}},
		{name: "several schedules, shared time once", scheduled: "0 12 * * *",
			schedules: []orcav1.Schedule{"0 12,18 * * *", "2026-01-01T15:00:00Z", "NOW"},
			want:      []string{"2026-01-01T10:00:30Z", "2026-01-01T12:00:00Z", "2026-01-01T15:00:00Z", "2026-01-01T18:00:00Z", "2026-01-02T12:00:00Z"}},
		{name: "minute out of range", scheduled: "61 * * * *", wantErr: `scheduled: "61 * * * *"`},
		{name: "bad entry of schedules", scheduled: "@hourly", schedules: []orcav1.Schedule{"@daily", "0 25 * * *"},
			wantErr: `schedules[1]: "0 25 * * *"`},
		{name: "unknown zone", scheduled: "0 * * * *", tz: "Mars/Olympus", wantErr: `timeZone "Mars/Olympus"`},
		{name: "local zone", scheduled: "0 * * * *", tz: "Local", wantErr: `timeZone "Local"`},
		{name: "zone in expression", scheduled: "CRON_TZ=UTC", wantErr: "spec.timeZone"},
		{name: "six fields", scheduled: "0 0 * * * *", wantErr: "cron expression"},
		{name: "lowercase now", scheduled: "now", wantErr: "cron expression"},
		{name: "empty minute list", scheduled: ", * * * *", wantErr: `cron expression ", * * * *" has a minute field that matches no value`},
		{name: "empty day of week list", scheduled: "0 0 * * ,", wantErr: "has a day of week field that matches no value"},
		{name: "a date that never comes", scheduled: "0 0 30 2 *", wantErr: `cron expression "0 0 30 2 *" matches no time in the five years`},
		{name: "zone unused by one-shot times", scheduled: "NOW", tz: "Mars/Olympus", want: []string{"2026-01-01T10:00:30Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(orcav1.IgnitorSpec{Scheduled: tt.scheduled, Schedules: tt.schedules, TimeZone: tt.tz}, created)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.NotEmpty(t, s.Desc)
			got := times(s, time.Time{}, len(tt.want)+1)
			var gotS []string
			for _, g := range got {
				gotS = append(gotS, g.UTC().Format(time.RFC3339))
			}
			if len(gotS) > len(tt.want) && (tt.scheduled == "NOW" || tt.scheduled[0] == '2') && len(tt.schedules) == 0 {
				t.Fatalf("a one-shot schedule has more times: %v", gotS)
			}
			assert.Equal(t, tt.want, gotS[:min(len(gotS), len(tt.want))])
		})
	}
}

func TestPolicyOf(t *testing.T) {
	assert.Equal(t, Policy{CatchUp: orcav1.CatchUpLatest, MaxCatchUpRuns: 1}, PolicyOf(orcav1.IgnitorSpec{}))
	d := int64(90)
	assert.Equal(t, Policy{CatchUp: orcav1.CatchUpAll, MaxCatchUpRuns: 5, StartingDeadline: 90 * time.Second},
		PolicyOf(orcav1.IgnitorSpec{CatchUp: orcav1.CatchUpAll, MaxCatchUpRuns: 5, StartingDeadlineSeconds: &d}))
}
