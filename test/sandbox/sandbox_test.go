package sandbox_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/sandbox"
	"github.com/sirocco-cloud/orca/internal/scheme"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestMakeRunRunsTheExamplesInASandbox starts the sandbox with the examples as
// `make run` does, waits for the seed workflow to run for real, uses kubectl and
// the CLI against it, and stops it with Ctrl-C.
func TestMakeRunRunsTheExamplesInASandbox(t *testing.T) {
	orca := buildOrca(t)
	state := t.TempDir()
	run := startSandbox(t, orca, state, "--apply", filepath.Join(testenv.RepoRoot(), "examples"))
	cmd, stderr, exited := run.cmd, &run.out, run.exited

	natsURL := waitMatch(t, stderr, exited, `embedded NATS with JetStream listening on (nats://[^,\s]+)`)
	webView := waitMatch(t, stderr, exited, `Watch it in your browser: (http://127\.0\.0\.1:\d+/\?token=\S+)\n`)
	kubeconfig := filepath.Join(state, "sandbox", "kubeconfig")
	s := newSession(t, kubeconfig)

	// The seed workflow ran: both Tasks succeeded, task1's message reached task2.
	s.waitSucceeded(t, "task1", 1)
	s.waitSucceeded(t, "task2", 1)
	out := s.kubectl(t, "get", "tasks")
	t.Logf("kubectl get tasks:\n%s", out)
	assert.Regexp(t, `(?m)^task1\s+Pending\s+\d{4}-\S+Z\s+0\s+\["ignitor1"\]\s+\["task1"\]\s*$`, out)
	assert.Regexp(t, `(?m)^task2\s+Pending\s+\d{4}-\S+Z\s+0\s+\["task1"\]\s*$`, out)
	task2 := s.lastPod(t, "task2")
	logs := s.kubectl(t, "logs", task2)
	assert.Equal(t, "task1 said: 4 words in \"the quick brown fox\"\nrun "+s.podRun(t, task2)+" is done\n", logs)
	assert.Contains(t, s.kubectl(t, "logs", s.lastPod(t, "task1"), "-c", "count"), "started by ignitor1 with data: the quick brown fox\n")
	assert.Contains(t, stderr.String(), "default/"+task2+"/report: task1 said: 4 words", "container output in the logs")
	assert.Contains(t, stderr.String(), "images are not pulled", "the agent says so once")
	assert.NotContains(t, stderr.String(), "Starting EventSource", "controller-runtime's start-up lines are debug")

	// The diamond ran: merge once, when shout and count had both succeeded.
	s.waitSucceeded(t, "merge", 1)
	merge := s.lastPod(t, "merge")
	assert.Contains(t, s.kubectl(t, "logs", merge),
		`inputs: {"count":{"result":"succeeded","message":"3 words"},"shout":{"result":"succeeded","message":"TWO BRANCHES MEET"}}`)

	// The web view serves its page behind the token it printed.
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	resp, err := (&http.Client{Jar: jar}).Get(webView)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the web view at %s", webView)

	// The CLI: events follows what fire starts, graph draws the examples.
	events := startEvents(t, orca, natsURL)
	fire := exec.Command(orca, "fire", "ignitor1", "--data", "hello again", "--nats-url", natsURL, "--kubeconfig", kubeconfig)
	fireOut, err := fire.CombinedOutput()
	require.NoError(t, err, "%s", fireOut)
	s.waitSucceeded(t, "task2", 2)
	assert.Equal(t, "task1 said: 2 words in \"hello again\"\nrun "+s.podRun(t, s.lastPod(t, "task2"))+" is done\n",
		s.kubectl(t, "logs", s.lastPod(t, "task2")))
	for _, want := range []string{`ignited\s+default/ignitor1`, `succeeded\s+default/task1 .*2 words in`, `succeeded\s+default/task2`} {
		waitMatch(t, events, nil, want)
	}
	graph, err := exec.Command(orca, "graph", "--kubeconfig", kubeconfig).Output()
	require.NoError(t, err)
	golden(t, "examples.mermaid", string(graph))

	// A Pod still running when Ctrl-C comes is stopped with everything else.
	s.kubectlInput(t, sleeperTask, "apply", "-f", "-")
	fire = exec.Command(orca, "fire", "sleep", "--nats-url", natsURL, "--kubeconfig", kubeconfig)
	fireOut, err = fire.CombinedOutput()
	require.NoError(t, err, "%s", fireOut)
	require.NoError(t, testenv.Eventually(t.Context(), time.Minute, func(context.Context) (bool, error) {
		return len(sandbox.ProcessesNaming(sleeperMarker)) > 0, nil
	}), "the sleeper's process runs")
	ports := s.ports(t, natsURL, webView)

	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	select {
	case <-exited:
		require.NoError(t, run.err, "orca run exits 0 on Ctrl-C")
	case <-time.After(time.Minute):
		t.Fatal("orca run did not stop within a minute of Ctrl-C")
	}
	// The kernel ends the processes of a container's PID namespace once its first
	// process is gone: allow it a moment.
	err = testenv.Eventually(t.Context(), 10*time.Second, func(context.Context) (bool, error) {
		return len(sandbox.ProcessesNaming(state))+len(sandbox.ProcessesNaming(sleeperMarker)) == 0, nil
	})
	assert.NoError(t, err, "processes left: %v of the sandbox, %v of the sleeper", sandbox.ProcessesNaming(state), sandbox.ProcessesNaming(sleeperMarker))
	for _, port := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if assert.NoError(t, err, "port %d is free", port) {
			_ = l.Close()
		}
	}
}

