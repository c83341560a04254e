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
)

// startReactor starts the floor: the least a controller can do for a hop. Its own
// informer watches the Pods of ns; when one turns Succeeded it creates the next Pod
// with one create call (protobuf, no client throttling), named after the ended
// Pod's uid as Orca names Pods after the event.
func startReactor(ctx context.Context, cfg *rest.Config, ns string) error {
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
		next := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "f-" + string(pod.UID), Namespace: ns},
			Spec:       podTemplate(nil).Spec,
		}
		_, err := cs.CoreV1().Pods(ns).Create(ctx, next, metav1.CreateOptions{})
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

// seedFloor creates the first Pod of the floor's ping-pong.
func (c *cluster) seedFloor(ctx context.Context, ns string) error {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "f-seed", Namespace: ns}, Spec: podTemplate(nil).Spec}
	_, err := c.cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	return err
}
