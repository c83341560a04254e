package scheduler

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

func TestNowFiresOnceAcrossRestarts(t *testing.T) {
	h := newHarness(t)
	stop := h.startScheduler(nil)
	ign := h.createIgnitor("now", orcav1.ScheduledNow, "", "hello")
	created := ign.CreationTimestamp.Time
	wantID := eventID(string(ign.UID), created)

	got := h.waitIgnitor("now", 10*time.Second, "fired", func(i *orcav1.Ignitor) bool { return i.Status.LastFired != nil })
	assert.True(t, timeEqual(got.Status.LastFired, created), "lastFired %v, want %s", got.Status.LastFired, created)
	assert.Nil(t, got.Status.NextFire)
	assert.Equal(t, wantID, got.Status.LastEventID)
	assert.Equal(t, int64(1), got.Status.ObservedGeneration)
	require.Len(t, got.Status.History, 1)
	assert.Equal(t, wantID, got.Status.History[0].ID)
	assert.True(t, got.Status.History[0].ScheduledTime.Equal(&metav1.Time{Time: created}))
	assert.False(t, got.Status.History[0].FiredAt.Before(&metav1.Time{Time: created}))
	assert.Nil(t, got.Status.LastSkip)
	cond := validCondition(got)
	require.NotNil(t, cond)
	assert.Equal(t, metav1.ConditionTrue, cond.Status)

	h.drain()
	delivered := h.deliveredFor("now")
	require.Len(t, delivered, 1)
	assert.Equal(t, wantID, delivered[0].ID)
	assert.Equal(t, "hello", string(delivered[0].Data))
	assert.Equal(t, Source, delivered[0].Source)
	assert.Equal(t, h.ns, delivered[0].Namespace)
	assert.True(t, delivered[0].Time.Equal(created), "event time %s, want %s", delivered[0].Time, created)
	assert.Contains(t, h.waitEvent("now", corev1.EventTypeNormal, "Fired"), wantID)

	// A new scheduler (restart, failover) must not fire NOW again. The edit bumps
	// the generation, so observedGeneration shows that the new one reconciled.
	stop()
	got.Spec.Description = "edited while the scheduler was down"
	require.NoError(t, env.Client.Update(t.Context(), got))
	h.startScheduler(nil)
	h.waitIgnitor("now", 10*time.Second, "observedGeneration 2", func(i *orcav1.Ignitor) bool { return i.Status.ObservedGeneration == 2 })
	assert.Len(t, h.attemptsFor("now"), 1, "publish calls")
	h.drain()
	assert.Len(t, h.deliveredFor("now"), 1, "stored ignitions")
}