// TestKilledSandboxLeavesNothing kills `orca run --sandbox` with SIGKILL: its
// guard stops kube-apiserver and etcd, which do not die with their parent, and
// the rest dies with it.
func TestKilledSandboxLeavesNothing(t *testing.T) {
	orca := buildOrca(t)
	state := t.TempDir()
	run := startSandbox(t, orca, state)
	waitMatch(t, &run.out, run.exited, `embedded NATS with JetStream listening on`)
	require.NotEmpty(t, sandbox.ProcessesNaming(state), "the control plane runs")

	require.NoError(t, run.cmd.Process.Kill())
	<-run.exited
	err := testenv.Eventually(t.Context(), 20*time.Second, func(context.Context) (bool, error) {
		return len(sandbox.ProcessesNaming(state)) == 0, nil
	})
	assert.NoError(t, err, "processes left: %v", sandbox.ProcessesNaming(state))
}

// sandboxRun is a running `orca run --sandbox`.
type sandboxRun struct {
	cmd    *exec.Cmd
	out    testenv.Buffer
	exited chan struct{}
	err    error // once exited is closed
}

// startSandbox starts `orca run --sandbox` in the state folder, on free ports.
// After a failure the cleanup stops it as Ctrl-C would, then kills what is left.
func startSandbox(t *testing.T, orca, state string, args ...string) *sandboxRun {
	r := &sandboxRun{exited: make(chan struct{})}
	r.cmd = exec.Command(orca, append([]string{"run", "--sandbox", "--state-dir", state,
		"--nats-port", "0", "--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--ui-address", "127.0.0.1:0"}, args...)...)
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	require.NoError(t, r.cmd.Start())
	go func() { r.err = r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(os.Interrupt)
		select {
		case <-r.exited:
		case <-time.After(30 * time.Second):
			_ = r.cmd.Process.Kill()
		}
		for _, pid := range sandbox.ProcessesNaming(state) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("orca run output:\n%s", r.out.String())
		}
	})
	return r
}

const sleeperMarker = "orca-sandbox-test-sleeper"

var sleeperTask = `apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: sleeper
spec:
  startOnIgnition: [sleep]
  template:
    spec:
      containers:
      - name: sleep
        image: busybox
        command: ["sh", "-c", "sleep 3000; echo ` + sleeperMarker + `"]
      restartPolicy: Never
`

// session reaches the sandbox's API server as its admin.
type session struct {
	kubeconfig, kubectlBin string
	c                      client.Client
}

