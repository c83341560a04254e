package scheduler

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

func berlinTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}

// Daylight saving in Europe/Berlin, through the scheduler with its clock set
// around the transitions of 2027 (after the Ignitors' creation).
func TestDaylightSavingInBerlin(t *testing.T) {
	t.Run("skipped hour fires when the gap ends", func(t *testing.T) {
		h := newHarness(t)
		// 2027-03-28: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
		h.startScheduler(newClock(berlinTime(t, "2027-03-28T03:00:00.5+02:00")).now)
		ign := h.create("spring", orcav1.IgnitorSpec{Scheduled: "30 2 * * *", TimeZone: "Europe/Berlin"})
		gapEnd := berlinTime(t, "2027-03-28T03:00:00+02:00")
		got := h.waitIgnitor("spring", 10*time.Second, "fired at the gap's end", func(i *orcav1.Ignitor) bool { return timeEqual(i.Status.LastFired, gapEnd) })
		assert.True(t, timeEqual(got.Status.NextFire, berlinTime(t, "2027-03-29T02:30:00+02:00")), "nextFire %v", got.Status.NextFire)
		h.assertFired(ign, gapEnd)
	})

	t.Run("repeated hour fires once", func(t *testing.T) {
		h := newHarness(t)
		// 2027-10-31: 03:00 CEST falls back to 02:00 CET; 02:xx happens twice.
		clk := newClock(berlinTime(t, "2027-10-31T02:30:00.5+02:00"))
		h.startScheduler(clk.now)
		daily := h.create("daily", orcav1.IgnitorSpec{Scheduled: "30 2 * * *", TimeZone: "Europe/Berlin"})
		hourly := h.create("hourly", orcav1.IgnitorSpec{Scheduled: "0 * * * *", TimeZone: "Europe/Berlin"})
		first := berlinTime(t, "2027-10-31T02:30:00+02:00")
		h.waitIgnitor("daily", 10*time.Second, "fired 02:30 CEST", func(i *orcav1.Ignitor) bool { return timeEqual(i.Status.LastFired, first) })
		h.waitIgnitor("hourly", 10*time.Second, "fired 02:00 CEST", func(i *orcav1.Ignitor) bool {
			return timeEqual(i.Status.LastFired, berlinTime(t, "2027-10-31T02:00:00+02:00"))
		})

		// The second 02:30, in CET: nothing fires, the next times are 03:00 CET
		// and the next day's 02:30.
		clk.set(berlinTime(t, "2027-10-31T02:30:00.5+01:00"))
		got := h.edit("daily", func(*orcav1.IgnitorSpec) {})
		assert.True(t, timeEqual(got.Status.NextFire, berlinTime(t, "2027-11-01T02:30:00+01:00")), "nextFire %v", got.Status.NextFire)
		got = h.edit("hourly", func(*orcav1.IgnitorSpec) {})
		assert.True(t, timeEqual(got.Status.NextFire, berlinTime(t, "2027-10-31T03:00:00+01:00")), "nextFire %v", got.Status.NextFire)
		h.assertFired(daily, first)
		h.assertFired(hourly, berlinTime(t, "2027-10-31T02:00:00+02:00"))
	})
}
