package chaos

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// kubelet ends each of Orca's Pods in the namespace, Succeeded (or Failed: see
// exitCode), with a termination message derived from its ORCA_DATA (see output),
// as a node would after running it; it holds the limited Task's Pods for
// limitedHold first. It also notes when it first saw each Pod, when it ended
// it, and when any Pod last changed, for the latency figures, the parallelism
// check and the quiet detection.
type kubelet struct {
	client   client.Client
	queue    workqueue.TypedRateLimitingInterface[types.NamespacedName]
	informer cache.SharedIndexInformer

	mu        sync.Mutex
	firstSeen map[string]time.Time // by Pod name
	ending    map[string]time.Time // by Pod name: when the write that ended it began
	lastEvent atomic.Int64         // unix nanoseconds of the last Pod change
}

// output is the termination message of a Task's Pod that got data: every hop
// appends its Task's name, so that the data of a run can be checked at its end.
func output(task, data string) string { return data + "|" + task }

func newKubelet(cfg *rest.Config, c client.Client, namespace string) (*kubelet, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = orcav1.LabelTask }))
	k := &kubelet{
		client:   c,
		informer: factory.Core().V1().Pods().Informer(),
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](
			100*time.Millisecond, 5*time.Second)),
		firstSeen: map[string]time.Time{},
		ending:    map[string]time.Time{},
	}
	k.lastEvent.Store(time.Now().UnixNano())
	_, err = k.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			pod := obj.(*corev1.Pod)
			k.mu.Lock()
			if _, ok := k.firstSeen[pod.Name]; !ok {
				k.firstSeen[pod.Name] = time.Now()
			}
			k.mu.Unlock()
			k.changed(pod)
		},
		UpdateFunc: func(_, obj any) { k.changed(obj.(*corev1.Pod)) },
		DeleteFunc: func(any) { k.lastEvent.Store(time.Now().UnixNano()) },
	})
	return k, err
}

func (k *kubelet) changed(pod *corev1.Pod) {
	k.lastEvent.Store(time.Now().UnixNano())
	if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed && pod.DeletionTimestamp == nil {
		k.queue.Add(client.ObjectKeyFromObject(pod))
	}
}

// run runs the informer and workers until ctx ends.
func (k *kubelet) run(ctx context.Context, workers int) {
	go k.informer.Run(ctx.Done())
	for range workers {
		go func() {
			for k.next(ctx) {
			}
		}()
	}
	<-ctx.Done()
	k.queue.ShutDown()
}

func (k *kubelet) next(ctx context.Context) bool {
	key, quit := k.queue.Get()
	if quit {
		return false
	}
	defer k.queue.Done(key)
	obj, exists, err := k.informer.GetStore().GetByKey(key.String())
	if err != nil || !exists {
		k.queue.Forget(key)
		return true
	}
	pod := obj.(*corev1.Pod)
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		k.queue.Forget(key)
		return true
	}
	if pod.Annotations[orcav1.AnnotationTask] == limitedTask {
		if seen, ok := k.seen(pod.Name); ok && time.Since(seen) < limitedHold {
			k.queue.Forget(key)
			k.queue.AddAfter(key, limitedHold-time.Since(seen))
			return true
		}
	}
	msg := output(pod.Annotations[orcav1.AnnotationTask], envValue(pod, orcav1.EnvData))
	at := time.Now()
	err = testenv.Kubelet{Client: k.client}.EndCached(ctx, pod, exitCode(pod), msg)
	if err != nil && !apierrors.IsNotFound(err) {
		k.queue.AddRateLimited(key)
		return true
	}
	if err == nil {
		k.mu.Lock()
		k.ending[pod.Name] = at
		k.mu.Unlock()
	}
	k.queue.Forget(key)
	return true
}

// idle reports whether no Pod changed for d and every Pod has ended.
func (k *kubelet) idle(d time.Duration) bool {
	if time.Since(time.Unix(0, k.lastEvent.Load())) < d {
		return false
	}
	for _, obj := range k.informer.GetStore().List() {
		if phase := obj.(*corev1.Pod).Status.Phase; phase != corev1.PodSucceeded && phase != corev1.PodFailed {
			return false
		}
	}
	return true
}

// summary counts the Pods by state, for progress messages.
func (k *kubelet) summary() string {
	var total, running, held int
	for _, obj := range k.informer.GetStore().List() {
		pod := obj.(*corev1.Pod)
		total++
		if phase := pod.Status.Phase; phase != corev1.PodSucceeded && phase != corev1.PodFailed {
			running++
		}
		if controllerutil.ContainsFinalizer(pod, orcav1.FinalizerCompletion) {
			held++
		}
	}
	return fmt.Sprintf("%d Pods, %d not ended, %d with Orca's finalizer", total, running, held)
}

// seen returns when the kubelet first saw the Pod.
func (k *kubelet) seen(pod string) (time.Time, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	t, ok := k.firstSeen[pod]
	return t, ok
}

// ran returns a part of the time the Pod existed and had not ended: from when
// the kubelet first saw it to when it began the write that ended it.
func (k *kubelet) ran(pod string) (from, to time.Time, ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	from, seen := k.firstSeen[pod]
	to, ended := k.ending[pod]
	return from, to, seen && ended
}

// envValue returns the value of an environment variable of the Pod's first
// container.
func envValue(pod *corev1.Pod, name string) string {
	if len(pod.Spec.Containers) == 0 {
		return ""
	}
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}