func newSession(t *testing.T, kubeconfig string) *session {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	require.NoError(t, err)
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	require.NoError(t, err)
	assets, err := testenv.AssetsDir()
	require.NoError(t, err)
	return &session{kubeconfig: kubeconfig, kubectlBin: filepath.Join(assets, "kubectl"), c: c}
}

func (s *session) kubectl(t *testing.T, args ...string) string { return s.kubectlInput(t, "", args...) }

func (s *session) kubectlInput(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), s.kubectlBin, append([]string{"--kubeconfig", s.kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "kubectl %v: %s", args, stderr.String())
	return stdout.String()
}

// waitSucceeded waits until the Task has n successful runs in its history.
func (s *session) waitSucceeded(t *testing.T, task string, n int) {
	t.Helper()
	var last orcav1.TaskStatus
	err := testenv.Eventually(t.Context(), 2*time.Minute, func(ctx context.Context) (bool, error) {
		var tk orcav1.Task
		if err := s.c.Get(ctx, client.ObjectKey{Namespace: "default", Name: task}, &tk); err != nil {
			return false, err
		}
		last = tk.Status
		ok := 0
		for _, h := range tk.Status.History {
			if h.Succeeded {
				ok++
			}
		}
		return ok >= n && len(tk.Status.Active) == 0, nil
	})
	require.NoError(t, err, "task %s: %d successful runs; status %+v", task, n, last)
}

// lastPod returns the name of the Pod of the Task's last recorded run.
func (s *session) lastPod(t *testing.T, task string) string {
	t.Helper()
	var tk orcav1.Task
	require.NoError(t, s.c.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: task}, &tk))
	require.NotEmpty(t, tk.Status.History, "runs of task %s", task)
	return tk.Status.History[0].Pod
}

func (s *session) podRun(t *testing.T, pod string) string {
	var p corev1.Pod
	require.NoError(t, s.c.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: pod}, &p))
	return p.Annotations[orcav1.AnnotationRun]
}

// ports returns the ports the sandbox listens on: the API server's, the node
// agent's, the embedded NATS's and the web view's.
func (s *session) ports(t *testing.T, natsURL, webView string) []int {
	var ports []int
	for _, raw := range []string{natsURL, webView, s.apiServer(t)} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		p, err := strconv.Atoi(u.Port())
		require.NoError(t, err)
		ports = append(ports, p)
	}
	var node corev1.Node
	require.NoError(t, s.c.Get(t.Context(), client.ObjectKey{Name: "orca-sandbox"}, &node))
	return append(ports, int(node.Status.DaemonEndpoints.KubeletEndpoint.Port))
}

func (s *session) apiServer(t *testing.T) string {
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	require.NoError(t, err)
	return cfg.Host
}

// startEvents runs `orca events` until the test ends and returns its output once
// it follows the stream.
func startEvents(t *testing.T, orca, natsURL string) *testenv.Buffer {
	var out testenv.Buffer
	cmd := exec.Command(orca, "events", "-A", "--nats-url", natsURL)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	// It prints this once its consumer exists: what is fired after, it sees.
	waitMatch(t, &out, nil, `following Orca's events`)
	return &out
}

// waitMatch waits until out matches the pattern and returns its first group.
func waitMatch(t *testing.T, out *testenv.Buffer, exited <-chan struct{}, pattern string) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	var got string
	err := testenv.Eventually(t.Context(), 3*time.Minute, func(context.Context) (bool, error) {
		select {
		case <-exited:
			return false, fmt.Errorf("orca exited")
		default:
		}
		m := re.FindStringSubmatch(out.String())
		if m == nil {
			return false, nil
		}
		got = m[len(m)-1]
		return true, nil
	})
	require.NoError(t, err, "waiting for %q in:\n%s", pattern, out.String())
	return got
}

func buildOrca(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "orca")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/orca")
	build.Dir = testenv.RepoRoot()
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

func golden(t *testing.T, name, got string) {
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(want), got)
}