func TestOneShot(t *testing.T) {
	h := newHarness(t)
	h.startScheduler(nil)

	t.Run("future time fires at that time", func(t *testing.T) {
		at := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
		ign := h.createIgnitor("future", at.Format(time.RFC3339), "", "later")
		h.waitIgnitor("future", 10*time.Second, "nextFire set", func(i *orcav1.Ignitor) bool {
			return timeEqual(i.Status.NextFire, at) || i.Status.LastFired != nil
		})
		got := h.waitIgnitor("future", 15*time.Second, "fired", func(i *orcav1.Ignitor) bool { return timeEqual(i.Status.LastFired, at) })
		assert.Nil(t, got.Status.NextFire)
		attempts := h.attemptsFor("future")
		require.Len(t, attempts, 1)
		assert.False(t, attempts[0].at.Before(at), "published at %s, before %s", attempts[0].at, at)
		assert.True(t, attempts[0].ig.Time.Equal(at))
		assert.Equal(t, eventID(string(ign.UID), at), attempts[0].ig.ID)

		// A new time later than lastFired fires at that time.
		at2 := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
		got.Spec.Scheduled = at2.Format(time.RFC3339)
		require.NoError(t, env.Client.Update(t.Context(), got))
		got = h.waitIgnitor("future", 15*time.Second, "fired again", func(i *orcav1.Ignitor) bool { return timeEqual(i.Status.LastFired, at2) })
		attempts = h.attemptsFor("future")
		require.Len(t, attempts, 2)
		assert.False(t, attempts[1].at.Before(at2), "published at %s, before %s", attempts[1].at, at2)
		assert.Equal(t, eventID(string(ign.UID), at2), attempts[1].ig.ID)

		// A time at or before lastFired never fires.
		got.Spec.Scheduled = at.Format(time.RFC3339)
		require.NoError(t, env.Client.Update(t.Context(), got))
		h.waitIgnitor("future", 10*time.Second, "observedGeneration 3", func(i *orcav1.Ignitor) bool { return i.Status.ObservedGeneration == 3 })
		assert.Len(t, h.attemptsFor("future"), 2)
	})

	t.Run("past time that never fired fires at once", func(t *testing.T) {
		at := time.Now().Add(-time.Hour).Truncate(time.Second)
		ign := h.createIgnitor("past", at.Format(time.RFC3339), "", "")
		got := h.waitIgnitor("past", 10*time.Second, "fired", func(i *orcav1.Ignitor) bool { return i.Status.LastFired != nil })
		assert.True(t, timeEqual(got.Status.LastFired, at))
		assert.Equal(t, eventID(string(ign.UID), at), got.Status.LastEventID)
	})

	h.drain()
	assert.Len(t, h.deliveredFor("future"), 2)
	assert.Len(t, h.deliveredFor("past"), 1)
}

func TestCronFiresEachTime(t *testing.T) {
	h := newHarness(t)
	h.startScheduler(nil)
	ign := h.createIgnitor("every", "@every 2s", "", "tick")
	created := ign.CreationTimestamp.Time

	// Observe the status after each firing: nextFire follows lastFired.
	seen := map[time.Time]time.Time{}
	require.Eventually(t, func() bool {
		st := h.get("every").Status
		if st.LastFired != nil && st.NextFire != nil {
			seen[st.LastFired.UTC()] = st.NextFire.UTC()
		}
		return len(seen) >= 3
	}, 30*time.Second, 50*time.Millisecond, "three firings")
	require.NoError(t, env.Client.Delete(t.Context(), ign))
	for last, next := range seen {
		assert.Equal(t, last.Add(2*time.Second), next, "nextFire after %s", last)
		assert.Zero(t, last.Sub(created)%(2*time.Second), "%s is not a time of @every 2s from %s", last, created)
	}

	attempts := h.attemptsFor("every")
	require.GreaterOrEqual(t, len(attempts), 3)
	ids := map[string]bool{}
	for i, a := range attempts {
		assert.False(t, ids[a.ig.ID], "id %s published twice", a.ig.ID)
		ids[a.ig.ID] = true
		assert.Equal(t, eventID(string(ign.UID), a.ig.Time), a.ig.ID)
		assert.False(t, a.at.Before(a.ig.Time), "published at %s, before %s", a.at, a.ig.Time)
		if i > 0 {
			assert.True(t, a.ig.Time.After(attempts[i-1].ig.Time), "times go forward")
		}
	}
	h.drain()
	assert.Len(t, h.deliveredFor("every"), len(attempts))
}

