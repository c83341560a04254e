package nodeagent

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/go-logr/logr"
	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// podManagerConfig configures a podManager.
type podManagerConfig struct {
	NodeName string
	NodeIP   string
	Client   kubernetes.Interface
	Dir      string // holds one folder per Pod
	Output   *outputSink
	Log      logr.Logger
}

// podManager is the agent's virtual-kubelet provider: it runs a podRun for each
// Pod bound to the Node.
type podManager struct {
	cfg        podManagerConfig
	notifier   *notifier
	imagesOnce sync.Once
	started    metav1.Time

	// ctx ends when the agent stops; it bounds the work of Pod deletions.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	lister  corev1listers.PodLister
	runs    map[string]*podRun // by namespace/name
	closing bool
	wg      sync.WaitGroup // pod runs and deletions in flight
}

var (
	_ nodeutil.Provider = (*podManager)(nil)
	_ node.PodNotifier  = (*podManager)(nil)
)

func newPodManager(cfg podManagerConfig) *podManager {
	ctx, cancel := context.WithCancel(context.Background())
	return &podManager{
		cfg: cfg, notifier: newNotifier(), started: metav1.Now(),
		ctx: ctx, cancel: cancel, runs: make(map[string]*podRun),
	}
}

func podKey(namespace, name string) string { return namespace + "/" + name }

func (m *podManager) setLister(l corev1listers.PodLister) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lister = l
}

// runNotifier pushes status changes to virtual-kubelet until ctx ends.
func (m *podManager) runNotifier(ctx context.Context) <-chan struct{} {
	return m.notifier.run(ctx, m.snapshot)
}

// snapshot returns the Pod to send to virtual-kubelet, which writes it whole
// through the status subresource: the latest Pod from the informer, so that no
// label, annotation or finalizer goes back, with the run's status. It returns nil
// when the Pod object is gone: there is no status left to write.
func (m *podManager) snapshot(run *podRun) *corev1.Pod {
	pod := run.copyPod()
	m.mu.Lock()
	lister := m.lister
	m.mu.Unlock()
	if lister == nil {
		return pod
	}
	current, err := lister.Pods(pod.Namespace).Get(pod.Name)
	if err != nil || current.UID != pod.UID {
		return nil
	}
	fresh := current.DeepCopy()
	fresh.Status = pod.Status
	return fresh
}

// shutdown stops every Pod and waits until all their processes have ended.
func (m *podManager) shutdown() {
	m.mu.Lock()
	m.closing = true
	runs := make([]*podRun, 0, len(m.runs))
	for _, run := range m.runs {
		runs = append(runs, run)
	}
	m.mu.Unlock()
	for _, run := range runs {
		run.stop(min(deleteGrace(run.copyPod()), shutdownGrace))
	}
	m.cancel()
	m.wg.Wait()
}

// CreatePod starts running the Pod. A Pod that a previous agent started is not
// run again: its unfinished containers end as ContainerStatusUnknown.
func (m *podManager) CreatePod(_ context.Context, pod *corev1.Pod) error {
	m.imagesOnce.Do(func() {
		m.cfg.Log.Info("images are not pulled: containers run as processes on this host")
	})
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return nil
	}
	key := podKey(pod.Namespace, pod.Name)
	if old := m.runs[key]; old != nil {
		if old.uid == pod.UID {
			return nil
		}
		// The Pod was deleted and created again under the same name.
		m.retire(old, 0, false)
	}
	run := newPodRun(m, pod.DeepCopy())
	m.runs[key] = run
	m.wg.Go(run.run)
	return nil
}

// UpdatePod takes the Pod's new labels, annotations and spec; it changes nothing
// that runs.
func (m *podManager) UpdatePod(ctx context.Context, pod *corev1.Pod) error {
	run := m.lookup(pod.Namespace, pod.Name)
	if run == nil || run.uid != pod.UID {
		return m.CreatePod(ctx, pod)
	}
	run.updatePod(pod)
	return nil
}

// DeletePod stops the Pod's processes: SIGTERM, then SIGKILL after its grace
// period (at most maxGrace). Once they ended and the terminal status is written,
// the agent deletes the Pod object, as the kubelet does, and removes its files.
func (m *podManager) DeletePod(_ context.Context, pod *corev1.Pod) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	run := m.runs[podKey(pod.Namespace, pod.Name)]
	if run == nil || run.uid != pod.UID {
		return errdefs.NotFoundf("pod %s/%s is not running on this node", pod.Namespace, pod.Name)
	}
	if !m.closing {
		m.retire(run, deleteGrace(pod), true)
	}
	return nil
}

// retire stops run and, once its processes ended, deletes the Pod object when
// deleteObject is set, removes the run's files and forgets it. m.mu must be held.
func (m *podManager) retire(run *podRun, grace time.Duration, deleteObject bool) {
	if !run.markRetired() {
		return
	}
	run.stop(grace)
	m.wg.Go(func() {
		<-run.done
		if deleteObject {
			m.deleteObject(run)
		}
		run.removeFiles()
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.runs[run.key] == run {
			delete(m.runs, run.key)
		}
	})
}

// GetPod returns the Pod as the agent runs it.
func (m *podManager) GetPod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	run := m.lookup(namespace, name)
	if run == nil {
		return nil, errdefs.NotFoundf("pod %s/%s is not running on this node", namespace, name)
	}
	return run.copyPod(), nil
}

// GetPodStatus returns the Pod's status as the agent reports it.
func (m *podManager) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	pod, err := m.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

// GetPods returns every Pod the agent runs or ran and has not deleted.
func (m *podManager) GetPods(context.Context) ([]*corev1.Pod, error) {
	m.mu.Lock()
	runs := make([]*podRun, 0, len(m.runs))
	for _, run := range m.runs {
		runs = append(runs, run)
	}
	m.mu.Unlock()
	pods := make([]*corev1.Pod, 0, len(runs))
	for _, run := range runs {
		pods = append(pods, run.copyPod())
	}
	return pods, nil
}

// NotifyPods registers virtual-kubelet's callback for status changes.
func (m *podManager) NotifyPods(_ context.Context, cb func(*corev1.Pod)) {
	m.notifier.setCallback(cb)
}

func (m *podManager) lookup(namespace, name string) *podRun {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runs[podKey(namespace, name)]
}

// errNotSupported is returned for the kubelet API calls the sandbox lacks.
func errNotSupported(what string) error {
	return errdefs.InvalidInput(what + " is not supported in the sandbox: containers are processes on the host")
}

// RunInContainer is not supported.
func (m *podManager) RunInContainer(context.Context, string, string, string, []string, api.AttachIO) error {
	return errNotSupported("exec")
}

// AttachToContainer is not supported.
func (m *podManager) AttachToContainer(context.Context, string, string, string, api.AttachIO) error {
	return errNotSupported("attach")
}

// PortForward is not supported; container processes listen on the host.
func (m *podManager) PortForward(context.Context, string, string, int32, io.ReadWriteCloser) error {
	return errNotSupported("port-forward")
}

// GetStatsSummary returns a summary without statistics.
func (m *podManager) GetStatsSummary(context.Context) (*statsv1alpha1.Summary, error) {
	return &statsv1alpha1.Summary{Node: statsv1alpha1.NodeStats{NodeName: m.cfg.NodeName, StartTime: m.started}}, nil
}

// GetMetricsResource returns no metrics.
func (m *podManager) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) {
	return nil, nil
}
