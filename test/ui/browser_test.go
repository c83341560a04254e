package ui_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/cli"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

var (
	env    *testenv.Env
	update = flag.Bool("update", false, "write the screenshot to docs/web-view.png, for the README")
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testenv.Main(m, func(e *testenv.Env) { env = e }))
}

// workflow is the seed's, with a clean-up Task on task2's failure; its Ignitor
// fires only at a time far away, so that the page fires the run.
const workflow = `apiVersion: sirocco.cloud/v1alpha1
kind: Ignitor
metadata: {name: ignitor1}
spec: {scheduled: "2031-01-01T00:00:00Z", data: "the quick brown fox"}
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata: {name: task1}
spec:
  startOnIgnition: [ignitor1]
  startOnFailure: [task1]
  template: {spec: {restartPolicy: Never, containers: [{name: count, image: busybox}]}}
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata: {name: task2}
spec:
  startOnSuccess: [task1]
  template: {spec: {restartPolicy: Never, containers: [{name: report, image: busybox}]}}
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata: {name: cleanup}
spec:
  startOnFailure: [task2]
  template: {spec: {restartPolicy: Never, containers: [{name: clean, image: busybox}]}}
`

// TestWebViewInARealBrowser runs Orca as `orca run` does, against the test
// control plane (the test plays the kubelet), opens the web view in headless
// Chromium and uses it: the graph is drawn, an ignition fired from the page
// makes the Task states change live, and the run opens as a timeline.
func TestWebViewInARealBrowser(t *testing.T) {
	browser := chromium(t)
	ns := namespace(t, "workflows-") // it shows on the screenshot
	_, err := env.KubectlInput(t.Context(), workflow, "apply", "-n", ns, "-f", "-")
	require.NoError(t, err)
	url := runOrca(t, ns)

	ctx := newBrowser(t, browser)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(url)))
	page := &page{t: t, ctx: ctx}

	// The graph: every node and edge of the workflow.
	page.waitFor("the graph is drawn", `document.querySelectorAll("#graph .node").length == 4`)
	page.waitFor("the page follows the bus", `document.getElementById("connection").dataset.state == "live"`)
	assert.Equal(t, []string{"cleanup:task", "ignitor1:ignitor", "task1:task", "task2:task"},
		page.strings(`[...document.querySelectorAll("#graph .node")].map(n => n.dataset.name + ":" + n.dataset.kind).sort()`))
	assert.Equal(t, []string{"ignition_ignitor1>task_task1:ignition", "task_task1>task_task1:failure", "task_task1>task_task2:success", "task_task2>task_cleanup:failure"},
		page.strings(`[...document.querySelectorAll("#graph path.edge")].map(e => e.dataset.from + ">" + e.dataset.to + ":" + e.dataset.kind).sort()`))
	assert.Equal(t, "2031-01-01T00:00:00Z", page.string(`document.querySelector('#graph .node[data-name="ignitor1"] .sub').textContent`))

	// Fire from the page, with data.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#fire-ignition"), "ignitor1"),
		chromedp.SendKeys(chromedp.CSS("#fire-data"), "hello from the browser"),
		chromedp.Click(chromedp.CSS("#fire-button")),
	))
	page.waitFor("the page says it fired", `document.getElementById("fire-result").textContent.startsWith("fired ignitor1: run ")`)
	run := strings.TrimPrefix(page.string(`document.getElementById("fire-result").textContent`), "fired ignitor1: run ")
	page.waitFor("task1 runs", taskState("task1", "started"))

	// The Pods run; the page follows each end, live.
	kubelet := testenv.Kubelet{Client: env.Client}
	first := newPod(t, ns, "task1")
	assert.Equal(t, "hello from the browser", podEnv(first)["ORCA_DATA"], "the page's data reached the Pod")
	require.NoError(t, kubelet.Start(t.Context(), client.ObjectKeyFromObject(&first)))
	require.NoError(t, kubelet.End(t.Context(), client.ObjectKeyFromObject(&first), 1, "disk full"))
	retry := newPod(t, ns, "task1", first)
	page.waitFor("the failed run shows in the timeline", stepShown("failed", "task1"))
	page.waitFor("task1 runs again", taskState("task1", "started"))
	require.NoError(t, kubelet.Start(t.Context(), client.ObjectKeyFromObject(&retry)))
	require.NoError(t, kubelet.Succeed(t.Context(), client.ObjectKeyFromObject(&retry), `4 words in "hello from the browser"`))
	page.waitFor("task1 succeeded", taskState("task1", "succeeded"))
	page.waitFor("task2 runs", taskState("task2", "started"))
	task2 := newPod(t, ns, "task2")
	require.NoError(t, kubelet.Start(t.Context(), client.ObjectKeyFromObject(&task2)))
	require.NoError(t, kubelet.Succeed(t.Context(), client.ObjectKeyFromObject(&task2), "report sent"))
	page.waitFor("task2 succeeded", taskState("task2", "succeeded"))
	page.waitFor("the run succeeded", fmt.Sprintf(`document.querySelector('#runs tr[data-run=%q]')?.dataset.state == "succeeded"`, run))
	assert.Equal(t, "", page.string(`document.querySelector('#graph .node[data-name="cleanup"]').dataset.state || ""`), "cleanup never ran")

	// Open the run's timeline from the list of runs.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#timeline-close"))))
	page.waitFor("the timeline closes", `document.getElementById("timeline").hidden`)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#runs tr[data-run=%q]`, run)))))
	page.waitFor("the timeline opens", stepShown("succeeded", "task2"))
	assert.Equal(t, run, page.string(`document.getElementById("timeline-run").textContent`))
	// Each row: step, name, Pod, took, exit code, message.
	steps := page.strings(`[...document.querySelectorAll("#steps tr")].map(r => [...r.cells].slice(1, 7).map(c => c.textContent).join("|"))`)
	tookRE := `(\d+ ms|\d+\.\d s)`
	require.Len(t, steps, 4, "%q", steps)
	assert.Equal(t, "ignited|ignitor1||||hello from the browser", steps[0])
	assert.Regexp(t, `^failed\|task1\|`+first.Name+`\|`+tookRE+`\|1\|Error: disk full$`, steps[1], "which Pod, how long, exit code, message")
	assert.Regexp(t, `^succeeded\|task1retry 1\|`+retry.Name+`\|`+tookRE+`\|0\|4 words in "hello from the browser"$`, steps[2], "the retry")
	assert.Regexp(t, `^succeeded\|task2\|`+task2.Name+`\|`+tookRE+`\|0\|report sent$`, steps[3])

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "web-view.png")
	if *update {
		path = filepath.Join(testenv.RepoRoot(), "docs", "web-view.png")
	}
	require.NoError(t, os.WriteFile(path, shot, 0o644))
	t.Logf("screenshot: %s (%d KiB)", path, len(shot)>>10)
}