func TestMissedCronTimesFireOnlyTheLatest(t *testing.T) {
	tests := []struct {
		name, scheduled, tz string
		offset              time.Duration // the fake clock: creation time + offset
		lastFired           time.Duration // from creation; 0: never fired
		// want returns the fired time, how many were skipped and the next time.
		want func(c time.Time) (time.Time, int, time.Time)
	}{
		{name: "every", scheduled: "@every 1m", offset: 5*time.Minute + 30*time.Second,
			want: func(c time.Time) (time.Time, int, time.Time) {
				return c.Add(5 * time.Minute), 4, c.Add(6 * time.Minute)
			}},
		{name: "every after an earlier firing", scheduled: "@every 1m", offset: 10*time.Minute + 30*time.Second,
			lastFired: 2 * time.Minute,
			want: func(c time.Time) (time.Time, int, time.Time) {
				return c.Add(10 * time.Minute), 7, c.Add(11 * time.Minute)
			}},
		{name: "five fields", scheduled: "*/5 * * * *", offset: 23 * time.Minute,
			want: func(c time.Time) (time.Time, int, time.Time) {
				last := c.Add(23 * time.Minute).Truncate(5 * time.Minute)
				first := c.Truncate(5 * time.Minute).Add(5 * time.Minute)
				return last, int(last.Sub(first) / (5 * time.Minute)), last.Add(5 * time.Minute)
			}},
		{name: "time zone", scheduled: "0 * * * *", tz: "Asia/Kolkata", offset: 3 * time.Hour,
			want: func(c time.Time) (time.Time, int, time.Time) {
				// Minute 0 in India (UTC+05:30) is minute 30 in UTC.
				last := c.Add(3 * time.Hour).Add(-30 * time.Minute).Truncate(time.Hour).Add(30 * time.Minute)
				return last, 2, last.Add(time.Hour)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ign := h.createIgnitor("missed", tt.scheduled, tt.tz, "")
			c := ign.CreationTimestamp.Time
			if tt.lastFired > 0 {
				ign.Status.LastFired = &metav1.Time{Time: c.Add(tt.lastFired)}
				require.NoError(t, env.Client.Status().Update(t.Context(), ign))
			}
			wantFire, wantSkipped, wantNext := tt.want(c)
			h.startScheduler(func() time.Time { return c.Add(tt.offset) })

			got := h.waitIgnitor("missed", 10*time.Second, "fired", func(i *orcav1.Ignitor) bool {
				return i.Status.LastFired != nil && i.Status.LastFired.After(c.Add(tt.lastFired))
			})
			assert.True(t, timeEqual(got.Status.LastFired, wantFire), "lastFired %v, want %s", got.Status.LastFired, wantFire)
			assert.True(t, timeEqual(got.Status.NextFire, wantNext), "nextFire %v, want %s", got.Status.NextFire, wantNext)
			attempts := h.attemptsFor("missed")
			require.Len(t, attempts, 1)
			assert.True(t, attempts[0].ig.Time.Equal(wantFire))
			note := h.waitEvent("missed", corev1.EventTypeWarning, ReasonSkipped)
			assert.Contains(t, note, fmt.Sprintf("skipped %d missed scheduled times", wantSkipped))
			assert.Contains(t, note, "catchUp Latest fires only the latest missed time")
			require.NotNil(t, got.Status.LastSkip)
			assert.Equal(t, int64(wantSkipped), got.Status.LastSkip.Count)
			assert.True(t, got.Status.LastSkip.Last.Before(got.Status.LastFired))
		})
	}
}

