package v1alpha1_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

func TestKubectlGetTasksPrintsTheContractColumns(t *testing.T) {
	ns := namespace(t)
	fix := strings.NewReplacer("continerName", "c", "YOUR-PLUGIN-NAME", "notify")
	for _, f := range []string{"task1.yaml", "task2.yaml"} {
		_, err := apply(t, ns, fix.Replace(seed(t, f)))
		require.NoError(t, err)
	}

	success := metav1.NewTime(time.Date(2020, 2, 7, 16, 15, 14, 0, time.UTC))
	failure := metav1.NewTime(time.Date(2020, 2, 7, 16, 13, 32, 0, time.UTC))
	var task orcav1.Task
	require.NoError(t, env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "task1"}, &task))
	task.Status = orcav1.TaskStatus{State: orcav1.TaskPending, LastSuccess: &success, LastFailure: &failure, FailuresCount: 3}
	require.NoError(t, env.Client.Status().Update(t.Context(), &task))

	out, err := env.Kubectl(t.Context(), "get", "tasks", "-n", ns)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	assert.Equal(t,
		[]string{"NAME", "STATE", "LASTSUCCESS", "LASTFAILURE", "FAILURESCOUNT", "IGNITORS", "ONSUCCESSTASK", "ONFAILURETASK"},
		strings.Fields(lines[0]))
	assert.Equal(t,
		[]string{"task1", "Pending", "2020-02-07T16:15:14Z", "2020-02-07T16:13:32Z", "3", `["ignitor1"]`, "", `["task1"]`},
		columns(lines[0], lines[1]))
	// A Task that never ran reads Pending with no failures, with no status
	// written: the API server defaults them.
	assert.Equal(t, []string{"task2", "Pending", "", "", "0", "", `["task1"]`, ""},
		columns(lines[0], lines[2]))
}

func TestKubectlGetIgnitorsAndActionsColumns(t *testing.T) {
	ns := namespace(t)
	_, err := apply(t, ns, seed(t, "ignitor1.yaml"))
	require.NoError(t, err)
	fired := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	var ig orcav1.Ignitor
	require.NoError(t, env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "ignitor1"}, &ig))
	ig.Status.LastFired = &fired
	require.NoError(t, env.Client.Status().Update(t.Context(), &ig))

	out, err := env.Kubectl(t.Context(), "get", "ignitors", "-n", ns)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	assert.Equal(t, []string{"NAME", "SCHEDULED", "LASTFIRED", "NEXTFIRE"}, strings.Fields(lines[0]))
	assert.Equal(t, []string{"ignitor1", "NOW", "2026-01-02T03:04:05Z", ""}, columns(lines[0], lines[1]))

	_, err = apply(t, ns, "apiVersion: sirocco.cloud/v1alpha1\nkind: Action\nmetadata:\n  name: notify\nspec:\n  log: {}\n")
	require.NoError(t, err)
	out, err = env.Kubectl(t.Context(), "get", "actions.sirocco.cloud", "-n", ns)
	require.NoError(t, err)
	assert.Equal(t, []string{"NAME", "LASTRUN", "LASTERROR"}, strings.Fields(strings.Split(out, "\n")[0]))
}

// columns cuts a row of kubectl's table output at the columns of its header, so
// that empty cells stay in place.
func columns(header, row string) []string {
	var starts []int
	for i := range header {
		if header[i] != ' ' && (i == 0 || header[i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	out := make([]string, len(starts))
	for i, start := range starts {
		end := len(row)
		if i+1 < len(starts) {
			end = min(starts[i+1], len(row))
		}
		if start < len(row) {
			out[i] = strings.TrimSpace(row[start:end])
		}
	}
	return out
}
