package watcher

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// indexOwnerTask maps a Pod to the name of the Task that controls it, whether it
// keeps the completion finalizer or not (indexTask has only those that do).
const indexOwnerTask = "metadata.ownerReferences.task"

func ownerTaskIndex(obj client.Object) []string {
	if ref := metav1.GetControllerOf(obj); ref != nil && ref.Kind == "Task" && ref.APIVersion == orcav1.GroupVersion.String() {
		return []string{ref.Name}
	}
	return nil
}

// setupPolicies adds the controllers of the Tasks' run policies: the one that
// deletes the Pods of ended runs (history limits and TTL), and the one that
// deletes replaced Pods.
func setupPolicies(ctx context.Context, mgr manager.Manager, b *bus.Bus, o Options) error {
	err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, indexOwnerTask, ownerTaskIndex)
	if err != nil {
		return fmt.Errorf("index pods by the task that controls them: %w", err)
	}
	err = mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, indexReplaces, func(obj client.Object) []string {
		return replacesOf(obj)
	})
	if err != nil {
		return fmt.Errorf("index pods by the pods they replace: %w", err)
	}
	cleanup := &cleanupReconciler{client: mgr.GetClient(), removed: b.RemovedPods(), now: o.Now, grace: o.RemovalGrace}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("orca-task-cleanup").
		For(&orcav1.Task{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), &orcav1.Task{}, handler.OnlyControllerOwner())).
		WithOptions(controller.Options{MaxConcurrentReconciles: o.MaxConcurrentReconciles}).
		Complete(cleanup)
	if err != nil {
		return fmt.Errorf("task cleanup controller: %w", err)
	}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("orca-pod-replace").
		For(&corev1.Pod{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.GetLabels()[orcav1.LabelTask] != ""
		}))).
		WithOptions(controller.Options{MaxConcurrentReconciles: o.MaxConcurrentReconciles}).
		Complete(&replaceReconciler{client: mgr.GetClient()})
	if err != nil {
		return fmt.Errorf("pod replace controller: %w", err)
	}
	return nil
}
