package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// seen is a Pod as the observer first saw it, with the bench's clock at that moment.
type seen struct {
	pod *corev1.Pod
	at  time.Time
}

// observer is a separate client-go shared informer on every Pod of the cluster: it
// records when each new Pod's ADDED event arrived and hands it to the namespace's
// subscriber.
type observer struct {
	mu    sync.Mutex
	subs  map[string]chan seen
	store cache.Indexer
}

const subBuffer = 1 << 14

func startObserver(ctx context.Context, cfg *rest.Config, m *marks) (*observer, error) {
	cs, err := kubernetes.NewForConfig(protobuf(cfg))
	if err != nil {
		return nil, err
	}
	o := &observer{subs: map[string]chan seen{}}
	f := informers.NewSharedInformerFactory(cs, 0)
	inf := f.Core().V1().Pods().Informer()
	o.store = inf.GetIndexer()
	_, err = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		at := time.Now()
		if pod, ok := obj.(*corev1.Pod); ok {
			o.deliver(seen{pod: pod, at: at})
		}
	}, UpdateFunc: func(_, obj any) {
		at := time.Now()
		if pod, ok := obj.(*corev1.Pod); ok && pod.Status.Phase == corev1.PodSucceeded {
			m.mark(informed, pod.UID, at)
		}
	}})
	if err != nil {
		return nil, err
	}
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("observer: %v did not sync", typ)
		}
	}
	return o, nil
}

func (o *observer) deliver(s seen) {
	o.mu.Lock()
	ch := o.subs[s.pod.Namespace]
	o.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- s:
	default:
		fmt.Fprintf(os.Stderr, "observer: subscriber of %s is full, dropped %s\n", s.pod.Namespace, s.pod.Name)
	}
}

// watch returns the channel of the Pods first seen in ns from now on.
func (o *observer) watch(ns string) <-chan seen {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ch, ok := o.subs[ns]; ok {
		return ch
	}
	ch := make(chan seen, subBuffer)
	o.subs[ns] = ch
	return ch
}

// next returns the next Pod on ch for which match is true (nil matches any),
// dropping the others.
func next(ctx context.Context, ch <-chan seen, timeout time.Duration, match func(*corev1.Pod) bool) (seen, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case s := <-ch:
			if match == nil || match(s.pod) {
				return s, nil
			}
		case <-timer.C:
			return seen{}, fmt.Errorf("no pod seen in %s", timeout)
		case <-ctx.Done():
			return seen{}, ctx.Err()
		}
	}
}

// drain empties ch.
func drain(ch <-chan seen) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// unreported returns the number of Pods of ns that ended and keep Orca's
// completion finalizer: Orca has work left for them.
func (o *observer) unreported(ns string) int {
	objs, _ := o.store.ByIndex(cache.NamespaceIndex, ns)
	n := 0
	for _, obj := range objs {
		pod, ok := obj.(*corev1.Pod)
		if ok && (pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed) &&
			slices.Contains(pod.Finalizers, orcav1.FinalizerCompletion) {
			n++
		}
	}
	return n
}

// settled waits until Orca let go every Pod of ns that ended (at most timeout):
// the work a case left behind must not slow the next one.
func (o *observer) settled(ctx context.Context, ns string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for n := o.unreported(ns); n > 0; n = o.unreported(ns) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d pods of %s ended and keep the completion finalizer after %v", n, ns, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
