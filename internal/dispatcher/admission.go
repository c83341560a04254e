package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sirocco-cloud/orca/internal/admission"
	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// podOutcome is what createPod did.
type podOutcome int

const (
	podCreated podOutcome = iota
	// podExists: the Pod existed already (the same start, delivered again).
	podExists
	// podRemoved: Orca deleted the Pod after its run; it is not made again.
	podRemoved
	// podRefused: the API server refused the Pod (invalid), or the create
	// failed (with an error).
	podRefused
	// podQueued: the start waits for a slot of its limited Task; its Pod is
	// created when one is free.
	podQueued
	// podForbidden: concurrencyPolicy Forbid skipped the start.
	podForbidden
)

// step says whether the outcome takes a step of its run (see steps.go): a Pod
// created, or one that will be.
func (o podOutcome) step() bool { return o == podCreated || o == podQueued }

// RecordsAdmission holds, per limited Task object, its admission state
// ("slots.<task uid>") and the starts that wait ("start.<task uid>.<pod>").
const RecordsAdmission = "admission"

// queueFullRetry is when a start that found its Task's queue full comes back.
const queueFullRetry = 5 * time.Second

func slotsKey(uid types.UID) string             { return "slots." + string(uid) }
func startKey(uid types.UID, pod string) string { return "start." + string(uid) + "." + pod }

// admit starts s for a Task whose runs are limited: its Pod is created when it
// gets a slot, else the start waits for one (stored in the bus), is forbidden, or
// takes the slot of the oldest running Pod, by the Task's concurrencyPolicy.
func (d *Dispatcher) admit(ctx context.Context, task *orcav1.Task, s start) (podOutcome, error) {
	pod := AttemptPodName(task.Name, s.EventSource, s.EventID, s.Attempt)
	if out, ran, err := d.ranBefore(ctx, task, pod, s); ran || err != nil {
		return out, err
	}
	limits := admission.LimitsOf(&task.Spec)
	if limits.Policy == orcav1.ConcurrencyForbid {
		// A forbidden start stays forbidden when its trigger comes back.
		done, err := d.bus.Ledger(LedgerForbidden).Done(ctx, string(task.UID), pod)
		if err != nil {
			return podRefused, err
		}
		if done {
			return podForbidden, d.reportForbidden(ctx, task, s, pod, admission.Decision{}, false)
		}
	}
	d.inFlight.waitEarlier(ctx, s.Seq)
	// A retried attempt takes its run's slot from the attempt before it.
	previous := ""
	if s.Attempt > 1 {
		previous = AttemptPodName(task.Name, s.EventSource, s.EventID, s.Attempt-1)
	}
	var dec admission.Decision
	stored := false
	for {
		err := d.changeSlots(ctx, task, func(st *admission.State) error {
			now := time.Now()
			if previous != "" {
				st.Handover(previous, pod, now)
			}
			var err error
			dec, err = st.Admit(pod, s.Seq, limits, now, stored)
			return err
		})
		if errors.Is(err, admission.ErrStartNotStored) && !stored {
			if err := d.storeStart(ctx, task.UID, pod, s); err != nil {
				return podRefused, err
			}
			stored = true
			continue
		}
		if err != nil {
			return podRefused, err
		}
		break
	}
	if stored && dec.Outcome != admission.Wait {
		// Stored for nothing: the state changed between the two tries.
		_ = d.records().Delete(ctx, startKey(task.UID, pod))
	}
	log := d.log.With("namespace", task.Namespace, "task", task.Name, "pod", pod, "run", s.Run)
	switch dec.Outcome {
	case admission.Wait:
		if dec.Fresh {
			metrics.limited.WithLabelValues("queued").Inc()
			log.Info("start waits for a free slot", "parallelism", limits.Slots)
		}
		return podQueued, nil
	case admission.Full:
		metrics.limited.WithLabelValues("deferred").Inc()
		log.Info("start waits in the stream: the task's queue is full", "waiting", admission.MaxWaiting)
		return podRefused, bus.Later(queueFullRetry)
	case admission.Forbid:
		if err := d.bus.Ledger(LedgerForbidden).Record(ctx, string(task.UID), pod); err != nil {
			return podRefused, err
		}
		return podForbidden, d.reportForbidden(ctx, task, s, pod, dec, true)
	}
	s.Replaces = dec.Replaces
	out, err := d.createPod(ctx, task, s)
	if err != nil {
		return out, err // it keeps its slot: the trigger comes back and creates it
	}
	switch {
	case out == podCreated:
		metrics.limited.WithLabelValues("started").Inc()
		if len(dec.Replaces) > 0 {
			metrics.limited.WithLabelValues("replaced").Add(float64(len(dec.Replaces)))
			d.recorder.Eventf(task, nil, corev1.EventTypeNormal, ReasonReplacing, "StartPod",
				"pod %s replaces %v (concurrencyPolicy Replace, parallelism %d)", pod, dec.Replaces, limits.Slots)
			log.Info("pod replaces the oldest running pods", "replaced", dec.Replaces)
		}
	case out == podExists && !dec.Fresh:
		// The trigger came back: its Pod holds the slot.
	default:
		// No Pod holds the slot it took: this start ran before, or never can.
		return out, d.changeSlots(ctx, task, func(st *admission.State) error {
			st.Release(pod)
			return nil
		})
	}
	return out, nil
}

