package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/cli"
)

// TestApplyPutsIgnitorsLastAndNamesTheObjects applies a folder whose files list an
// Ignitor before its Task, into the namespace given for objects that name none.
func TestApplyPutsIgnitorsLastAndNamesTheObjects(t *testing.T) {
	ns := env.Namespace(t)
	dir := t.TempDir()
	copyFile(t, "seed-ignitor.yaml", filepath.Join(dir, "a-ignitor.yaml"))
	copyFile(t, "seed-tasks.yaml", filepath.Join(dir, "b-tasks.yml"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README.md"), []byte("not a manifest"), 0o644))

	var out bytes.Buffer
	require.NoError(t, cli.ApplyPaths(t.Context(), env.Client, ns, []string{dir}, &out))
	assert.Equal(t, []string{
		"task.sirocco.cloud/task1 applied",
		"task.sirocco.cloud/task2 applied",
		"ignitor.sirocco.cloud/ignitor1 applied",
	}, lines(out.String()))
	var task orcav1.Task
	require.NoError(t, env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "task2"}, &task))
	assert.Equal(t, []orcav1.ObjectName{"task1"}, task.Spec.StartOnSuccess)

	// Applying again changes nothing and fails nothing.
	require.NoError(t, cli.ApplyPaths(t.Context(), env.Client, ns, []string{dir}, &out))
}

func TestApplyErrorsNameTheFileAndTheObject(t *testing.T) {
	ns := env.Namespace(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
		return path
	}
	for name, tc := range map[string]struct{ path, want string }{
		"missing file": {filepath.Join(dir, "nope.yaml"), "apply " + filepath.Join(dir, "nope.yaml") + ": stat"},
		"empty folder": {t.TempDir(), "no .yaml, .yml or .json file in the folder"},
		"no name":      {write("noname.yaml", "apiVersion: v1\nkind: ConfigMap\n"), "document 1 needs apiVersion, kind and metadata.name"},
		"not YAML":     {write("bad.yaml", "kind: [\n"), "bad.yaml: document 1"},
		"invalid task": {write("task.yaml", "apiVersion: sirocco.cloud/v1alpha1\nkind: Task\nmetadata: {name: t}\nspec: {startOnSuccess: [Bad_Name]}\n"), "apply task " + ns + "/t: "},
		"unknown kind": {write("kind.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"), "are Orca's CRDs installed?"},
	} {
		t.Run(name, func(t *testing.T) {
			err := cli.ApplyPaths(t.Context(), env.Client, ns, []string{tc.path}, &bytes.Buffer{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestInstallCRDsOverInstalledOnes applies the embedded CRDs where they exist
// already, as `orca run --install-crds` does on a cluster with Orca.
func TestInstallCRDsOverInstalledOnes(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, cli.InstallCRDs(t.Context(), env.Client, &out))
	assert.Equal(t, []string{
		"customresourcedefinition.apiextensions.k8s.io/actions.sirocco.cloud installed",
		"customresourcedefinition.apiextensions.k8s.io/ignitors.sirocco.cloud installed",
		"customresourcedefinition.apiextensions.k8s.io/tasks.sirocco.cloud installed",
	}, lines(out.String()))
}

func copyFile(t *testing.T, from, to string) {
	data, err := os.ReadFile(filepath.Join("testdata", from))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, data, 0o644))
}
