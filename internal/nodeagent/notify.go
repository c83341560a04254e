package nodeagent

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/util/workqueue"
)

// notifyWorkers is how many Pods' statuses are pushed to virtual-kubelet at once.
const notifyWorkers = 4

// notifier pushes Pod status changes to virtual-kubelet's callback. A Pod marked
// again while its push runs is pushed once more afterwards, always with its latest
// status, so pushes of one Pod never overtake each other.
type notifier struct {
	queue workqueue.TypedInterface[*podRun]

	mu sync.Mutex
	cb func(*corev1.Pod)
}

func newNotifier() *notifier {
	return &notifier{queue: workqueue.NewTyped[*podRun]()}
}

func (n *notifier) setCallback(cb func(*corev1.Pod)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cb = cb
}

func (n *notifier) callback() func(*corev1.Pod) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cb
}

// mark queues a push of the run's status.
func (n *notifier) mark(run *podRun) { n.queue.Add(run) }

// run pushes marked Pods, as snapshot returns them (nil: skip), until ctx ends. The returned
// channel is closed once the workers have stopped.
func (n *notifier) run(ctx context.Context, snapshot func(*podRun) *corev1.Pod) <-chan struct{} {
	var wg sync.WaitGroup
	for range notifyWorkers {
		wg.Go(func() {
			for n.pushNext(snapshot) {
			}
		})
	}
	go func() {
		<-ctx.Done()
		n.queue.ShutDown()
	}()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

func (n *notifier) pushNext(snapshot func(*podRun) *corev1.Pod) bool {
	run, quit := n.queue.Get()
	if quit {
		return false
	}
	defer n.queue.Done(run)
	if cb := n.callback(); cb != nil {
		if pod := snapshot(run); pod != nil {
			cb(pod)
		}
	}
	return true
}
