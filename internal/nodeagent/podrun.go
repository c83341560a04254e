package nodeagent

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podRun runs one Pod: its init containers one after the other, each to its end,
// then its containers together. No container restarts. It keeps a full copy of the
// Pod with the status the agent reports.
type podRun struct {
	m         *podManager
	log       logr.Logger
	uid       types.UID
	namespace string
	name      string
	hostname  string
	key       string
	dir       string // <Options.Dir>/pods/<namespace>_<name>_<uid>
	lost      bool   // a previous agent started the Pod

	inits      []*containerRun
	containers []*containerRun

	stopCh chan struct{} // closed to stop the Pod's processes
	done   chan struct{} // closed once every process ended and the final status is set

	mu       sync.Mutex
	pod      *corev1.Pod
	stopping bool
	grace    time.Duration
	retired  bool
}

func newPodRun(m *podManager, pod *corev1.Pod) *podRun {
	key := podKey(pod.Namespace, pod.Name)
	hostname := pod.Spec.Hostname
	if hostname == "" {
		hostname = pod.Name
	}
	r := &podRun{
		m: m, log: m.cfg.Log.WithValues("pod", key),
		uid: pod.UID, namespace: pod.Namespace, name: pod.Name, hostname: hostname, key: key,
		dir:    filepath.Join(m.cfg.Dir, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID)),
		lost:   pod.Status.StartTime != nil,
		stopCh: make(chan struct{}),
		done:   make(chan struct{}),
		pod:    pod,
	}
	for i := range pod.Spec.InitContainers {
		r.inits = append(r.inits, r.newContainerRun(&pod.Spec.InitContainers[i], true))
	}
	for i := range pod.Spec.Containers {
		r.containers = append(r.containers, r.newContainerRun(&pod.Spec.Containers[i], false))
	}
	return r
}

// run runs the Pod to its end, or until it is stopped.
func (r *podRun) run() {
	defer close(r.done)
	if r.lost {
		r.update(r.markLost)
		return
	}
	r.update(func() {
		now := metav1.Now()
		r.pod.Status.StartTime = &now
	})
	if err := os.MkdirAll(r.workDir(), 0o755); err != nil {
		r.log.Error(err, "create pod folder")
	}
	for _, c := range r.inits {
		if proc := r.start(c); proc != nil {
			r.await(c, proc)
		}
		if !r.succeeded(c) {
			break
		}
	}
	if r.initialized() {
		var wg sync.WaitGroup
		for _, c := range r.containers {
			if proc := r.start(c); proc != nil {
				wg.Go(func() { r.await(c, proc) })
			}
		}
		wg.Wait()
	}
	r.update(r.finish)
}

// initialized tells whether every init container succeeded.
func (r *podRun) initialized() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.inits {
		if !c.succeededLocked() {
			return false
		}
	}
	return true
}

// finish ends the containers that never started when the Pod was stopped.
func (r *podRun) finish() {
	if !r.stopping {
		return
	}
	for _, c := range r.all() {
		if c.state.Waiting != nil {
			c.terminate(137, "ContainerStatusUnknown", "The pod was stopped before the container started")
		}
	}
}

// markLost ends the containers that a previous agent left unfinished: with
// restartPolicy treated as Never they do not run again.
func (r *podRun) markLost() {
	old := make(map[string]corev1.ContainerStatus)
	for _, s := range append(append([]corev1.ContainerStatus{}, r.pod.Status.InitContainerStatuses...), r.pod.Status.ContainerStatuses...) {
		old[s.Name] = s
	}
	for _, c := range r.all() {
		if s, ok := old[c.spec.Name]; ok && s.State.Terminated != nil {
			c.state, c.id = *s.State.DeepCopy(), s.ContainerID
			continue
		}
		c.terminate(137, "ContainerStatusUnknown", "The node agent restarted while the container could have been running")
	}
}

// all returns the init containers and the containers.
func (r *podRun) all() []*containerRun {
	return append(append([]*containerRun{}, r.inits...), r.containers...)
}

// update changes the run's state with fn under the lock, recomputes the Pod's
// status and queues it for virtual-kubelet.
func (r *podRun) update(fn func()) {
	r.mu.Lock()
	fn()
	r.refreshStatus()
	r.mu.Unlock()
	r.m.notifier.mark(r)
}

// stop stops the Pod's processes with the given grace period; the first call wins.
func (r *podRun) stop(grace time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return
	}
	r.stopping, r.grace = true, grace
	close(r.stopCh)
}

func (r *podRun) isStopping() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopping
}

func (r *podRun) stopGrace() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.grace
}

// markRetired records that the run is being retired and tells whether it was not
// already.
func (r *podRun) markRetired() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retired {
		return false
	}
	r.retired = true
	return true
}

// copyPod returns a copy of the Pod with its current status.
func (r *podRun) copyPod() *corev1.Pod {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pod.DeepCopy()
}

// updatePod takes the metadata and spec of pod, keeping the status.
func (r *podRun) updatePod(pod *corev1.Pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	status := r.pod.Status
	r.pod = pod.DeepCopy()
	r.pod.Status = status
}

// container returns the init container or container with the given name.
func (r *podRun) container(name string) *containerRun {
	for _, c := range r.all() {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

func (r *podRun) workDir() string { return filepath.Join(r.dir, "work") }

// removeFiles removes the Pod's folder: logs, termination files and work folder.
func (r *podRun) removeFiles() {
	if err := os.RemoveAll(r.dir); err != nil {
		r.log.Error(err, "remove pod folder")
	}
}
