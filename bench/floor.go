package main

import (
	"context"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// startReactor starts the floor: the least a controller can do for a hop. Its own
// informer watches the Pods of ns; when one turns Succeeded it creates the Pod
// that next returns for it (none when nil) with one create call (protobuf, no
// client throttling).
func startReactor(ctx context.Context, cfg *rest.Config, ns string, next func(ended *corev1.Pod) *corev1.Pod) error {
	cs, err := kubernetes.NewForConfig(protobuf(cfg))
	if err != nil {
		return err
	}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := f.Core().V1().Pods().Informer()
	_, err = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: func(oldObj, newObj any) {
		old, _ := oldObj.(*corev1.Pod)
		pod, _ := newObj.(*corev1.Pod)
		if old == nil || pod == nil || old.Status.Phase == corev1.PodSucceeded || pod.Status.Phase != corev1.PodSucceeded {
			return
		}
		pod = next(pod)
		if pod == nil {
			return
		}
		_, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "floor reactor:", err)
		}
	}})
	if err != nil {
		return err
	}
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("floor reactor: %v did not sync", typ)
		}
	}
	return nil
}

// pingpongReactor is the floor of the hop: each Pod that succeeds starts the
// next, named after the ended Pod's uid as Orca names Pods after the event.
func pingpongReactor(ns string, orcaShape bool) func(*corev1.Pod) *corev1.Pod {
	return func(ended *corev1.Pod) *corev1.Pod { return floorPod(ns, "f-"+string(ended.UID), orcaShape) }
}

// seedFloor creates the first Pod of the floor's ping-pong.
func (c *cluster) seedFloor(ctx context.Context, ns string) error {
	_, err := c.cs.CoreV1().Pods(ns).Create(ctx, floorPod(ns, "f-seed", false), metav1.CreateOptions{})
	return err
}

// floorPod is the floor's Pod: the bare template, or (orcaShape) the template
// with what Orca adds to its Pods: labels, annotations, environment, an owner
// reference (to an object that does not exist; nothing collects garbage here)
// and a finalizer that nothing removes.
func floorPod(ns, name string, orcaShape bool) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: podTemplate(nil).Spec}
	if !orcaShape {
		return pod
	}
	pod.Labels = map[string]string{orcav1.LabelTask + "-floor": "floor", orcav1.LabelRun + "-floor": "hop-start"}
	pod.Annotations = map[string]string{
		orcav1.AnnotationTask + "-floor": "floor", orcav1.AnnotationRun + "-floor": "hop-start",
		orcav1.AnnotationInitiator + "-floor": "floor", orcav1.AnnotationEventID + "-floor": "0b6c8f5e-3f5e-4d8e-9a59-1f2d3c4b5a69",
	}
	pod.Finalizers = []string{orcav1.FinalizerCompletion + "-floor"}
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: orcav1.GroupVersion.String(), Kind: "Task", Name: "floor",
		UID: "0b6c8f5e-3f5e-4d8e-9a59-1f2d3c4b5a69", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: orcav1.EnvInitiator, Value: "floor"},
		{Name: orcav1.EnvData, Value: "42"}, {Name: orcav1.EnvRun, Value: "hop-start"}}
	return pod
}
