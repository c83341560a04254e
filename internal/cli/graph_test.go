package cli_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/cli"
)

// TestGraphOfTheSeedWorkflow reads the seed from the API server and prints it in
// both formats, through the command line.
func TestGraphOfTheSeedWorkflow(t *testing.T) {
	ns := env.Namespace(t)
	applyFile(t, ns, "seed-tasks.yaml")
	applyFile(t, ns, "seed-ignitor.yaml")
	for _, format := range []string{"mermaid", "dot"} {
		t.Run(format, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := cli.Main(t.Context(), []string{"orca", "graph", "-n", ns, "--kubeconfig", env.KubeconfigPath, "--format", format},
				nil, &stdout, &stderr)
			require.Equal(t, 0, code, stderr.String())
			assert.Empty(t, stderr.String())
			golden(t, "seed."+format, stdout.String())
		})
	}
}

// TestGraphShowsExternalIgnitionsAndMissingTasks builds a graph with every kind
// of node, names that are not identifiers, and edges given in no order.
func TestGraphShowsExternalIgnitionsAndMissingTasks(t *testing.T) {
	names := func(s ...string) []orcav1.ObjectName {
		out := make([]orcav1.ObjectName, len(s))
		for i, n := range s {
			out[i] = orcav1.ObjectName(n)
		}
		return out
	}
	task := func(name string, spec orcav1.TaskSpec) orcav1.Task {
		return orcav1.Task{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	}
	tasks := []orcav1.Task{
		task("report", orcav1.TaskSpec{StartOnSuccess: names("load.v2", "extract"), StartOnFailure: names("cleanup")}),
		task("extract", orcav1.TaskSpec{StartOnIgnition: names("nightly", "webhook-push")}),
		task("load.v2", orcav1.TaskSpec{StartOnSuccess: names("extract"), StartOnFailure: names("load.v2", "extract")}),
		task("load-v2", orcav1.TaskSpec{StartOnIgnition: names("webhook-push", "webhook-push")}),
	}
	ignitors := []orcav1.Ignitor{
		{ObjectMeta: metav1.ObjectMeta{Name: "nightly"}, Spec: orcav1.IgnitorSpec{Scheduled: "0 2 * * *"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "unused"}, Spec: orcav1.IgnitorSpec{Scheduled: "NOW"}},
	}
	g := cli.BuildGraph(tasks, ignitors)
	for _, format := range []string{cli.FormatMermaid, cli.FormatDOT} {
		var out bytes.Buffer
		require.NoError(t, g.Write(&out, format))
		golden(t, "mixed."+format, out.String())
	}
	// The same objects in another order print the same graph.
	tasks[0], tasks[3] = tasks[3], tasks[0]
	ignitors[0], ignitors[1] = ignitors[1], ignitors[0]
	assert.Equal(t, g, cli.BuildGraph(tasks, ignitors))
	require.Error(t, g.Write(&bytes.Buffer{}, "svg"))
}

func TestGraphErrorsNameTheNamespaceAndTheFix(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := cli.Main(context.Background(), []string{"orca", "graph", "--format", "png", "-n", "x", "--kubeconfig", env.KubeconfigPath}, nil, &stdout, &stderr)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr.String(), `unknown --format "png"`)

	ns := env.Namespace(t)
	stdout.Reset()
	stderr.Reset()
	code = cli.Main(context.Background(), []string{"orca", "graph", "-n", ns, "--kubeconfig", env.KubeconfigPath}, nil, &stdout, &stderr)
	assert.Equal(t, 0, code, stderr.String())
	assert.Contains(t, stderr.String(), "namespace "+ns+" has no Tasks and no Ignitors")
	assert.Equal(t, "flowchart LR\n", stdout.String())
}
