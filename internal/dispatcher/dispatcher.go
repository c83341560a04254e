package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/telemetry"
)

// +kubebuilder:rbac:groups=sirocco.cloud,resources=tasks,verbs=get;list;watch
// +kubebuilder:rbac:groups=sirocco.cloud,resources=tasks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=sirocco.cloud,resources=tasks/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=pods,verbs=create;get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// ConsumerName is the durable consumer that all dispatchers share.
const ConsumerName = "orca-dispatcher"

// Options configure the dispatcher.
type Options struct {
	// Namespaces limits the dispatcher to these namespaces; empty means all.
	Namespaces []string
	// Concurrency is the number of events handled at once; default 32.
	Concurrency int
	// CreateParallelism is the number of Pods one event creates at once; default 32.
	CreateParallelism int
	// Consumer overrides the bus consumer settings (tests); Name and Subjects are
	// set by the dispatcher.
	Consumer bus.ConsumerOptions
	// AfterCreate, when set, is called after each Pod the dispatcher created, before
	// the event is acknowledged; tests use it to stop a dispatcher at that point.
	AfterCreate func(pod *corev1.Pod)
	// MaxRunSteps is how many Pods a run may start before the dispatcher halts it,
	// unless a Task's spec.maxRunSteps says otherwise; default
	// orcav1.DefaultMaxRunSteps. See steps.go.
	MaxRunSteps int
	// SlotRepairAfter is how long a Pod holds a slot of a limited Task before
	// the dispatcher checks that it still runs; default DefaultSlotRepairAfter.
	SlotRepairAfter time.Duration
}

// Dispatcher creates the Pods of the Tasks that events trigger.
type Dispatcher struct {
	client   client.Client
	reader   client.Reader // uncached
	recorder recorder.EventRecorder
	bus      *bus.Bus
	opts     Options
	log      *slog.Logger
	failing  sync.Map // uids of Tasks whose failed create was reported
	inFlight *inFlight
	joins    *joins
}

// Setup adds the dispatcher to the manager: the Task indexes, and a runnable that
// consumes events once the cache has synced. It needs no leader: dispatchers share
// the durable consumer, and each event goes to one of them.
func Setup(ctx context.Context, mgr manager.Manager, b *bus.Bus, o Options) error {
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.CreateParallelism <= 0 {
		o.CreateParallelism = 32
	}
	if o.MaxRunSteps <= 0 {
		o.MaxRunSteps = orcav1.DefaultMaxRunSteps
	}
	if o.SlotRepairAfter <= 0 {
		o.SlotRepairAfter = DefaultSlotRepairAfter
	}
	if err := AddIndexes(ctx, mgr.GetFieldIndexer()); err != nil {
		return fmt.Errorf("index tasks: %w", err)
	}
	d := &Dispatcher{
		client:   mgr.GetClient(),
		reader:   mgr.GetAPIReader(),
		recorder: mgr.GetEventRecorder("orca-dispatcher"),
		bus:      b,
		opts:     o,
		log:      slog.Default().With("component", "dispatcher"),
		inFlight: newInFlight(),
	}
	if err := setupSlots(mgr, d); err != nil {
		return fmt.Errorf("task slots controller: %w", err)
	}
	if err := d.setupJoins(mgr, b, o); err != nil {
		return err
	}
	co := o.Consumer
	co.Name = bus.ScopedConsumerName(ConsumerName, o.Namespaces)
	co.Subjects = bus.ScopedSubjects(o.Namespaces, bus.SubjectIgnited, bus.SubjectTaskSucceeded, bus.SubjectTaskFailed, bus.SubjectTaskSkipped,
		bus.SubjectTaskRetrying)
	co.Concurrency = o.Concurrency
	co.Received = d.inFlight.enter
	return app.AddConsumer(mgr, &app.Consumer{Cache: mgr.GetCache(), Bus: b, Options: co, Handler: d.handle})
}

// handle starts the Tasks that one event triggers.
func (d *Dispatcher) handle(ctx context.Context, del *bus.Delivery) (err error) {
	var (
		ns, field, name string
		s               = start{EventSource: del.Event.Source(), EventID: del.Event.ID(), Run: del.Run(), Seq: del.Sequence,
			Trace: podTrace{RunParent: del.TraceParent, RunState: del.TraceState}}
	)
	switch {
	case del.Ignition != nil:
		ns, field, name = del.Ignition.Namespace, IndexStartOnIgnition, del.Ignition.Name
		s.Initiator, s.Data = name, string(del.Ignition.Data)
	case del.Task != nil:
		r := del.Task.Result
		ns, name = r.Namespace, r.Task
		field = IndexStartOnFailure
		if del.Task.Succeeded {
			field = IndexStartOnSuccess
		}
		s.Initiator, s.Data = r.Task, r.Message
		if gone, err := d.taskReplaced(ctx, r); gone || err != nil {
			return err
		}
		if err := d.release(ctx, r); err != nil {
			return err
		}
	case del.Skipped != nil:
		// A skip starts nothing through startOnSuccess or startOnFailure; only
		// the joins that name the Task see it.
		r := del.Skipped.Result
		if gone, err := d.taskReplaced(ctx, r); gone || err != nil {
			return err
		}
		return d.startJoins(ctx, del)
	case del.Retry != nil:
		return d.handleRetry(ctx, del.Retry, s.Trace)
	default:
		return bus.Permanent(fmt.Errorf("event %q is neither an ignition nor a task event", del.Event.ID()))
	}

	var tasks orcav1.TaskList
	if err := d.lookup(ctx, ns, field, name, del.Ignition != nil, &tasks); err != nil {
		return err
	}
	if del.Task != nil {
		// Joins that name the Task, alongside the Tasks it starts.
		joined := make(chan error, 1)
		go func() { joined <- d.startJoins(ctx, del) }()
		defer func() { err = errors.Join(err, <-joined) }()
	}
	if len(tasks.Items) == 0 {
		d.log.Debug("event starts no task", "namespace", ns, "name", name, "index", field)
		return nil
	}
	return d.startAll(ctx, tasks.Items, s)
}

