package graph_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/graph"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

func names(s ...string) []orcav1.ObjectName {
	out := make([]orcav1.ObjectName, len(s))
	for i, n := range s {
		out[i] = orcav1.ObjectName(n)
	}
	return out
}

func task(name string, spec orcav1.TaskSpec) orcav1.Task {
	return orcav1.Task{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
}

func ignitor(name, scheduled string) orcav1.Ignitor {
	return orcav1.Ignitor{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: orcav1.IgnitorSpec{Scheduled: scheduled}}
}

// mixed has every kind of node, names that are not identifiers, and edges given
// in no order.
func mixed() ([]orcav1.Task, []orcav1.Ignitor) {
	return []orcav1.Task{
			task("report", orcav1.TaskSpec{StartOnSuccess: names("load.v2", "extract"), StartOnFailure: names("cleanup")}),
			task("extract", orcav1.TaskSpec{StartOnIgnition: names("nightly", "webhook-push")}),
			task("load.v2", orcav1.TaskSpec{StartOnSuccess: names("extract"), StartOnFailure: names("load.v2", "extract")}),
			task("load-v2", orcav1.TaskSpec{StartOnIgnition: names("webhook-push", "webhook-push")}),
		}, []orcav1.Ignitor{
			nightly(),
			ignitor("unused", "NOW"),
		}
}

// nightly fires on two schedules, and is suspended.
func nightly() orcav1.Ignitor {
	ig := ignitor("nightly", "0 2 * * *")
	ig.Spec.Schedules = []orcav1.Schedule{"30 14 * * 6"}
	ig.Spec.Suspend = true
	return ig
}

func TestGraphShowsExternalIgnitionsAndMissingTasks(t *testing.T) {
	tasks, ignitors := mixed()
	g := graph.Build(tasks, ignitors)
	for _, format := range []string{graph.FormatMermaid, graph.FormatDOT} {
		var out bytes.Buffer
		require.NoError(t, g.Write(&out, format))
		golden(t, "mixed."+format, out.String())
	}
	// The same objects in another order print the same graph.
	tasks[0], tasks[3] = tasks[3], tasks[0]
	ignitors[0], ignitors[1] = ignitors[1], ignitors[0]
	assert.Equal(t, g, graph.Build(tasks, ignitors))
	require.Error(t, g.Write(&bytes.Buffer{}, "svg"))
}

func TestStartsFollowsTheEdgesOfOneKind(t *testing.T) {
	g := graph.Build(mixed())
	assert.Equal(t, []string{"extract", "load-v2"}, g.Starts(graph.EdgeIgnition, "webhook-push"))
	assert.Equal(t, []string{"load.v2", "report"}, g.Starts(graph.EdgeSuccess, "extract"))
	assert.Equal(t, []string{"load.v2"}, g.Starts(graph.EdgeFailure, "extract"))
	assert.Equal(t, []string{"report"}, g.Starts(graph.EdgeFailure, "cleanup"), "a missing Task's edges count")
	assert.Empty(t, g.Starts(graph.EdgeIgnition, "extract"), "a Task is not an ignition")
	assert.Empty(t, g.Starts(graph.EdgeSuccess, "nightly"), "an ignition is not a Task")
}

func TestLayoutPlacesNodesAfterWhatStartsThem(t *testing.T) {
	tests := []struct {
		name     string
		tasks    []orcav1.Task
		ignitors []orcav1.Ignitor
		want     map[string][2]int // node id -> column, row
		back     []string          // "from>to" of the edges set aside
	}{{
		name: "seed: a retry loop is a back edge",
		tasks: []orcav1.Task{
			task("task1", orcav1.TaskSpec{StartOnIgnition: names("ignitor1"), StartOnFailure: names("task1")}),
			task("task2", orcav1.TaskSpec{StartOnSuccess: names("task1")}),
		},
		ignitors: []orcav1.Ignitor{ignitor("ignitor1", "NOW")},
		want:     map[string][2]int{"ignition_ignitor1": {0, 0}, "task_task1": {1, 0}, "task_task2": {2, 0}},
		back:     []string{"task_task1>task_task1"},
	}, {
		name: "a diamond: the longest path sets the column",
		tasks: []orcav1.Task{
			task("a", orcav1.TaskSpec{StartOnIgnition: names("go")}),
			task("b", orcav1.TaskSpec{StartOnSuccess: names("a")}),
			task("c", orcav1.TaskSpec{StartOnFailure: names("a")}),
			task("d", orcav1.TaskSpec{StartOnSuccess: names("b", "c", "a")}),
			task("lonely", orcav1.TaskSpec{}),
		},
		want: map[string][2]int{
			"ignition_go": {0, 0}, "task_lonely": {0, 1},
			"task_a": {1, 0}, "task_b": {2, 0}, "task_c": {2, 1}, "task_d": {3, 0},
		},
	}, {
		name: "a cycle of two Tasks",
		tasks: []orcav1.Task{
			task("ping", orcav1.TaskSpec{StartOnIgnition: names("start"), StartOnSuccess: names("pong")}),
			task("pong", orcav1.TaskSpec{StartOnSuccess: names("ping")}),
		},
		want: map[string][2]int{"ignition_start": {0, 0}, "task_ping": {1, 0}, "task_pong": {2, 0}},
		back: []string{"task_pong>task_ping"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := graph.Build(tt.tasks, tt.ignitors)
			nodes, back := g.Layout()
			got := map[string][2]int{}
			for _, n := range nodes {
				got[n.ID] = [2]int{n.Column, n.Row}
			}
			assert.Equal(t, tt.want, got)
			var gotBack []string
			for i := range g.Edges {
				if back[i] {
					gotBack = append(gotBack, g.Edges[i].From+">"+g.Edges[i].To)
				}
			}
			assert.Equal(t, tt.back, gotBack)
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run the test with -update to write %s", path)
	require.Equal(t, string(want), got, "output differs from %s (run with -update to accept it)", path)
}
