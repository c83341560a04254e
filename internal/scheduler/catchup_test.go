package scheduler

import (
	"cmp"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// firedTimes returns the scheduled times of the publish calls for name.
func (h *harness) firedTimes(name string) []time.Time {
	var out []time.Time
	for _, a := range h.attemptsFor(name) {
		out = append(out, a.ig.Time)
	}
	return out
}

// assertFired checks that the Ignitor ign fired exactly at want, in that order,
// each under its own id, and that the stream holds each once.
func (h *harness) assertFired(ign *orcav1.Ignitor, want ...time.Time) {
	t := h.t
	t.Helper()
	attempts := h.attemptsFor(ign.Name)
	require.Len(t, attempts, len(want), "publish calls: %v", h.firedTimes(ign.Name))
	for i, a := range attempts {
		assert.True(t, a.ig.Time.Equal(want[i]), "firing %d for %s, want %s", i, a.ig.Time, want[i])
		assert.Equal(t, eventID(string(ign.UID), want[i]), a.ig.ID)
	}
	h.drain()
	var ids []string
	for _, d := range h.deliveredFor(ign.Name) {
		ids = append(ids, d.ID)
	}
	var wantIDs []string
	for _, w := range want {
		wantIDs = append(wantIDs, eventID(string(ign.UID), w))
	}
	assert.Equal(t, wantIDs, ids, "stored ignitions")
}

func every(c time.Time, mins ...int) []time.Time {
	var out []time.Time
	for _, m := range mins {
		out = append(out, c.Add(time.Duration(m)*time.Minute))
	}
	return out
}

// The scheduler was down while "@every 1m" came due several times; the clock
// says how long. Each policy fires and skips what it says, never silently.
func TestCatchUpPolicies(t *testing.T) {
	tests := []struct {
		name     string
		catchUp  orcav1.CatchUpPolicy
		maxRuns  int32
		offset   time.Duration // the fake clock: creation + offset
		fired    []int         // minutes after creation
		skipped  int
		skipLast int // minutes after creation of the last skipped time
		next     int
	}{
		{name: "none-late", catchUp: orcav1.CatchUpNone, offset: 5*time.Minute + 30*time.Second, skipped: 5, skipLast: 5, next: 6},
		{name: "none-latest-on-time", catchUp: orcav1.CatchUpNone, offset: 5*time.Minute + 3*time.Second, fired: []int{5}, skipped: 4, skipLast: 4, next: 6},
		{name: "all-within-the-cap", catchUp: orcav1.CatchUpAll, maxRuns: 3, offset: 3*time.Minute + 30*time.Second, fired: []int{1, 2, 3}, next: 4},
		{name: "all-past-the-cap", catchUp: orcav1.CatchUpAll, maxRuns: 3, offset: 10*time.Minute + 30*time.Second, fired: []int{8, 9, 10}, skipped: 7, skipLast: 7, next: 11},
		{name: "latest", offset: 4*time.Minute + 30*time.Second, fired: []int{4}, skipped: 3, skipLast: 3, next: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ign := h.create("catch", orcav1.IgnitorSpec{Scheduled: "@every 1m", CatchUp: tt.catchUp, MaxCatchUpRuns: tt.maxRuns})
			c := ign.CreationTimestamp.Time
			h.startScheduler(newClock(c.Add(tt.offset)).now)

			got := h.waitIgnitor("catch", 10*time.Second, "handled", func(i *orcav1.Ignitor) bool {
				return i.Status.NextFire != nil && i.Status.NextFire.After(c.Add(tt.offset))
			})
			assert.True(t, timeEqual(got.Status.NextFire, c.Add(time.Duration(tt.next)*time.Minute)), "nextFire %v", got.Status.NextFire)
			h.assertFired(ign, every(c, tt.fired...)...)

			// status.history: newest first.
			require.Len(t, got.Status.History, len(tt.fired))
			for i, m := range tt.fired {
				f := got.Status.History[len(tt.fired)-1-i]
				assert.True(t, f.ScheduledTime.Time.Equal(c.Add(time.Duration(m)*time.Minute)), "history %d: %s", i, f.ScheduledTime)
				assert.Equal(t, eventID(string(ign.UID), f.ScheduledTime.Time), f.ID)
			}
			if len(tt.fired) > 1 {
				assert.Contains(t, h.waitEvent("catch", corev1.EventTypeNormal, ReasonFired),
					fmt.Sprintf("for %d missed scheduled times", len(tt.fired)))
			}

			if tt.skipped == 0 {
				assert.Nil(t, got.Status.LastSkip)
				assert.Empty(t, h.events("catch", corev1.EventTypeWarning, ReasonSkipped))
				return
			}
			require.NotNil(t, got.Status.LastSkip)
			assert.Equal(t, int64(tt.skipped), got.Status.LastSkip.Count)
			assert.True(t, got.Status.LastSkip.First.Time.Equal(c.Add(time.Minute)), "first skipped %s", got.Status.LastSkip.First)
			assert.True(t, got.Status.LastSkip.Last.Time.Equal(c.Add(time.Duration(tt.skipLast)*time.Minute)), "last skipped %s", got.Status.LastSkip.Last)
			assert.Contains(t, got.Status.LastSkip.Message, fmt.Sprintf("skipped %d scheduled times", tt.skipped))
			note := h.waitEvent("catch", corev1.EventTypeWarning, ReasonSkipped)
			assert.Contains(t, note, fmt.Sprintf("skipped %d missed scheduled times", tt.skipped))
			assert.Contains(t, note, "catchUp "+string(cmp.Or(tt.catchUp, orcav1.CatchUpLatest)))
		})
	}
}

