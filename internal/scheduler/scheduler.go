package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/scheduler/schedule"
)

// +kubebuilder:rbac:groups=sirocco.cloud,resources=ignitors,verbs=get;list;watch
// +kubebuilder:rbac:groups=sirocco.cloud,resources=ignitors/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Source is the CloudEvent source of the scheduler's ignitions.
const Source = "orca/scheduler"

// Options configure the scheduler.
type Options struct {
	// Now is the clock; default time.Now. Tests set a fake one.
	Now func() time.Time
	// MaxConcurrentReconciles is the number of Ignitors handled at once; default 4.
	MaxConcurrentReconciles int

	// publish replaces the bus's PublishIgnition in tests, reader the
	// manager's uncached reader.
	publish func(context.Context, bus.Ignition) error
	reader  client.Reader
}

// Reconciler fires the Ignitors that are due.
type Reconciler struct {
	client   client.Client // cached reads, status writes
	reader   client.Reader // uncached reads before a firing and a status write
	recorder recorder.EventRecorder
	publish  func(context.Context, bus.Ignition) error
	now      func() time.Time
	log      *slog.Logger
	// written holds, by Ignitor (namespace and name), the resourceVersion of this scheduler's
	// last status write: a cached Ignitor at that version is known to be up to
	// date, and a firing needs no read from the API server first.
	written sync.Map
}

// Setup adds the scheduler's controller to the manager. Like every controller it
// runs only in the elected leader when the manager elects one.
func Setup(_ context.Context, mgr manager.Manager, b *bus.Bus, o Options) error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = 4
	}
	if o.publish == nil {
		o.publish = b.PublishIgnition
	}
	if o.reader == nil {
		o.reader = mgr.GetAPIReader()
	}
	r := &Reconciler{
		client:   mgr.GetClient(),
		reader:   o.reader,
		recorder: mgr.GetEventRecorder("orca-scheduler"),
		publish:  o.publish,
		now:      o.Now,
		log:      slog.Default().With("component", "scheduler"),
	}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("scheduler").
		// Status writes (the scheduler's own) need no reconcile: the next time
		// comes back through RequeueAfter.
		For(&orcav1.Ignitor{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: o.MaxConcurrentReconciles}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("build scheduler controller: %w", err)
	}
	return nil
}

