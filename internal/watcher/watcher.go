package watcher

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;patch;update;delete
// +kubebuilder:rbac:groups=sirocco.cloud,resources=tasks,verbs=get;list;watch
// +kubebuilder:rbac:groups=sirocco.cloud,resources=tasks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// indexOwnerTask maps a Pod to the name of the Task that controls it.
const indexOwnerTask = "metadata.ownerReferences.task"

// Options configure the watcher.
type Options struct {
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// MaxConcurrentReconciles of each controller; default 16.
	MaxConcurrentReconciles int
}

// Setup adds the watcher's two controllers to the manager: the one that reports
// ended Pods, and the one that keeps Task state in step with the Pods.
func Setup(ctx context.Context, mgr manager.Manager, b *bus.Bus, o Options) error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = 16
	}
	err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, indexOwnerTask, func(obj client.Object) []string {
		if ref := metav1.GetControllerOf(obj); ref != nil && ref.Kind == "Task" && ref.APIVersion == orcav1.GroupVersion.String() {
			return []string{ref.Name}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index pods by task: %w", err)
	}
	pods := &podReconciler{
		client: mgr.GetClient(), reader: mgr.GetAPIReader(), bus: b, now: o.Now,
		recorder: mgr.GetEventRecorder("orca-watcher"),
	}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("orca-pod-completion").
		For(&corev1.Pod{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.GetLabels()[orcav1.LabelTask] != ""
		}))).
		WithOptions(controllerOptions(o)).
		Complete(pods)
	if err != nil {
		return fmt.Errorf("pod completion controller: %w", err)
	}
	tasks := &taskReconciler{client: mgr.GetClient(), now: o.Now}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("orca-task-status").
		For(&orcav1.Task{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), &orcav1.Task{}, handler.OnlyControllerOwner())).
		WithOptions(controllerOptions(o)).
		Complete(tasks)
	if err != nil {
		return fmt.Errorf("task status controller: %w", err)
	}
	return setupPolicies(ctx, mgr, b, o)
}
