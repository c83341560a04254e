package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
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

	// publish replaces the bus's PublishIgnition in tests.
	publish func(context.Context, bus.Ignition) error
}

// Reconciler fires the Ignitors that are due.
type Reconciler struct {
	client   client.Client // cached reads, status writes
	reader   client.Reader // uncached reads before a firing and a status write
	recorder recorder.EventRecorder
	publish  func(context.Context, bus.Ignition) error
	now      func() time.Time
	log      *slog.Logger
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
	r := &Reconciler{
		client:   mgr.GetClient(),
		reader:   mgr.GetAPIReader(),
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

// Reconcile fires the Ignitor if a scheduled time is due and requeues it for the
// next one.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var ign orcav1.Ignitor
	if err := r.client.Get(ctx, req.NamespacedName, &ign); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ign.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	sched, err := parseSchedule(ign.Spec, ign.CreationTimestamp.Time)
	if err != nil {
		return ctrl.Result{}, r.reportInvalid(ctx, &ign, err)
	}
	p := sched.plan(ign.CreationTimestamp.Time, lastFired(&ign), r.now())
	if !p.fire.IsZero() {
		// The cache may lag behind the last firing's status write: decide on what
		// the API server holds.
		if err := r.reader.Get(ctx, req.NamespacedName, &ign); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		if sched, err = parseSchedule(ign.Spec, ign.CreationTimestamp.Time); err != nil {
			return ctrl.Result{}, r.reportInvalid(ctx, &ign, err)
		}
		p = sched.plan(ign.CreationTimestamp.Time, lastFired(&ign), r.now())
	}
	if p.fire.IsZero() {
		if err := r.writeStatus(ctx, &ign, sched, p, ""); err != nil {
			return ctrl.Result{}, err
		}
		return r.requeue(p), nil
	}
	if err := r.fire(ctx, &ign, sched, p); err != nil {
		firesTotal.WithLabelValues(outcomeFailed).Inc()
		return ctrl.Result{}, err
	}
	return r.requeue(p), nil
}

// fire publishes the ignition for p.fire, then records it in the status.
func (r *Reconciler) fire(ctx context.Context, ign *orcav1.Ignitor, sched schedule, p plan) error {
	id := eventID(string(ign.UID), p.fire)
	err := r.publish(ctx, bus.Ignition{
		ID:        id,
		Source:    Source,
		Namespace: ign.Namespace,
		Name:      ign.Name,
		Data:      []byte(ign.Spec.Data),
		Time:      p.fire,
	})
	if err != nil {
		r.log.Warn("publish ignition failed", "namespace", ign.Namespace, "ignitor", ign.Name, "id", id, "err", err)
		return fmt.Errorf("fire ignitor %s/%s for %s: %w", ign.Namespace, ign.Name, p.fire.UTC().Format(time.RFC3339), err)
	}
	if err := r.writeStatus(ctx, ign, sched, p, id); err != nil {
		return err
	}
	firesTotal.WithLabelValues(outcomeFired).Inc()
	r.log.Info("ignition fired", "namespace", ign.Namespace, "ignitor", ign.Name, "id", id,
		"scheduled", p.fire, "skipped", p.skipped)
	r.recorder.Eventf(ign, nil, corev1.EventTypeNormal, "Fired", "Fire",
		"fired ignition %s for %s (event %s)", ign.Name, p.fire.UTC().Format(time.RFC3339), id)
	if p.skipped > 0 {
		firesTotal.WithLabelValues(outcomeSkipped).Add(float64(p.skipped))
		more := ""
		if p.skippedMore {
			more = "more than "
		}
		r.recorder.Eventf(ign, nil, corev1.EventTypeNormal, "Skipped", "Fire",
			"skipped %s%d earlier missed scheduled times: fired only the latest, %s",
			more, p.skipped, p.fire.UTC().Format(time.RFC3339))
	}
	return nil
}

// maxWait bounds a requeue: timers run on the monotonic clock, so a far time is
// checked again now and then against the wall clock (a suspended machine, a clock
// step). A check that finds nothing due costs no API call.
const maxWait = 10 * time.Minute

// requeue asks for a reconcile at the next scheduled time.
func (r *Reconciler) requeue(p plan) ctrl.Result {
	if p.next.IsZero() {
		return ctrl.Result{}
	}
	return ctrl.Result{RequeueAfter: min(max(p.next.Sub(r.now()), time.Millisecond), maxWait)}
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

func lastFired(ign *orcav1.Ignitor) *time.Time {
	if ign.Status.LastFired == nil {
		return nil
	}
	t := ign.Status.LastFired.Time
	return &t
}