// lookup lists the Tasks of ns whose index field holds name; for an ignition,
// when the cache has none, from the API server.
func (d *Dispatcher) lookup(ctx context.Context, ns, field, name string, ignition bool, out *orcav1.TaskList) (err error) {
	ctx, span := startSpan(ctx, "lookup tasks", trace.SpanKindInternal)
	defer func() {
		if span.IsRecording() {
			span.SetAttributes(attribute.String("orca.index", field), attribute.String("orca.name", name),
				attribute.Int("orca.tasks", len(out.Items)))
		}
		telemetry.End(span, err)
	}()
	// The cache's own objects, not copies (a fan-out lists many): they are only
	// read, and buildPod copies the template it changes.
	if err := d.client.List(ctx, out, client.InNamespace(ns), client.MatchingFields{field: name},
		client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("list tasks started by %s %s/%s: %w", field, ns, name, err)
	}
	if len(out.Items) == 0 && ignition {
		// An Ignitor applied together with its Tasks fires at once, maybe before
		// the Tasks reached the cache: ask the API server before giving up.
		return d.listUncached(ctx, ns, name, out)
	}
	return nil
}

// listUncached lists from the API server the Tasks of ns that start on the
// ignition name.
func (d *Dispatcher) listUncached(ctx context.Context, ns, name string, out *orcav1.TaskList) error {
	var all orcav1.TaskList
	if err := d.reader.List(ctx, &all, client.InNamespace(ns)); err != nil {
		return fmt.Errorf("list tasks of namespace %s: %w", ns, err)
	}
	for _, t := range all.Items {
		if slices.Contains(t.Spec.StartOnIgnition, orcav1.ObjectName(name)) {
			out.Items = append(out.Items, t)
		}
	}
	return nil
}

// startAll creates the Pods of tasks, a bounded number at once, as far as the
// loop guard admits them (steps.go). It fails when a create failed for a reason
// that a retry may fix; every Pod that was created is found again as
// AlreadyExists on the retry.
func (d *Dispatcher) startAll(ctx context.Context, tasks []orcav1.Task, s start) error {
	tasks, err := d.takeSteps(ctx, tasks, s)
	if err != nil || len(tasks) == 0 {
		return err
	}
	var notCreated atomic.Int64
	defer func() { d.giveBackSteps(ctx, tasks[0].Namespace, s.Run, notCreated.Load()) }()
	if len(tasks) == 1 {
		out, err := d.startTask(ctx, &tasks[0], s)
		if !out.step() {
			notCreated.Add(1)
		}
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, d.opts.CreateParallelism)
	)
	for i := range tasks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out, err := d.startTask(ctx, &tasks[i], s)
			if !out.step() {
				notCreated.Add(1)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return joinStarts(errs)
}

// startTask starts task for s: at once, or through admission when the Task
// limits its runs.
func (d *Dispatcher) startTask(ctx context.Context, task *orcav1.Task, s start) (podOutcome, error) {
	if task.Spec.Limited() {
		return d.admit(ctx, task, s)
	}
	return d.createPod(ctx, task, s)
}

// createPod creates the Pod of s, unless it exists or existed: a Pod that Orca
// deleted after its run (see bus.RemovedPods) is not made again.
func (d *Dispatcher) createPod(ctx context.Context, task *orcav1.Task, s start) (out podOutcome, err error) {
	ctx, span := startSpan(ctx, "create pod", trace.SpanKindClient)
	defer func() { telemetry.End(span, err) }()
	s.Trace = s.Trace.forCreate(ctx)
	pod := buildPod(task, s)
	if span.IsRecording() {
		span.SetAttributes(podAttributes(pod, task)...)
	}
	// The watcher may record the Pod as removed right after this check: it waits
	// bus.RemovedPodsWindow before it deletes it, and the create comes within
	// that window, or not at all (the trigger comes back and checks again).
	checked, cancel := context.WithTimeout(ctx, bus.RemovedPodsWindow)
	defer cancel()
	if removed, err := d.bus.RemovedPods().Done(checked, string(task.UID), pod.Name); err != nil || removed {
		if removed {
			span.SetAttributes(attribute.Bool("orca.duplicate", true))
			d.dropDuplicate(task, pod.Name, s)
		}
		return podRemoved, err
	}
	err = d.client.Create(checked, pod)
	switch {
	case err == nil:
		metrics.podsCreated.Inc()
		d.log.Info("pod created", "namespace", pod.Namespace, "pod", pod.Name, "task", task.Name,
			"initiator", s.Initiator, "run", s.Run, "attempt", pod.Annotations[orcav1.AnnotationAttempt])
		if d.opts.AfterCreate != nil {
			d.opts.AfterCreate(pod)
		}
		return podCreated, d.clearFailure(ctx, task, pod.Name)
	case apierrors.IsAlreadyExists(err):
		span.SetAttributes(attribute.Bool("orca.duplicate", true))
		d.dropDuplicate(task, pod.Name, s)
		return podExists, nil
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		metrics.podsRejected.Inc()
		return podRefused, d.reportInvalid(ctx, task, pod.Name, err)
	default:
		metrics.podCreateErrors.Inc()
		if ctx.Err() == nil {
			d.reportRetrying(ctx, task, pod.Name, err)
		}
		return podRefused, fmt.Errorf("create pod %q for task %s/%s: %w", pod.Name, task.Namespace, task.Name, err)
	}
}
