package schedule

import (
	"cmp"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// In Europe/Berlin, 2026-03-29 02:00 CET jumps to 03:00 CEST (02:xx does not
// exist) and 2026-10-25 03:00 CEST falls back to 02:00 CET (02:xx happens twice).
var (
	springEve = "2026-03-28T23:00:00+01:00"
	autumnEve = "2026-10-24T23:00:00+02:00"
)

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	return loc
}

// firings lists the times of expr in Europe/Berlin after start as wall-clock
// readings with their zone, up to n of them.
func firings(t *testing.T, expr, start string, n int) []string {
	t.Helper()
	s := mustParse(t, orcav1.IgnitorSpec{Scheduled: expr, TimeZone: "Europe/Berlin"}, mustTime(t, "2026-01-01T00:00:00Z"))
	return format(t, times(s, mustTime(t, start), n))
}

func format(t *testing.T, ts []time.Time) []string {
	var out []string
	for _, x := range ts {
		out = append(out, x.In(berlin(t)).Format("01-02 15:04 MST"))
	}
	return out
}

func TestDSTRepeatedHourFiresOnce(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{"30 2 * * *", []string{"10-25 02:30 CEST", "10-26 02:30 CET", "10-27 02:30 CET"}},
		{"0 2 * * *", []string{"10-25 02:00 CEST", "10-26 02:00 CET"}},
		{"0 * * * *", []string{"10-25 00:00 CEST", "10-25 01:00 CEST", "10-25 02:00 CEST", "10-25 03:00 CET", "10-25 04:00 CET"}},
		{"@hourly", []string{"10-25 00:00 CEST", "10-25 01:00 CEST", "10-25 02:00 CEST", "10-25 03:00 CET", "10-25 04:00 CET"}},
		{"*/30 1-3 * * *", []string{"10-25 01:00 CEST", "10-25 01:30 CEST", "10-25 02:00 CEST", "10-25 02:30 CEST", "10-25 03:00 CET", "10-25 03:30 CET", "10-26 01:00 CET"}},
		{"0 3 * * *", []string{"10-25 03:00 CET", "10-26 03:00 CET"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			assert.Equal(t, tt.want, firings(t, tt.expr, autumnEve, len(tt.want)))
		})
	}

	// From inside the second pass of the repeated hour, nothing of that hour is
	// left: 02:30 fired in the first pass.
	second := mustTime(t, "2026-10-25T02:10:00+01:00")
	s := mustParse(t, orcav1.IgnitorSpec{Scheduled: "*/15 * * * *", TimeZone: "Europe/Berlin"}, mustTime(t, "2026-01-01T00:00:00Z"))
	assert.Equal(t, []string{"10-25 03:00 CET", "10-25 03:15 CET"}, format(t, times(s, second, 2)))
}

func TestDSTSkippedHourFiresAtTheNextValidTime(t *testing.T) {
	tests := []struct {
		expr, start string // start: springEve when empty
		want        []string
	}{
		// 02:30 does not exist on 03-29: it fires when the gap ends, 03:00 CEST.
		{expr: "30 2 * * *", want: []string{"03-29 03:00 CEST", "03-30 02:30 CEST", "03-31 02:30 CEST"}},
		{expr: "0 2 * * *", want: []string{"03-29 03:00 CEST", "03-30 02:00 CEST"}},
		// Every time in the gap and 03:00 itself are one firing.
		{expr: "*/30 * * * *", start: "2026-03-29T00:45:00+01:00",
			want: []string{"03-29 01:00 CET", "03-29 01:30 CET", "03-29 03:00 CEST", "03-29 03:30 CEST"}},
		{expr: "0 2,3 * * *", want: []string{"03-29 03:00 CEST", "03-30 02:00 CEST", "03-30 03:00 CEST"}},
		{expr: "0 * * * *", want: []string{"03-29 00:00 CET", "03-29 01:00 CET", "03-29 03:00 CEST", "03-29 04:00 CEST"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			start := cmp.Or(tt.start, springEve)
			assert.Equal(t, tt.want, firings(t, tt.expr, start, len(tt.want)))
		})
	}
}

// TestRobfigCronNextAcrossDST pins what robfig/cron's own Next does in
// Europe/Berlin, the behaviour wallClock corrects: it fires a repeated 02:30
// twice and skips a missing 02:30 to the next day.
func TestRobfigCronNextAcrossDST(t *testing.T) {
	sched, err := cron.ParseStandard("CRON_TZ=Europe/Berlin 30 2 * * *")
	require.NoError(t, err)
	next := func(start string, n int) []time.Time {
		var out []time.Time
		for x := mustTime(t, start); len(out) < n; {
			x = sched.Next(x)
			out = append(out, x)
		}
		return out
	}
	assert.Equal(t, []string{"10-25 02:30 CEST", "10-25 02:30 CET", "10-26 02:30 CET"}, format(t, next(autumnEve, 3)))
	assert.Equal(t, []string{"03-30 02:30 CEST", "03-31 02:30 CEST"}, format(t, next(springEve, 2)))
}

// @every counts elapsed time: an hour is an hour across both transitions.
func TestDSTEveryCountsElapsedTime(t *testing.T) {
	s := mustParse(t, orcav1.IgnitorSpec{Scheduled: "@every 1h", TimeZone: "Europe/Berlin"}, mustTime(t, autumnEve))
	assert.Equal(t, []string{"10-25 00:00 CEST", "10-25 01:00 CEST", "10-25 02:00 CEST", "10-25 02:00 CET", "10-25 03:00 CET"},
		format(t, times(s, mustTime(t, autumnEve), 5)))
}

// The DST rule holds in zones whose clocks move by other amounts, and on the
// southern hemisphere.
func TestDSTOtherZones(t *testing.T) {
	tests := []struct {
		zone, expr, start string
		want              []string // UTC
	}{
		// Lord Howe Island moves by 30 minutes: 02:00 -> 02:30 on 2026-10-04, and
		// 02:00 -> 01:30 on 2026-04-05.
		{"Australia/Lord_Howe", "15 2 * * *", "2026-10-03T12:00:00Z", []string{"2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"}},
		{"Australia/Lord_Howe", "45 1 * * *", "2026-04-04T12:00:00Z", []string{"2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"}},
		// New York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
		{"America/New_York", "30 2 * * *", "2026-03-07T12:00:00Z", []string{"2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"}},
		{"America/New_York", "30 1 * * *", "2026-10-31T12:00:00Z", []string{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.zone+" "+tt.expr, func(t *testing.T) {
			s := mustParse(t, orcav1.IgnitorSpec{Scheduled: tt.expr, TimeZone: tt.zone}, mustTime(t, "2026-01-01T00:00:00Z"))
			var got []string
			for _, x := range times(s, mustTime(t, tt.start), len(tt.want)) {
				got = append(got, x.UTC().Format(time.RFC3339))
			}
			assert.Equal(t, tt.want, got)
		})
	}
}
