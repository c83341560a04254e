package watcher

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;patch;update;delete
// +kubebuilder:rbac:groups=sirocco.cloud,resources=tasks,verbs=get;list;watch
// +kubebuilder:rbac:groups=sirocco.cloud,resources=tasks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// indexTask maps an Orca Pod that keeps the completion finalizer to the name of
// the Task that started it: the Pods that the Task's status is made of. A Pod
// let go leaves the index, so a Task with many runs behind it costs no more to
// look at than one with none.
const indexTask = "orca.task"

func taskIndex(obj client.Object) []string {
	pod := obj.(*corev1.Pod)
	if pod.Labels[orcav1.LabelTask] == "" || !controllerutil.ContainsFinalizer(pod, orcav1.FinalizerCompletion) {
		return nil
	}
	return []string{taskKey(pod).Name}
}

// Defaults of Options.
const (
	// DefaultStatusInterval is how often at most a Task's status is written.
	DefaultStatusInterval = 250 * time.Millisecond
	// DefaultStatusWritesPerSecond is the budget of Task status writes.
	DefaultStatusWritesPerSecond = 50
)

// Options configure the watcher.
type Options struct {
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// MaxConcurrentReconciles of the pod completion controller, which publishes;
	// default 16.
	MaxConcurrentReconciles int
	// StatusInterval is the least time between two looks at one Task's Pods, and
	// so between two writes of its status; default DefaultStatusInterval.
	StatusInterval time.Duration
	// StatusConcurrency is the number of Tasks looked at at once; default 4.
	StatusConcurrency int
	// StatusWritesPerSecond is how many Task status writes the watcher makes a
	// second at most, all Tasks together, with bursts of a fifth of it: a Task
	// status write costs the API server about twice a Pod create, and the budget
	// keeps a burst of them (a fan-out that starts 500 Tasks) from slowing the
	// creates. Changes that wait for the budget are coalesced. Default
	// DefaultStatusWritesPerSecond; negative means no limit.
	StatusWritesPerSecond float64
	// RemovalGrace is how long after recording a Pod in the bus's RemovedPods
	// the watcher deletes it (history limits, TTL); default DefaultRemovalGrace.
	// Shorter is for tests: see bus.RemovedPodsWindow.
	RemovalGrace time.Duration
}

// Setup adds the watcher's two controllers to the manager: the one that
// publishes the end of each Pod, and the one that keeps each Task's status a
// view of its Pods, counts their runs and lets them go.
func Setup(ctx context.Context, mgr manager.Manager, b *bus.Bus, o Options) error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = 16
	}
	if o.StatusInterval <= 0 {
		o.StatusInterval = DefaultStatusInterval
	}
	if o.StatusConcurrency <= 0 {
		o.StatusConcurrency = 4
	}
	if o.StatusWritesPerSecond == 0 {
		o.StatusWritesPerSecond = DefaultStatusWritesPerSecond
	}
	budget := flowcontrol.NewFakeAlwaysRateLimiter()
	if o.StatusWritesPerSecond > 0 {
		budget = flowcontrol.NewTokenBucketRateLimiter(float32(o.StatusWritesPerSecond), max(1, int(o.StatusWritesPerSecond/5)))
	}
	err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, indexTask, taskIndex)
	if err != nil {
		return fmt.Errorf("index pods by task: %w", err)
	}
	l := newLedger()
	published := make(chan event.GenericEvent, 1024)
	pods := &podReconciler{client: mgr.GetClient(), reader: mgr.GetAPIReader(), bus: b, ledger: l, published: published, now: o.Now}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("orca-pod-completion").
		For(&corev1.Pod{}, builder.WithPredicates(unreported)).
		WithOptions(controller.Options{MaxConcurrentReconciles: o.MaxConcurrentReconciles}).
		Complete(pods)
	if err != nil {
		return fmt.Errorf("pod completion controller: %w", err)
	}
	tasks := &taskReconciler{client: mgr.GetClient(), reader: mgr.GetAPIReader(), ledger: l, now: o.Now, interval: o.StatusInterval,
		recorder: mgr.GetEventRecorder("orca-watcher"), budget: budget}
	later := coalesce{after: o.StatusInterval}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("orca-task-status").
		For(&orcav1.Task{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Pod{}, later, builder.WithPredicates(letGo)).
		WatchesRawSource(source.Channel(published, later)).
		WithOptions(controller.Options{MaxConcurrentReconciles: o.StatusConcurrency}).
		Complete(tasks)
	if err != nil {
		return fmt.Errorf("task status controller: %w", err)
	}
	return setupPolicies(ctx, mgr, b, o)
}

// unreported selects the Pods that Orca started and has not let go: the only
// ones that either controller has work for. A Pod that was let go changes
// nothing more.
var unreported = predicate.NewPredicateFuncs(isUnreported)

// letGo is unreported, and also passes the change that lets a Pod go: the task
// status controller must see a Pod leave even when something else than Orca
// removed the finalizer.
var letGo = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool { return isUnreported(e.ObjectOld) || isUnreported(e.ObjectNew) },
	CreateFunc: func(e event.CreateEvent) bool { return isUnreported(e.Object) },
	DeleteFunc: func(e event.DeleteEvent) bool { return isUnreported(e.Object) },
}

func isUnreported(o client.Object) bool {
	return o.GetLabels()[orcav1.LabelTask] != "" && controllerutil.ContainsFinalizer(o, orcav1.FinalizerCompletion)
}

// coalesce enqueues the Task of a Pod after a delay: every change of the Task's
// Pods within that delay is looked at in one reconcile, and written in one status
// write. A Task already waiting keeps its earlier time.
type coalesce struct{ after time.Duration }

var _ handler.EventHandler = coalesce{}

func (h coalesce) Create(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.add(e.Object, q)
}

func (h coalesce) Update(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.add(e.ObjectNew, q)
}

func (h coalesce) Delete(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.add(e.Object, q)
}

func (h coalesce) Generic(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.add(e.Object, q)
}

func (h coalesce) add(obj client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	q.AddAfter(reconcile.Request{NamespacedName: types.NamespacedName(taskKey(pod))}, h.after)
}
