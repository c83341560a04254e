package nodeagent_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/sirocco-cloud/orca/internal/nodeagent"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// timeout bounds every wait of the tests.
const timeout = 30 * time.Second

// harness is a running Agent with its own Node, and a namespace for a test.
type harness struct {
	agent  *nodeagent.Agent
	node   string
	ns     string
	dir    string
	client kubernetes.Interface
	output *testenv.Buffer
	cancel context.CancelFunc
	done   chan error
}

// startAgent runs an Agent for the test, waits until its Node is ready, and stops
// it when the test ends.
func startAgent(t *testing.T) *harness {
	t.Helper()
	client, err := kubernetes.NewForConfig(env.Config)
	require.NoError(t, err)
	h := &harness{
		node:   "sandbox-" + rand.String(6),
		dir:    t.TempDir(),
		client: client,
		output: &testenv.Buffer{},
	}
	h.run(t)
	h.ns = env.Namespace(t)
	return h
}

// run starts an Agent for the harness's Node and folder and waits until it is
// ready; the test's end stops it.
func (h *harness) run(t *testing.T) {
	t.Helper()
	logs := &testenv.Buffer{}
	var err error
	h.agent, err = nodeagent.New(nodeagent.Options{
		NodeName:   h.node,
		Client:     h.client,
		Dir:        h.dir,
		ListenAddr: "127.0.0.1:0",
		ClientCAs:  env.KubeletClientCAs,
		Output:     h.output,
		Log: funcr.New(func(prefix, args string) {
			fmt.Fprintln(logs, prefix, args)
		}, funcr.Options{Verbosity: 1}),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h.cancel, h.done = cancel, done
	go func() { done <- h.agent.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			done <- err
			assert.NoError(t, err)
		case <-time.After(timeout):
			t.Error("agent did not stop in time")
		}
		if t.Failed() {
			t.Logf("agent log:\n%s\ncontainer output:\n%s", logs, h.output)
		}
	})
	select {
	case <-h.agent.Ready():
	case err := <-done:
		done <- err
		t.Fatalf("agent stopped before it was ready: %v", err)
	case <-time.After(timeout):
		t.Fatal("agent not ready in time")
	}
}

// stop cancels the agent and waits for Run to return; it may be called again.
func (h *harness) stop(t *testing.T) {
	t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- err
		require.NoError(t, err)
	case <-time.After(timeout):
		t.Error("agent did not stop in time")
	}
}

// pod returns a Pod bound to the agent's Node, which no container restarts.
func (h *harness) pod(name string, containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: corev1.PodSpec{
			NodeName:                      h.node,
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			Containers:                    containers,
		},
	}
}

// shell returns a container that runs script with sh -c.
func shell(name, script string) corev1.Container {
	return corev1.Container{Name: name, Image: "busybox", Command: []string{"sh", "-c", script}}
}

func (h *harness) create(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	_, err := h.client.CoreV1().Pods(h.ns).Create(t.Context(), pod, metav1.CreateOptions{})
	require.NoError(t, err)
}

// waitPod polls the Pod until cond holds and returns it.
func (h *harness) waitPod(t *testing.T, name string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	err := testenv.Eventually(t.Context(), timeout, func(ctx context.Context) (bool, error) {
		p, err := h.client.CoreV1().Pods(h.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pod = p
		return cond(p), nil
	})
	require.NoError(t, err, "pod %s: phase %s, status %+v", name, phaseOf(pod), statusOf(pod))
	return pod
}

// waitEnded waits until the Pod is Succeeded or Failed.
func (h *harness) waitEnded(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	return h.waitPod(t, name, func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	})
}

// waitRunning waits until every container of the Pod runs.
func (h *harness) waitRunning(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	return h.waitPod(t, name, func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && podReady(p)
	})
}

// waitGone waits until the Pod object no longer exists.
func (h *harness) waitGone(t *testing.T, name string) {
	t.Helper()
	err := testenv.Eventually(t.Context(), timeout, func(ctx context.Context) (bool, error) {
		_, err := h.client.CoreV1().Pods(h.ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
	require.NoError(t, err)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func phaseOf(p *corev1.Pod) corev1.PodPhase {
	if p == nil {
		return ""
	}
	return p.Status.Phase
}

func statusOf(p *corev1.Pod) any {
	if p == nil {
		return nil
	}
	return p.Status
}

// containerStatus returns the status of the named container or init container.
func containerStatus(t *testing.T, pod *corev1.Pod, name string) corev1.ContainerStatus {
	t.Helper()
	for _, s := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for container %s in %+v", name, pod.Status)
	return corev1.ContainerStatus{}
}

// terminated returns the terminated state of the named container.
func terminated(t *testing.T, pod *corev1.Pod, name string) *corev1.ContainerStateTerminated {
	t.Helper()
	s := containerStatus(t, pod, name)
	require.NotNil(t, s.State.Terminated, "container %s: %+v", name, s.State)
	return s.State.Terminated
}

// pidOf returns the process id in a container's ID.
func pidOf(t *testing.T, pod *corev1.Pod, name string) int {
	t.Helper()
	id := containerStatus(t, pod, name).ContainerID
	pid, err := strconv.Atoi(strings.TrimPrefix(id, "orca-sandbox://"))
	require.NoError(t, err, "container id %q", id)
	return pid
}

// processExists tells whether a process with the id exists (zombies included).
func processExists(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// kubectl runs kubectl in the test's namespace.
func (h *harness) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := env.Kubectl(t.Context(), append([]string{"-n", h.ns}, args...)...)
	require.NoError(t, err)
	return out
}

// processesRunning returns the ids of the processes whose command line is argv.
func processesRunning(argv ...string) []int {
	want := strings.Join(argv, "\x00") + "\x00"
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline")); err == nil && string(cmdline) == want {
			pids = append(pids, pid)
		}
	}
	return pids
}