// chromium returns the browser to drive, or skips the test loudly when this
// machine has none (it fails instead with ORCA_REQUIRE_BROWSER set, as .ci/run
// sets it once it installed Chromium).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "chromium-headless-shell", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	msg := "NO BROWSER: the web view's browser test did not run. Install Chromium (as root: apt-get update && apt-get install -y chromium; .ci/run does)"
	if os.Getenv("ORCA_REQUIRE_BROWSER") != "" {
		t.Fatal(msg)
	}
	fmt.Fprintf(os.Stderr, "\n*** SKIPPED: %s ***\n\n", msg)
	t.Skip(msg)
	return ""
}

// newBrowser starts headless Chromium with a fresh profile and returns the
// context of its tab; both end with the test.
func newBrowser(t *testing.T, path string) context.Context {
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 760),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Run starts the browser, for the lifetime of ctx.
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 760)))
	return ctx
}

// runOrca runs the four services and the web view of ns in the test, as `orca
// run` does, with an embedded NATS, and returns the web view's address.
func runOrca(t *testing.T, ns string) string {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := make(chan string, 1)
	var out testenv.Buffer
	state := t.TempDir() // removed after the cleanup below stopped Orca
	go func() {
		done <- cli.RunAll(ctx, &out, cli.RunOptions{
			App: app.Options{
				Kubeconfig: env.KubeconfigPath, Namespaces: []string{ns},
				MetricsAddr: "0", ProbeAddr: "0", LogFormat: "text",
				ReuseControllerNames: true, // each test runs Orca
			},
			StateDir:       state,
			NATSPort:       -1,
			ApplyNamespace: ns,
			UIAddress:      "127.0.0.1:0",
			UIStarted:      func(url string) { started <- url },
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("orca run did not stop within 30s")
		}
		if t.Failed() {
			t.Logf("orca run's output:\n%s", out.String())
		}
	})
	select {
	case url := <-started:
		return url
	case err := <-done:
		t.Fatalf("orca run stopped: %v\n%s", err, out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no web view within 30s:\n%s", out.String())
	}
	return ""
}

// page polls JavaScript expressions in the browser's tab.
type page struct {
	t   *testing.T
	ctx context.Context
}

// waitFor waits until the expression is true.
func (p *page) waitFor(what, expr string) {
	p.t.Helper()
	var last error
	err := testenv.Eventually(p.t.Context(), 30*time.Second, func(context.Context) (bool, error) {
		ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](expr))
		last = err
		return err == nil && ok, nil
	})
	if err != nil {
		html, _ := chromedp.Run(p.ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		p.t.Fatalf("%s: %s never held (last error %v); the page:\n%s", what, expr, last, html)
	}
}

func (p *page) string(expr string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](expr))
	require.NoError(p.t, err, expr)
	return s
}

func (p *page) strings(expr string) []string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](expr))
	require.NoError(p.t, err, expr)
	return s
}

func taskState(task, state string) string {
	return fmt.Sprintf(`document.querySelector('#graph .node[data-name=%q]')?.dataset.state == %q`, task, state)
}

func stepShown(kind, name string) string {
	return fmt.Sprintf(`!document.getElementById("timeline").hidden && !!document.querySelector('#steps tr[data-kind=%q][data-name=%q]')`, kind, name)
}

// namespace creates a namespace named prefix and a random suffix, deleted when
// the test ends.
func namespace(t *testing.T, prefix string) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}
	require.NoError(t, env.Client.Create(t.Context(), ns))
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ns) })
	return ns.Name
}

// newPod waits until the Task has a Pod besides the known ones and returns it.
func newPod(t *testing.T, ns, task string, known ...corev1.Pod) corev1.Pod {
	t.Helper()
	var found corev1.Pod
	err := testenv.Eventually(t.Context(), 30*time.Second, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := env.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{orcav1.LabelTask: task}); err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if !slices.ContainsFunc(known, func(k corev1.Pod) bool { return k.Name == p.Name }) {
				found = p
				return true, nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "a new Pod of task %s", task)
	return found
}

func podEnv(p corev1.Pod) map[string]string {
	out := map[string]string{}
	for _, e := range p.Spec.Containers[0].Env {
		out[e.Name] = e.Value
	}
	return out
}
