package scheduler

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/scheduler/schedule"
)

// Conditions, and the reasons of conditions and Events.
const (
	ConditionScheduleValid = "ScheduleValid"
	ConditionSuspended     = "Suspended"

	ReasonScheduled       = "Scheduled"
	ReasonInvalidSchedule = "InvalidSchedule"
	ReasonSuspended       = "Suspended"
	ReasonResumed         = "Resumed"
	ReasonFired           = "Fired"
	ReasonSkipped         = "Skipped"
	ReasonMissedDeadline  = "MissedDeadline"
)

// record is what one reconcile fired and skipped, for the status.
type record struct {
	fired []orcav1.IgnitorFiring // oldest first
	skip  *schedule.Skip
	next  time.Time // the next scheduled time, zero when none
	at    time.Time // when the decision was made
	// resumed is set by writeStatus when it ended a suspension.
	resumed bool
}

// writeStatus records rec. The generation is the one of the spec rec comes from.
func (r *Reconciler) writeStatus(ctx context.Context, ign *orcav1.Ignitor, sched *schedule.Schedule, rec *record) error {
	gen := ign.Generation
	pol := schedule.PolicyOf(ign.Spec)
	mutate := func(st *orcav1.IgnitorStatus) bool {
		changed := recordFirings(st, rec.fired)
		if sk := rec.skip; sk != nil && (st.LastSkip == nil || sk.Last.After(st.LastSkip.Last.Time)) {
			st.LastSkip = &orcav1.IgnitorSkip{
				Count: int64(sk.Total().N), First: metav1.NewTime(sk.First), Last: metav1.NewTime(sk.Last),
				At: metav1.NewTime(rec.at.Truncate(time.Second)), Message: skipMessage(sk, pol),
			}
			changed = true
		}
		if next := timeOrNil(rec.next); !next.Equal(st.NextFire) {
			st.NextFire, changed = next, true
		}
		rec.resumed = meta.IsStatusConditionTrue(st.Conditions, ConditionSuspended)
		if rec.resumed {
			meta.SetStatusCondition(&st.Conditions, metav1.Condition{
				Type: ConditionSuspended, Status: metav1.ConditionFalse, ObservedGeneration: gen,
				Reason: ReasonResumed, Message: "spec.suspend is false: the Ignitor fires",
			})
			changed = true
		}
		return setStatusCommon(st, gen, scheduleValid(sched)) || changed
	}
	if len(rec.fired) == 0 && rec.skip == nil && !mutate(ign.Status.DeepCopy()) {
		return nil // nothing to write: no API call
	}
	_, err := r.updateStatus(ctx, ign, mutate)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// recordFirings sets lastFired, lastEventID and history from fired (oldest
// first); it reports a change.
func recordFirings(st *orcav1.IgnitorStatus, fired []orcav1.IgnitorFiring) bool {
	if len(fired) == 0 {
		return false
	}
	last := fired[len(fired)-1]
	if st.LastFired != nil && !last.ScheduledTime.After(st.LastFired.Time) {
		return false // recorded already (a retry after a conflict)
	}
	st.LastFired = &metav1.Time{Time: last.ScheduledTime.Time}
	st.LastEventID = last.ID
	history := make([]orcav1.IgnitorFiring, 0, orcav1.MaxFiringHistory)
	for i := len(fired) - 1; i >= 0 && len(history) < orcav1.MaxFiringHistory; i-- {
		history = append(history, fired[i])
	}
	for _, h := range st.History {
		if len(history) == orcav1.MaxFiringHistory {
			break
		}
		history = append(history, h)
	}
	st.History = history
	return true
}

// skipMessage says how many times were skipped and why.
func skipMessage(sk *schedule.Skip, pol schedule.Policy) string {
	var parts []string
	if sk.Expired.N > 0 {
		parts = append(parts, fmt.Sprintf("%s could not fire within startingDeadlineSeconds %d", sk.Expired, int64(pol.StartingDeadline/time.Second)))
	}
	if sk.Missed.N > 0 {
		parts = append(parts, fmt.Sprintf("%s missed: %s", sk.Missed, catchUpRule(pol)))
	}
	return fmt.Sprintf("skipped %s scheduled times from %s to %s; %s",
		sk.Total(), rfc3339(sk.First), rfc3339(sk.Last), strings.Join(parts, "; "))
}

func scheduleValid(sched *schedule.Schedule) metav1.Condition {
	return metav1.Condition{
		Type: ConditionScheduleValid, Status: metav1.ConditionTrue,
		Reason: ReasonScheduled, Message: "the schedule " + sched.Desc,
	}
}

// setSuspended records a suspended Ignitor: no next time, Suspended=True.
// changed says whether the Suspended condition changed (and so deserves an
// Event).
func (r *Reconciler) setSuspended(ctx context.Context, ign *orcav1.Ignitor, sched *schedule.Schedule) (bool, error) {
	gen := ign.Generation
	condChanged := false
	mutate := func(st *orcav1.IgnitorStatus) bool {
		changed := st.NextFire != nil
		st.NextFire = nil
		condChanged = meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: ConditionSuspended, Status: metav1.ConditionTrue, ObservedGeneration: gen,
			Reason: ReasonSuspended, Message: "spec.suspend is true: nothing fires; missed times follow catchUp once resumed",
		})
		return setStatusCommon(st, gen, scheduleValid(sched)) || changed || condChanged
	}
	if !mutate(ign.Status.DeepCopy()) {
		return false, nil
	}
	written, err := r.updateStatus(ctx, ign, mutate)
	return written && condChanged, err
}