func TestInvalidSchedule(t *testing.T) {
	h := newHarness(t)
	h.startScheduler(nil)
	tests := []struct {
		name, scheduled, tz, wantMsg string
		schedules                    []orcav1.Schedule
	}{
		{name: "bad-minute", scheduled: "61 * * * *", wantMsg: `"61 * * * *"`},
		{name: "bad-zone", scheduled: "0 * * * *", tz: "Mars/Olympus", wantMsg: `timeZone "Mars/Olympus"`},
		{name: "never", scheduled: "0 0 30 2 *", wantMsg: "matches no time in the five years"},
		{name: "bad-entry", scheduled: "@hourly", schedules: []orcav1.Schedule{"@daily", "0 0 * * 8"}, wantMsg: `schedules[1]: "0 0 * * 8"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.create(tt.name, orcav1.IgnitorSpec{Scheduled: tt.scheduled, TimeZone: tt.tz, Schedules: tt.schedules})
			got := h.waitIgnitor(tt.name, 10*time.Second, "ScheduleValid=False", func(i *orcav1.Ignitor) bool {
				c := validCondition(i)
				return c != nil && c.Status == metav1.ConditionFalse
			})
			cond := validCondition(got)
			assert.Equal(t, ReasonInvalidSchedule, cond.Reason)
			assert.Contains(t, cond.Message, tt.wantMsg)
			assert.Nil(t, got.Status.NextFire)
			assert.Contains(t, h.waitEvent(tt.name, corev1.EventTypeWarning, ReasonInvalidSchedule), tt.wantMsg)

			// Fixing the spec makes the schedule valid again.
			got.Spec.Scheduled, got.Spec.TimeZone, got.Spec.Schedules = "@every 1h", "", nil
			require.NoError(t, env.Client.Update(t.Context(), got))
			c := got.CreationTimestamp.Time
			fixed := h.waitIgnitor(tt.name, 10*time.Second, "ScheduleValid=True", func(i *orcav1.Ignitor) bool {
				c := validCondition(i)
				return c != nil && c.Status == metav1.ConditionTrue
			})
			assert.True(t, timeEqual(fixed.Status.NextFire, c.Add(time.Hour)), "nextFire %v", fixed.Status.NextFire)
			assert.Empty(t, h.attemptsFor(tt.name))
		})
	}
	h.drain()
	assert.Empty(t, h.deliveredFor("bad-minute"))
	assert.Empty(t, h.deliveredFor("bad-zone"))
}

// A crash between the publish and the status write republishes the same event
// id; the stream stores it once.
func TestRepublishAfterFailedStatusIsStoredOnce(t *testing.T) {
	h := newHarness(t)
	h.failNext = 1
	failedBefore := testutil.ToFloat64(firesTotal.WithLabelValues(outcomeFailed))
	h.startScheduler(nil)
	ign := h.createIgnitor("crash", orcav1.ScheduledNow, "", "once")
	got := h.waitIgnitor("crash", 10*time.Second, "fired", func(i *orcav1.Ignitor) bool { return i.Status.LastFired != nil })
	wantID := eventID(string(ign.UID), ign.CreationTimestamp.Time)
	assert.Equal(t, wantID, got.Status.LastEventID)

	attempts := h.attemptsFor("crash")
	require.Len(t, attempts, 2)
	assert.Equal(t, wantID, attempts[0].ig.ID)
	assert.Equal(t, wantID, attempts[1].ig.ID)
	h.drain()
	require.Len(t, h.deliveredFor("crash"), 1)
	assert.Equal(t, failedBefore+1, testutil.ToFloat64(firesTotal.WithLabelValues(outcomeFailed)), "failed firings")
}

// countingReader counts the reads from the API server.
type countingReader struct {
	client.Reader
	n atomic.Int64
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.n.Add(1)
	return c.Reader.Get(ctx, key, obj, opts...)
}

// TestFiringAfterItsOwnStatusWriteReadsNothingFirst checks that a firing whose
// Ignitor the cache holds as the scheduler last wrote it goes straight to the
// publish: the only read from the API server is the status write's own.
func TestFiringAfterItsOwnStatusWriteReadsNothingFirst(t *testing.T) {
	h := newHarness(t)
	reads := &countingReader{Reader: env.Client}
	h.startSchedulerWith(Options{reader: reads})
	h.createIgnitor("tick", "@every 1s", "", "")
	h.waitIgnitor("tick", 20*time.Second, "four firings", func(i *orcav1.Ignitor) bool {
		return len(h.attemptsFor("tick")) >= 4 && i.Status.LastFired != nil
	})
	fired := int64(len(h.attemptsFor("tick")))
	// Each firing's status write reads once; the first firing, whose Ignitor
	// the scheduler never wrote, and one that found the cache behind read once
	// more.
	assert.LessOrEqual(t, reads.n.Load(), fired+2, "reads from the API server for %d firings", fired)
}