// Reconcile fires or skips the scheduled times that are due and requeues the
// Ignitor for the next one.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var ign orcav1.Ignitor
	if err := r.client.Get(ctx, req.NamespacedName, &ign); err != nil {
		if apierrors.IsNotFound(err) {
			r.written.Delete(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	sched, p, done, err := r.decide(ctx, &ign)
	if done || err != nil {
		return ctrl.Result{}, err
	}
	if p.Due() && !r.upToDate(&ign) {
		// The cache may lag behind the last firing's status write: decide on what
		// the API server holds.
		if err := r.reader.Get(ctx, req.NamespacedName, &ign); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		if sched, p, done, err = r.decide(ctx, &ign); done || err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.carryOut(ctx, &ign, sched, p); err != nil {
		firesTotal.WithLabelValues(outcomeFailed).Inc()
		return ctrl.Result{}, err
	}
	return r.requeue(p), nil
}

// upToDate says whether the cached ign is the one this scheduler's last status
// write made: then it holds every firing recorded so far, and the next one fires
// without a read from the API server first. (A stale answer costs nothing
// worse than the read would: a time fired again has the same event id, which
// the stream's duplicate window drops.)
func (r *Reconciler) upToDate(ign *orcav1.Ignitor) bool {
	rv, ok := r.written.Load(client.ObjectKeyFromObject(ign))
	return ok && rv == ign.ResourceVersion
}

// decide parses the Ignitor's schedules and plans at the clock's now. done says
// that nothing more is to be done now: the Ignitor is being deleted, its
// schedule is unusable or it is suspended (each recorded).
func (r *Reconciler) decide(ctx context.Context, ign *orcav1.Ignitor) (*schedule.Schedule, schedule.Plan, bool, error) {
	if !ign.DeletionTimestamp.IsZero() {
		return nil, schedule.Plan{}, true, nil
	}
	sched, err := schedule.Parse(ign.Spec, ign.CreationTimestamp.Time)
	if err != nil {
		return nil, schedule.Plan{}, true, r.reportInvalid(ctx, ign, err)
	}
	if ign.Spec.Suspend {
		return nil, schedule.Plan{}, true, r.suspend(ctx, ign, sched)
	}
	return sched, sched.Plan(mark(ign), r.now(), schedule.PolicyOf(ign.Spec)), false, nil
}

// carryOut publishes the ignitions p fires, oldest first, then records them and
// the skipped times in the status. When a publish fails, what was published
// before it is recorded and the error returned: the retry plans again.
func (r *Reconciler) carryOut(ctx context.Context, ign *orcav1.Ignitor, sched *schedule.Schedule, p schedule.Plan) error {
	now := r.now()
	rec := record{skip: p.Skip, next: p.Next, at: now}
	var pubErr error
	for i, t := range p.Fire {
		id := eventID(string(ign.UID), t)
		err := r.publish(ctx, bus.Ignition{
			ID:        id,
			Source:    Source,
			Namespace: ign.Namespace,
			Name:      ign.Name,
			Data:      []byte(ign.Spec.Data),
			Time:      t,
		})
		if err != nil {
			r.log.Warn("publish ignition failed", "namespace", ign.Namespace, "ignitor", ign.Name, "id", id, "err", err)
			pubErr = fmt.Errorf("fire ignitor %s/%s for %s: %w", ign.Namespace, ign.Name, t.UTC().Format(time.RFC3339), err)
			rec.next = p.Fire[i]
			break
		}
		rec.fired = append(rec.fired, orcav1.IgnitorFiring{ID: id, ScheduledTime: metav1.NewTime(t), FiredAt: metav1.NewTime(now)})
	}
	if err := r.writeStatus(ctx, ign, sched, &rec); err != nil {
		return err
	}
	r.report(ign, schedule.PolicyOf(ign.Spec), rec)
	return pubErr
}

// report logs, counts and publishes as Events what a status write recorded.
func (r *Reconciler) report(ign *orcav1.Ignitor, pol schedule.Policy, rec record) {
	if rec.resumed {
		r.log.Info("ignitor resumed", "namespace", ign.Namespace, "ignitor", ign.Name)
		r.recorder.Eventf(ign, nil, corev1.EventTypeNormal, ReasonResumed, "Resume",
			"resumed: times missed while suspended follow catchUp %s", pol.CatchUp)
	}
	if n := len(rec.fired); n > 0 {
		firesTotal.WithLabelValues(outcomeFired).Add(float64(n))
		first, last := rec.fired[0], rec.fired[n-1]
		r.log.Info("ignition fired", "namespace", ign.Namespace, "ignitor", ign.Name, "id", last.ID,
			"scheduled", last.ScheduledTime.Time, "times", n)
		if n == 1 {
			r.recorder.Eventf(ign, nil, corev1.EventTypeNormal, ReasonFired, "Fire",
				"fired ignition %s for %s (event %s)", ign.Name, rfc3339(last.ScheduledTime.Time), last.ID)
		} else {
			r.recorder.Eventf(ign, nil, corev1.EventTypeNormal, ReasonFired, "Fire",
				"fired ignition %s for %d missed scheduled times from %s to %s (events %s to %s)",
				ign.Name, n, rfc3339(first.ScheduledTime.Time), rfc3339(last.ScheduledTime.Time), first.ID, last.ID)
		}
	}
	sk := rec.skip
	if sk == nil {
		return
	}
	r.log.Info("scheduled times skipped", "namespace", ign.Namespace, "ignitor", ign.Name,
		"missed", sk.Missed.N, "expired", sk.Expired.N, "first", sk.First, "last", sk.Last)
	if sk.Missed.N > 0 {
		firesTotal.WithLabelValues(outcomeSkipped).Add(float64(sk.Missed.N))
		r.recorder.Eventf(ign, nil, corev1.EventTypeWarning, ReasonSkipped, "Skip",
			"skipped %s missed scheduled times up to %s: %s", sk.Missed, rfc3339(sk.Last), catchUpRule(pol))
	}
	if sk.Expired.N > 0 {
		firesTotal.WithLabelValues(outcomeExpired).Add(float64(sk.Expired.N))
		r.recorder.Eventf(ign, nil, corev1.EventTypeWarning, ReasonMissedDeadline, "Skip",
			"skipped %s scheduled times up to %s that could not fire within startingDeadlineSeconds %d",
			sk.Expired, rfc3339(sk.Last), int64(pol.StartingDeadline/time.Second))
	}
}

// catchUpRule says why missed times were skipped.
func catchUpRule(pol schedule.Policy) string {
	switch pol.CatchUp {
	case orcav1.CatchUpNone:
		return "catchUp None fires no missed time"
	case orcav1.CatchUpAll:
		return fmt.Sprintf("catchUp All fires at most the latest %d (maxCatchUpRuns)", pol.MaxCatchUpRuns)
	default:
		return "catchUp Latest fires only the latest missed time"
	}
}

// maxWait bounds a requeue: timers run on the monotonic clock, so a far time is
// checked again now and then against the wall clock (a suspended machine, a clock
// step). A check that finds nothing due costs no API call.
const maxWait = 10 * time.Minute

// requeue asks for a reconcile at the next scheduled time.
func (r *Reconciler) requeue(p schedule.Plan) ctrl.Result {
	if p.Next.IsZero() {
		return ctrl.Result{}
	}
	return ctrl.Result{RequeueAfter: min(max(p.Next.Sub(r.now()), time.Millisecond), maxWait)}
}

// reportInvalid makes an unusable schedule visible; it is not retried: a spec
// change triggers a new reconcile.
func (r *Reconciler) reportInvalid(ctx context.Context, ign *orcav1.Ignitor, cause error) error {
	changed, err := r.setInvalid(ctx, ign, cause.Error())
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if changed {
		firesTotal.WithLabelValues(outcomeInvalid).Inc()
		r.log.Warn("schedule invalid", "namespace", ign.Namespace, "ignitor", ign.Name, "err", cause)
		r.recorder.Eventf(ign, nil, corev1.EventTypeWarning, ReasonInvalidSchedule, "Schedule", "%s", cause.Error())
	}
	return nil
}

// suspend records that the Ignitor is suspended; nothing is requeued: resuming
// changes the spec, which triggers a reconcile.
func (r *Reconciler) suspend(ctx context.Context, ign *orcav1.Ignitor, sched *schedule.Schedule) error {
	changed, err := r.setSuspended(ctx, ign, sched)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if changed {
		r.log.Info("ignitor suspended", "namespace", ign.Namespace, "ignitor", ign.Name)
		r.recorder.Eventf(ign, nil, corev1.EventTypeNormal, ReasonSuspended, "Suspend",
			"suspended: nothing fires until spec.suspend is false; missed times then follow catchUp %s", schedule.PolicyOf(ign.Spec).CatchUp)
	}
	return nil
}

// mark is the last scheduled time fired or skipped: later times only may fire.
func mark(ign *orcav1.Ignitor) time.Time {
	var m time.Time
	if ign.Status.LastFired != nil {
		m = ign.Status.LastFired.Time
	}
	if s := ign.Status.LastSkip; s != nil && s.Last.After(m) {
		m = s.Last.Time
	}
	return m
}

// eventID is the id of the firing of the Ignitor uid for the scheduled time t.
func eventID(uid string, t time.Time) string { return fmt.Sprintf("%s-%d", uid, t.Unix()) }

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