// setInvalid records an unusable schedule; changed says whether the condition
// changed (and so deserves an Event).
func (r *Reconciler) setInvalid(ctx context.Context, ign *orcav1.Ignitor, msg string) (bool, error) {
	gen := ign.Generation
	condChanged := false
	mutate := func(st *orcav1.IgnitorStatus) bool {
		changed := st.NextFire != nil
		st.NextFire = nil
		before := meta.FindStatusCondition(st.Conditions, ConditionScheduleValid)
		condChanged = before == nil || before.Status != metav1.ConditionFalse ||
			before.Reason != ReasonInvalidSchedule || before.Message != msg
		return setStatusCommon(st, gen, metav1.Condition{
			Type: ConditionScheduleValid, Status: metav1.ConditionFalse,
			Reason: ReasonInvalidSchedule, Message: msg,
		}) || changed
	}
	if !mutate(ign.Status.DeepCopy()) {
		return false, nil
	}
	written, err := r.updateStatus(ctx, ign, mutate)
	return written && condChanged, err
}

// setStatusCommon sets observedGeneration and the condition; it reports a change.
func setStatusCommon(st *orcav1.IgnitorStatus, gen int64, cond metav1.Condition) bool {
	changed := st.ObservedGeneration != gen
	st.ObservedGeneration = gen
	cond.ObservedGeneration = gen
	return meta.SetStatusCondition(&st.Conditions, cond) || changed
}

// updateStatus applies mutate to a fresh copy of the Ignitor from the API server
// and writes its status, again on conflicts; written is false when mutate changed
// nothing.
func (r *Reconciler) updateStatus(ctx context.Context, ign *orcav1.Ignitor, mutate func(*orcav1.IgnitorStatus) bool) (written bool, err error) {
	key := client.ObjectKeyFromObject(ign)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var cur orcav1.Ignitor
		if err := r.reader.Get(ctx, key, &cur); err != nil {
			return err
		}
		if cur.UID != ign.UID {
			return apierrors.NewNotFound(orcav1.GroupVersion.WithResource("ignitors").GroupResource(), key.Name)
		}
		if written = mutate(&cur.Status); !written {
			return nil
		}
		if err := r.client.Status().Update(ctx, &cur); err != nil {
			return err
		}
		r.written.Store(key, cur.ResourceVersion)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("update status of ignitor %s: %w", key, err)
	}
	return written, nil
}

func timeOrNil(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	return &metav1.Time{Time: t}
}
