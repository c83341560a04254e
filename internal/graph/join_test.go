package graph_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/graph"
)

// joins has a diamond (AND), an OR with a failure, a NOT, an expression, and a
// condition that does not compile.
func joins() []orcav1.Task {
	return []orcav1.Task{
		task("a", orcav1.TaskSpec{StartOnIgnition: names("go")}),
		task("b", orcav1.TaskSpec{StartOnSuccess: names("a")}),
		task("c", orcav1.TaskSpec{StartOnSuccess: names("a")}),
		task("d", orcav1.TaskSpec{StartWhen: &orcav1.StartWhen{AllSucceeded: names("b", "c")}}),
		task("e", orcav1.TaskSpec{StartWhen: &orcav1.StartWhen{Condition: "b.succeeded || c.failed"}}),
		task("f", orcav1.TaskSpec{StartWhen: &orcav1.StartWhen{Condition: "!d.failed"}}),
		task("g", orcav1.TaskSpec{StartWhen: &orcav1.StartWhen{Condition: `int(d.message) > 3 == tasks["x.y"].skipped`}}),
		task("h", orcav1.TaskSpec{StartWhen: &orcav1.StartWhen{Condition: "a.succeded"}}),
	}
}

func TestGraphDrawsJoins(t *testing.T) {
	g := graph.Build(joins(), nil)
	for _, format := range []string{graph.FormatMermaid, graph.FormatDOT} {
		var out bytes.Buffer
		require.NoError(t, g.Write(&out, format))
		golden(t, "joins."+format, out.String())
	}
	ops := map[string]string{}
	for _, n := range g.Nodes {
		if n.Kind == graph.NodeJoin {
			ops[n.Name] = n.Op
		}
	}
	assert.Equal(t, map[string]string{"d": "AND", "e": "OR", "f": "NOT", "g": "CEL", "h": "invalid"}, ops)
	assert.Empty(t, g.Starts(graph.EdgeSuccess, "b"), "a join starts nothing on one result")

	nodes, _ := g.Layout()
	col := map[string]int{}
	for _, n := range nodes {
		col[n.ID] = n.Column
	}
	assert.Equal(t, 3, col["join_d"], "after b and c")
	assert.Equal(t, 4, col["task_d"], "after its join")
}
