package watcher

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// indexReplaces maps a Pod to the Pods it replaces (concurrencyPolicy Replace).
const indexReplaces = "metadata.annotations.replaces"

// ReasonReplaced is the reason of the failure of a Pod that a start of its Task
// replaced.
const ReasonReplaced = "Replaced"

// replacesOf returns the Pods that pod replaces.
func replacesOf(pod client.Object) []string {
	v := pod.GetAnnotations()[orcav1.AnnotationReplaces]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// replaceReconciler deletes the Pods that a Pod replaces, once the dispatcher
// created it with the annotation that names them: each is marked
// orca.sirocco.cloud/replaced-by, then deleted, and its completion is reported
// as a failure with reason Replaced. A replaced Pod created after its replacer
// (a race between two dispatchers) is deleted when it appears.
type replaceReconciler struct {
	client client.Client
}

func (r *replaceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var pod corev1.Pod
	if err := r.client.Get(ctx, req.NamespacedName, &pod); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	for _, victim := range replacesOf(&pod) {
		if err := r.replace(ctx, pod.Namespace, victim, &pod); err != nil {
			return ctrl.Result{}, err
		}
	}
	var by corev1.PodList
	if err := r.client.List(ctx, &by, client.InNamespace(pod.Namespace), client.MatchingFields{indexReplaces: pod.Name}); err != nil {
		return ctrl.Result{}, err
	}
	for i := range by.Items {
		if err := r.replace(ctx, pod.Namespace, pod.Name, &by.Items[i]); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

// replace deletes the Pod victim of namespace ns, which by replaces, unless it
// ended or is being deleted already.
func (r *replaceReconciler) replace(ctx context.Context, ns, victim string, by *corev1.Pod) error {
	var pod corev1.Pod
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: victim}, &pod); err != nil {
		return client.IgnoreNotFound(err)
	}
	if pod.Annotations[orcav1.AnnotationTaskUID] != by.Annotations[orcav1.AnnotationTaskUID] || pod.DeletionTimestamp != nil ||
		pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	// Marked first, so that its end is reported as Replaced; the mark also says
	// that it was deleted already, when the cache had not seen the deletion yet.
	first := pod.Annotations[orcav1.AnnotationReplacedBy] == ""
	if first {
		patch := client.MergeFrom(pod.DeepCopy())
		pod.Annotations[orcav1.AnnotationReplacedBy] = by.Name
		if err := r.client.Patch(ctx, &pod, patch); err != nil {
			return client.IgnoreNotFound(err)
		}
	}
	err := r.client.Delete(ctx, &pod, client.Preconditions{UID: &pod.UID})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete replaced pod %s/%s: %w", ns, victim, err)
	}
	if first {
		metrics.replaced.Inc()
		slog.Info("pod replaced", "namespace", ns, "task", taskKey(&pod).Name, "pod", victim, "by", by.Name)
	}
	return nil
}