// release frees the slot that the ended Pod of a task event held, and starts the
// Task's oldest waiting start, if any.
func (d *Dispatcher) release(ctx context.Context, r bus.TaskResult) error {
	var task orcav1.Task
	if err := d.client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.Task}, &task); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !task.Spec.Limited() || r.TaskUID != "" && r.TaskUID != string(task.UID) {
		return nil
	}
	return d.changeSlots(ctx, &task, func(st *admission.State) error {
		st.Release(r.Pod)
		return nil
	})
}

// changeSlots applies fn to the Task's admission state, promotes the waiting
// starts that fit, and then creates the Pods of the promoted starts.
func (d *Dispatcher) changeSlots(ctx context.Context, task *orcav1.Task, fn func(*admission.State) error) error {
	st, err := d.updateSlots(ctx, task, fn)
	for err == nil && len(st.Queued()) > 0 {
		st, err = d.startQueued(ctx, task, st.Queued())
	}
	return err
}

// updateSlots changes the Task's admission state with fn, then promotes the
// waiting starts that fit, with compare-and-set; it returns the state as
// written, and deletes an empty one.
func (d *Dispatcher) updateSlots(ctx context.Context, task *orcav1.Task, fn func(*admission.State) error) (admission.State, error) {
	limits := admission.LimitsOf(&task.Spec)
	var st admission.State
	err := d.records().Update(ctx, slotsKey(task.UID), func(cur []byte) ([]byte, error) {
		st = admission.State{}
		if cur != nil {
			if err := json.Unmarshal(cur, &st); err != nil {
				// Not Orca's: start over rather than block the Task for good.
				d.log.Error("admission state unreadable, starting it again", "namespace", task.Namespace, "task", task.Name, "err", err)
				st = admission.State{}
			}
		}
		st.Task = task.Namespace + "/" + task.Name
		if fn != nil {
			if err := fn(&st); err != nil {
				return nil, err
			}
		}
		st.Promote(limits, time.Now())
		if st.Empty() {
			return nil, nil
		}
		return json.Marshal(st)
	})
	return st, err
}

// startQueued creates the Pods of holders promoted from the queue, from their
// stored starts, then marks them created (or frees their slots when no Pod can
// hold them) and deletes the stored starts. Another dispatcher may do the same
// at once: a create that meets the Pod is no error.
func (d *Dispatcher) startQueued(ctx context.Context, task *orcav1.Task, queued []admission.Holder) (admission.State, error) {
	outcomes := make(map[string]podOutcome, len(queued))
	for _, h := range queued {
		raw, err := d.records().Get(ctx, startKey(task.UID, h.Pod))
		if err != nil {
			return admission.State{}, err
		}
		var s start
		if raw == nil || json.Unmarshal(raw, &s) != nil {
			// Another dispatcher created the Pod, marked it and deleted its start
			// since this one read the slots; or the start is gone (kept as long
			// as the stream keeps events).
			out, err := d.promotedElsewhere(ctx, task, h.Pod)
			if err != nil {
				return admission.State{}, err
			}
			outcomes[h.Pod] = out
			continue
		}
		s.Replaces = h.Replaces
		out, err := d.createPod(ctx, task, s)
		if err != nil {
			return admission.State{}, err
		}
		outcomes[h.Pod] = out
		if out == podCreated {
			metrics.limited.WithLabelValues("started").Inc()
		}
	}
	st, err := d.updateSlots(ctx, task, func(st *admission.State) error {
		for pod, out := range outcomes {
			if out == podCreated || out == podExists {
				st.Created(pod)
			} else if h := st.Holding(pod); h == nil || h.Queued {
				st.Release(pod) // not a holder another dispatcher marked created
			}
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	for pod := range outcomes {
		if err := d.records().Delete(ctx, startKey(task.UID, pod)); err != nil {
			return st, err
		}
	}
	return st, nil
}

// storeStart stores a start that is about to wait, for whoever promotes it.
func (d *Dispatcher) storeStart(ctx context.Context, uid types.UID, pod string, s start) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode start of pod %s: %w", pod, err)
	}
	return d.records().Put(ctx, startKey(uid, pod), raw)
}

func (d *Dispatcher) records() *bus.Records { return d.bus.Records(RecordsAdmission) }

// joinStarts joins the errors of a fan-out's starts. A start that waits in the
// stream (bus.Later) brings the event back; a failure among the others is what
// the event is retried (and in the end dead-lettered) for.
func joinStarts(errs []error) error {
	var failures, later []error
	for _, err := range errs {
		if bus.IsLater(err) {
			later = append(later, err)
		} else {
			failures = append(failures, err)
		}
	}
	if len(failures) > 0 {
		return errors.Join(failures...)
	}
	if len(later) > 0 {
		return later[0]
	}
	return nil
}
