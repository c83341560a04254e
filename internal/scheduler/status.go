package scheduler

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// The ScheduleValid condition.
const (
	ConditionScheduleValid = "ScheduleValid"
	ReasonScheduled        = "Scheduled"
	ReasonInvalidSchedule  = "InvalidSchedule"
)

// writeStatus records a firing (id set) or only the next time and the valid
// schedule (id empty). The generation is the one of the spec that p comes from.
func (r *Reconciler) writeStatus(ctx context.Context, ign *orcav1.Ignitor, sched schedule, p plan, id string) error {
	gen := ign.Generation
	mutate := func(st *orcav1.IgnitorStatus) bool {
		changed := false
		if id != "" {
			fired := recordedTime(p.fire)
			if st.LastFired == nil || fired.After(st.LastFired.Time) {
				st.LastFired = &metav1.Time{Time: fired}
				changed = true
			}
			if st.LastEventID != id {
				st.LastEventID, changed = id, true
			}
		}
		if next := timeOrNil(p.next); !next.Equal(st.NextFire) {
			st.NextFire, changed = next, true
		}
		return setStatusCommon(st, gen, metav1.Condition{
			Type: ConditionScheduleValid, Status: metav1.ConditionTrue,
			Reason: ReasonScheduled, Message: "the schedule " + sched.desc,
		}) || changed
	}
	if id == "" && !mutate(ign.Status.DeepCopy()) {
		return nil // nothing to write: no API call
	}
	_, err := r.updateStatus(ctx, ign, mutate)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
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
		return r.client.Status().Update(ctx, &cur)
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
	return &metav1.Time{Time: recordedTime(t)}
}
