package v1alpha1_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *testenv.Env) { env = e }))
}

func seed(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "seed", name))
	require.NoError(t, err)
	return string(b)
}

func namespace(t *testing.T) string { return env.Namespace(t) }

func apply(t *testing.T, ns, manifest string) (string, error) {
	t.Helper()
	return env.KubectlInput(t.Context(), manifest, "apply", "-n", ns, "-f", "-")
}

func TestSeedIgnitorIsAcceptedAsWritten(t *testing.T) {
	ns := namespace(t)
	out, err := apply(t, ns, seed(t, "ignitor1.yaml"))
	require.NoError(t, err)
	assert.Contains(t, out, "ignitor.sirocco.cloud/ignitor1 created")

	got, err := env.Kubectl(t.Context(), "get", "ignitor", "ignitor1", "-n", ns, "-o",
		"jsonpath={.spec.scheduled}|{.spec.catchUp}|{.spec.maxCatchUpRuns}|{.spec.suspend}|{.spec.startingDeadlineSeconds}")
	require.NoError(t, err)
	assert.Equal(t, "NOW|Latest|1||", got, "scheduled, and the defaults of catchUp, maxCatchUpRuns, suspend and startingDeadlineSeconds")
}

func TestSeedTasksAreRejectedForTheirNames(t *testing.T) {
	ns := namespace(t)

	_, err := apply(t, ns, seed(t, "task1.yaml"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"continerName1" is not a valid container name`)
	assert.Contains(t, err.Error(), "spec.template.spec.containers[0].name")
	assert.Contains(t, err.Error(), `"YOUR-PLUGIN-NAME" is not a valid object name`)
	assert.Contains(t, err.Error(), "spec.failureActions[0]")

	_, err = apply(t, ns, seed(t, "task2.yaml"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"continerName2" is not a valid container name`)
}

func TestSeedTasksAreAcceptedWithLowercaseNames(t *testing.T) {
	ns := namespace(t)
	fix := strings.NewReplacer("continerName", "container-name-", "YOUR-PLUGIN-NAME", "your-plugin-name")

	out, err := apply(t, ns, fix.Replace(seed(t, "task1.yaml")))
	require.NoError(t, err)
	assert.Contains(t, out, "task.sirocco.cloud/task1 created")
	out, err = apply(t, ns, fix.Replace(seed(t, "task2.yaml")))
	require.NoError(t, err)
	assert.Contains(t, out, "task.sirocco.cloud/task2 created")

	// The empty lists (`startOnSuccess:` with nothing after it) are stored as absent.
	got, err := env.Kubectl(t.Context(), "get", "task", "task2", "-n", ns, "-o",
		"jsonpath={.spec.startOnSuccess}|{.spec.startOnIgnition}|{.spec.template.spec.containers[0].name}")
	require.NoError(t, err)
	assert.Equal(t, `["task1"]||container-name-2`, got)
}