// A scheduler that comes back fires the missed times under their own ids and
// never a time that fired before it went down.
func TestCatchUpAcrossRestartKeepsIDs(t *testing.T) {
	h := newHarness(t)
	ign := h.create("restart", orcav1.IgnitorSpec{Scheduled: "@every 1m", CatchUp: orcav1.CatchUpAll, MaxCatchUpRuns: 10})
	c := ign.CreationTimestamp.Time

	stop := h.startScheduler(newClock(c.Add(time.Minute + 500*time.Millisecond)).now)
	h.waitIgnitor("restart", 10*time.Second, "first firing", func(i *orcav1.Ignitor) bool { return timeEqual(i.Status.LastFired, c.Add(time.Minute)) })
	stop()

	stop = h.startScheduler(newClock(c.Add(5*time.Minute + 30*time.Second)).now)
	got := h.waitIgnitor("restart", 10*time.Second, "caught up", func(i *orcav1.Ignitor) bool { return timeEqual(i.Status.LastFired, c.Add(5*time.Minute)) })
	assert.Nil(t, got.Status.LastSkip)
	assert.Len(t, got.Status.History, 5)
	stop()

	// A third start at the same moment fires nothing more.
	h.startScheduler(newClock(c.Add(5*time.Minute + 30*time.Second)).now)
	h.edit("restart", func(*orcav1.IgnitorSpec) {})
	h.assertFired(ign, every(c, 1, 2, 3, 4, 5)...)
}

// A time that could not fire within startingDeadlineSeconds is skipped with a
// Warning Event; a time within it fires.
func TestStartingDeadline(t *testing.T) {
	h := newHarness(t)
	ign := h.create("deadline", orcav1.IgnitorSpec{Scheduled: "@every 1m", StartingDeadlineSeconds: ptr.To[int64](20)})
	c := ign.CreationTimestamp.Time
	clk := newClock(c.Add(3*time.Minute + 30*time.Second))
	h.startScheduler(clk.now)

	got := h.waitIgnitor("deadline", 10*time.Second, "skipped", func(i *orcav1.Ignitor) bool { return i.Status.LastSkip != nil })
	assert.Nil(t, got.Status.LastFired)
	assert.Equal(t, int64(3), got.Status.LastSkip.Count)
	assert.Contains(t, got.Status.LastSkip.Message, "3 could not fire within startingDeadlineSeconds 20")
	assert.True(t, timeEqual(got.Status.NextFire, c.Add(4*time.Minute)), "nextFire %v", got.Status.NextFire)
	assert.Contains(t, h.waitEvent("deadline", corev1.EventTypeWarning, ReasonMissedDeadline),
		"skipped 3 scheduled times up to "+rfc3339(c.Add(3*time.Minute))+" that could not fire within startingDeadlineSeconds 20")
	assert.Empty(t, h.events("deadline", corev1.EventTypeWarning, ReasonSkipped), "no catch-up skip: the deadline took them all")

	clk.set(c.Add(4*time.Minute + 15*time.Second))
	h.edit("deadline", func(*orcav1.IgnitorSpec) {})
	h.waitIgnitor("deadline", 10*time.Second, "fired within the deadline", func(i *orcav1.Ignitor) bool { return timeEqual(i.Status.LastFired, c.Add(4*time.Minute)) })
	h.assertFired(ign, c.Add(4*time.Minute))
}

