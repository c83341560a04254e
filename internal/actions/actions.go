package actions

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/telemetry"
)

// +kubebuilder:rbac:groups=sirocco.cloud,resources=tasks,verbs=get;list;watch
// +kubebuilder:rbac:groups=sirocco.cloud,resources=actions,verbs=get;list;watch
// +kubebuilder:rbac:groups=sirocco.cloud,resources=actions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// ConsumerName is the durable consumer that all actions services of the whole
// cluster share; a service limited to namespaces gets ConsumerName plus a hash of
// them, shared with the replicas of the same scope.
const ConsumerName = "orca-actions"

// RecorderName reports the Events of the actions service.
const RecorderName = "orca-actions"

// DefaultConcurrency is the number of task events a replica of the service
// handles at once: with all of them pulling, eight replicas fit in the pull
// requests the NATS server keeps waiting for a consumer (bus.DefaultMaxWaiting).
const DefaultConcurrency = 64

// Options configure the actions service.
type Options struct {
	// Namespaces limits the service to these namespaces; empty means all.
	Namespaces []string
	// Concurrency is the number of task events the service handles at once, all
	// namespaces together; default DefaultConcurrency. The Actions of one event
	// run concurrently.
	Concurrency int
	// NamespaceConcurrency is the number of events of one namespace whose Actions
	// run at once; default 4. A further event of that namespace is handed back to
	// the stream and comes again a second or two later, so that it never takes
	// the place of another namespace's events.
	NamespaceConcurrency int
	// Egress says which addresses webhooks may connect to.
	Egress EgressOptions
	// NATSSubjects are the subjects nats Actions may publish to: NATS subject
	// patterns (* and >) in which {namespace} stands for the Action's namespace.
	// Empty means any subject but Orca's own.
	NATSSubjects []string
	// RetryBackoff is the first wait between webhook attempts; it doubles after
	// each one, up to 30s. Default 500ms.
	RetryBackoff time.Duration
	// Consumer overrides the bus consumer settings (tests); Name, Subjects and
	// Concurrency are set by the service.
	Consumer bus.ConsumerOptions
	// Logger is the service's logger, also the log plugin's; default slog.Default().
	Logger *slog.Logger
}

// service runs the Actions of task events.
type service struct {
	cache    client.Reader // Tasks and Actions, through the manager's cache
	api      client.Reader // uncached: what the cache does not know yet
	client   client.Client
	recorder recorder.EventRecorder
	plugins  *registry
	lanes    *lanes
	ledger   *bus.Ledger
	opts     Options
	log      *slog.Logger
}

// Setup adds the actions service to the manager: a runnable that consumes task
// events once the cache has synced. It needs no leader election.
func Setup(ctx context.Context, mgr manager.Manager, b *bus.Bus, o Options) error {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.NamespaceConcurrency <= 0 {
		o.NamespaceConcurrency = 4
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// Make the informers known now, so that the runnable waits for their sync.
	for _, obj := range []client.Object{&orcav1.Task{}, &orcav1.Action{}} {
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return fmt.Errorf("informer for %T: %w", obj, err)
		}
	}
	log := o.Logger.With("component", "actions")
	// Orca's own services are no place for a webhook: the NATS servers and the
	// API server join the denied addresses.
	o.Egress.OwnHosts = append(append(o.Egress.OwnHosts, b.ServerURLs()...), mgr.GetConfig().Host)
	s := &service{
		cache:    mgr.GetClient(),
		api:      mgr.GetAPIReader(),
		client:   mgr.GetClient(),
		recorder: mgr.GetEventRecorder(RecorderName),
		lanes:    newLanes(o.NamespaceConcurrency),
		ledger:   b.Ledger(LedgerName),
		opts:     o,
		log:      log,
		plugins: newRegistry(Deps{
			Reader: mgr.GetAPIReader(), Bus: b, HTTPClient: newWebhookClient(newEgressPolicy(o.Egress)),
			RetryBackoff: o.RetryBackoff, NATSSubjects: o.NATSSubjects, Log: o.Logger,
		}),
	}
	co := o.Consumer
	co.Name = bus.ScopedConsumerName(ConsumerName, o.Namespaces)
	co.Subjects = bus.ScopedSubjects(o.Namespaces, bus.SubjectTaskSucceeded, bus.SubjectTaskFailed)
	co.Concurrency = o.Concurrency
	return app.AddConsumer(mgr, &app.Consumer{Cache: mgr.GetCache(), Bus: b, Options: co, Handler: s.handle})
}

