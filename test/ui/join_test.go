package ui_test

import (
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sirocco-cloud/orca/internal/testenv"
)

const joinWorkflow = `apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata: {name: a}
spec:
  startOnIgnition: [go]
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata: {name: b}
spec:
  startOnIgnition: [go]
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata: {name: d}
spec:
  startWhen: {allSucceeded: [a, b]}
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
`

// TestWebViewDrawsJoinsAndSkips: a join is a diamond between the Tasks it names
// and its Task, and a Task skipped in a run shows as skipped.
func TestWebViewDrawsJoinsAndSkips(t *testing.T) {
	browser := chromium(t)
	ns := namespace(t, "joins-")
	_, err := env.KubectlInput(t.Context(), joinWorkflow, "apply", "-n", ns, "-f", "-")
	require.NoError(t, err)
	url := runOrca(t, ns)
	ctx := newBrowser(t, browser)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(url)))
	page := &page{t: t, ctx: ctx}

	page.waitFor("the graph is drawn", `document.querySelectorAll("#graph .node").length == 5`)
	page.waitFor("the page follows the bus", `document.getElementById("connection").dataset.state == "live"`)
	assert.Equal(t, []string{"a:task", "b:task", "d:join", "d:task", "go:ignition"},
		page.strings(`[...document.querySelectorAll("#graph .node")].map(n => n.dataset.name + ":" + n.dataset.kind).sort()`))
	assert.Equal(t, "AND", page.string(`document.querySelector('#graph .node.join .name').textContent`))
	assert.Equal(t, "polygon", page.string(`document.querySelector('#graph .node.join').children[1].tagName`), "a diamond")
	assert.Equal(t, []string{"ignition_go>task_a:ignition", "ignition_go>task_b:ignition", "join_d>task_d:join", "task_a>join_d:condition", "task_b>join_d:condition"},
		page.strings(`[...document.querySelectorAll("#graph path.edge")].map(e => e.dataset.from + ">" + e.dataset.to + ":" + e.dataset.kind).sort()`))
	assert.Equal(t, []string{"succeeded", "succeeded"}, page.strings(`[...document.querySelectorAll("#graph .edge-label.condition")].map(l => l.textContent)`))

	// a fails: d is skipped in the run, and the page says so.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#fire-ignition"), "go"),
		chromedp.Click(chromedp.CSS("#fire-button")),
	))
	a := newPod(t, ns, "a")
	require.NoError(t, testenv.Kubelet{Client: env.Client}.End(t.Context(), client.ObjectKeyFromObject(&a), 1, "no"))
	page.waitFor("d is skipped", taskState("d", "skipped"))
	page.waitFor("the skip shows in the timeline", stepShown("skipped", "d"))
}