// A suspended Ignitor fires nothing; on resume the times missed meanwhile
// follow catchUp.
func TestSuspendAndResume(t *testing.T) {
	h := newHarness(t)
	ign := h.create("pause", orcav1.IgnitorSpec{Scheduled: "@every 1m", Suspend: true, CatchUp: orcav1.CatchUpAll, MaxCatchUpRuns: 3})
	c := ign.CreationTimestamp.Time
	clk := newClock(c.Add(90 * time.Second))
	h.startScheduler(clk.now)

	got := h.waitIgnitor("pause", 10*time.Second, "Suspended=True", func(i *orcav1.Ignitor) bool {
		return meta.IsStatusConditionTrue(i.Status.Conditions, ConditionSuspended)
	})
	assert.Nil(t, got.Status.NextFire, "a suspended Ignitor shows no next time")
	assert.Contains(t, h.waitEvent("pause", corev1.EventTypeNormal, ReasonSuspended), "catchUp All")

	clk.set(c.Add(5*time.Minute + 30*time.Second))
	h.edit("pause", func(*orcav1.IgnitorSpec) {})
	assert.Empty(t, h.attemptsFor("pause"), "fired while suspended")

	got = h.edit("pause", func(s *orcav1.IgnitorSpec) { s.Suspend = false })
	got = h.waitIgnitor("pause", 10*time.Second, "caught up", func(i *orcav1.Ignitor) bool { return timeEqual(i.Status.LastFired, c.Add(5*time.Minute)) })
	cond := meta.FindStatusCondition(got.Status.Conditions, ConditionSuspended)
	require.NotNil(t, cond)
	assert.Equal(t, metav1.ConditionFalse, cond.Status)
	assert.Equal(t, ReasonResumed, cond.Reason)
	assert.True(t, timeEqual(got.Status.NextFire, c.Add(6*time.Minute)))
	require.NotNil(t, got.Status.LastSkip)
	assert.Equal(t, int64(2), got.Status.LastSkip.Count)
	h.assertFired(ign, every(c, 3, 4, 5)...)
	h.waitEvent("pause", corev1.EventTypeNormal, ReasonResumed)
	assert.Contains(t, h.waitEvent("pause", corev1.EventTypeWarning, ReasonSkipped), "skipped 2 missed scheduled times")
}

// An Ignitor with several schedules fires at each time of any of them; a time
// two schedules share fires once.
func TestSeveralSchedules(t *testing.T) {
	h := newHarness(t)
	ign := h.create("multi", orcav1.IgnitorSpec{
		Scheduled: "0 12 * * *", Schedules: []orcav1.Schedule{"0 12,18 * * *"},
		CatchUp: orcav1.CatchUpAll, MaxCatchUpRuns: 3,
	})
	c := ign.CreationTimestamp.Time.UTC()
	day := time.Date(c.Year(), c.Month(), c.Day()+2, 0, 0, 0, 0, time.UTC)
	h.startScheduler(newClock(day.Add(18*time.Hour + 5*time.Second)).now)

	got := h.waitIgnitor("multi", 10*time.Second, "fired", func(i *orcav1.Ignitor) bool { return timeEqual(i.Status.LastFired, day.Add(18*time.Hour)) })
	assert.True(t, timeEqual(got.Status.NextFire, day.Add(36*time.Hour)), "nextFire %v", got.Status.NextFire)
	h.assertFired(ign, day.Add(-6*time.Hour), day.Add(12*time.Hour), day.Add(18*time.Hour))
	assert.Contains(t, validCondition(got).Message, `cron "0 12,18 * * *"`)
}

// A publish that fails in the middle of a catch-up batch: what was published
// is recorded, the retry publishes the rest, and the stream holds each time once.
func TestCatchUpBatchWithAFailedPublish(t *testing.T) {
	h := newHarness(t)
	ign := h.create("batch", orcav1.IgnitorSpec{Scheduled: "@every 1m", CatchUp: orcav1.CatchUpAll, MaxCatchUpRuns: 3})
	c := ign.CreationTimestamp.Time
	h.failNext = 1 // the first publish stores the event but reports an error
	h.startScheduler(newClock(c.Add(3*time.Minute + 30*time.Second)).now)

	got := h.waitIgnitor("batch", 10*time.Second, "caught up", func(i *orcav1.Ignitor) bool { return timeEqual(i.Status.LastFired, c.Add(3*time.Minute)) })
	assert.Len(t, got.Status.History, 3)
	assert.Equal(t, every(c, 1, 1, 2, 3), h.firedTimes("batch"), "publish calls: the failed one, then the batch again")
	h.drain()
	var ids []string
	for _, d := range h.deliveredFor("batch") {
		ids = append(ids, d.ID)
	}
	assert.Equal(t, []string{eventID(string(ign.UID), c.Add(time.Minute)), eventID(string(ign.UID), c.Add(2*time.Minute)), eventID(string(ign.UID), c.Add(3*time.Minute))}, ids)
}