// handle runs the Actions of one task event, in its namespace's turn: when the
// namespace has used its share, the event comes again later (bus.Later). It
// fails only when the Task cannot be read or the service shuts down before the
// Actions ran.
func (s *service) handle(ctx context.Context, d *bus.Delivery) error {
	if d.Task == nil {
		return bus.Permanent(fmt.Errorf("event %q of type %s is not a task event", d.Event.ID(), d.Event.Type()))
	}
	res := d.Task.Result
	leave, ok := s.lanes.enter(res.Namespace)
	if !ok {
		return bus.Later(busyWait())
	}
	defer leave()
	key := types.NamespacedName{Namespace: res.Namespace, Name: res.Task}
	var task orcav1.Task
	if err := s.get(ctx, key, &task); err != nil {
		if apierrors.IsNotFound(err) {
			s.log.Info("task of event not found, no action to run", "namespace", key.Namespace,
				"task", key.Name, "id", d.Event.ID(), "type", d.Event.Type())
			return nil
		}
		return fmt.Errorf("get task %s: %w", key, err)
	}
	if uid := res.TaskUID; uid != "" && uid != string(task.UID) {
		s.log.Info("event of a deleted task, no action to run", "namespace", key.Namespace,
			"task", key.Name, "taskUID", uid, "id", d.Event.ID(), "type", d.Event.Type())
		return nil
	}
	names := task.Spec.FailureActions
	if d.Task.Succeeded {
		names = task.Spec.SuccessActions
	}
	names, err := s.notRunYet(ctx, &task, names, d)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() { s.runAction(ctx, &task, string(name), d) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		// Shutting down: some Actions may not have run. Another replica gets the
		// event again, and runs them all.
		return fmt.Errorf("actions of task %s interrupted: %w", key, err)
	}
	return nil
}

// get reads through the cache and, on NotFound, from the API server: an object
// created just before its event may not have reached the cache yet.
func (s *service) get(ctx context.Context, key types.NamespacedName, obj client.Object) error {
	err := s.cache.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) {
		err = s.api.Get(ctx, key, obj)
	}
	return err
}

// runAction runs one Action and records its outcome; it never fails the event.
func (s *service) runAction(ctx context.Context, task *orcav1.Task, name string, d *bus.Delivery) {
	start := time.Now()
	ctx, span := startRun(ctx, task, name)
	var err error
	defer func() { telemetry.End(span, err) }()
	var action orcav1.Action
	if err := s.get(ctx, types.NamespacedName{Namespace: task.Namespace, Name: name}, &action); err != nil {
		if ctx.Err() != nil {
			return
		}
		if apierrors.IsNotFound(err) {
			s.missing(task, name, d)
			s.recordRun(ctx, task, name, d) // reported once per event
			return
		}
		action.Name, action.Namespace = name, task.Namespace
		s.finish(ctx, task, &action, "unknown", d, fmt.Errorf("read action: %w", err), start)
		return
	}
	plugin, p, err := s.plugins.lookup(&action.Spec)
	if err == nil {
		span.SetAttributes(attribute.String("orca.action.plugin", plugin))
		err = p.Run(ctx, Run{Action: &action, Task: task, Delivery: d})
	}
	if ctx.Err() != nil {
		// Shutting down: the event comes back, nothing to record.
		s.log.Info("action interrupted", "namespace", task.Namespace, "action", name, "task", task.Name, "id", d.Event.ID())
		return
	}
	if plugin == "" {
		plugin = "unknown"
	}
	// Recorded as soon as the plugin returned, before the reports (the Action's
	// status write may take seconds when many runs of one Action conflict): a
	// crash between the run and the record is what makes an Action run again.
	s.recordRun(ctx, task, name, d)
	s.finish(ctx, task, &action, plugin, d, err, start)
}
