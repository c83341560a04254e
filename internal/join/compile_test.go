package join_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/join"
)

func cond(s string) *orcav1.StartWhen { return &orcav1.StartWhen{Condition: s} }

func names(s ...string) []orcav1.ObjectName {
	out := make([]orcav1.ObjectName, len(s))
	for i, n := range s {
		out[i] = orcav1.ObjectName(n)
	}
	return out
}

func TestCompileFindsTheTasksAndWhatItReads(t *testing.T) {
	tests := []struct {
		name  string
		when  *orcav1.StartWhen
		tasks []string
		op    join.Op
		reads map[string]string
	}{
		{"and", cond("a.succeeded && b.succeeded"), []string{"a", "b"}, join.OpAnd, map[string]string{"a": "succeeded", "b": "succeeded"}},
		{"or with a failure", cond("a.succeeded || b.failed"), []string{"a", "b"}, join.OpOr, map[string]string{"a": "succeeded", "b": "failed"}},
		{"not", cond("!a.failed"), []string{"a"}, join.OpNot, map[string]string{"a": "failed"}},
		{"mixed", cond("a.succeeded && (b.succeeded || b.failed)"), []string{"a", "b"}, join.OpAnd, map[string]string{"a": "succeeded", "b": "result"}},
		{"dashes as underscores", cond("load_data.succeeded && x2.done"), []string{"load-data", "x2"}, join.OpAnd, map[string]string{"load-data": "succeeded", "x2": "done"}},
		{"any name through tasks", cond(`tasks["load.v2"].succeeded || tasks.b.skipped`), []string{"b", "load.v2"}, join.OpOr, map[string]string{"load.v2": "succeeded", "b": "skipped"}},
		{"messages", cond(`a.message == "ok" && int(b.message) > 3`), []string{"a", "b"}, join.OpAnd, map[string]string{"a": "result", "b": "result"}},
		{"a macro over Tasks", cond(`[a, b, tasks["c.d"]].exists(x, x.failed)`), []string{"a", "b", "c.d"}, join.OpExpr, map[string]string{"a": "result", "b": "result", "c.d": "result"}},
		{"all succeeded", &orcav1.StartWhen{AllSucceeded: names("a", "b.c")}, []string{"a", "b.c"}, join.OpAnd, map[string]string{"a": "succeeded", "b.c": "succeeded"}},
		{"any succeeded", &orcav1.StartWhen{AnySucceeded: names("a", "b")}, []string{"a", "b"}, join.OpOr, map[string]string{"a": "succeeded", "b": "succeeded"}},
		{"all done", &orcav1.StartWhen{AllDone: names("a", "b")}, []string{"a", "b"}, join.OpAllDone, map[string]string{"a": "done", "b": "done"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := join.Compile(tt.when)
			require.NoError(t, err)
			assert.Equal(t, tt.tasks, p.Tasks)
			assert.Equal(t, tt.op, p.Op)
			assert.Equal(t, tt.reads, p.Reads)
		})
	}
}

func TestCompileSaysWhatIsWrong(t *testing.T) {
	tests := []struct{ cond, want string }{
		{"a.succeeded &&", "does not parse"},
		{"a.succeded", "undefined field 'succeded'"},
		{"a.exitCode", "must be true or false, not a int"},
		{"load-data.succeeded", "with '_', load_data for load-data"},
		{"tasks.size() > 0", `write tasks["name"]`},
		{"tasks[a.message].succeeded", `write tasks["name"]`},
		{"A.succeeded", `"A" is not a Task name`},
		{"true", "names no Task"},
		{"  ", "empty"},
		{manyTasks(33), "names 33 Tasks, more than 32"},
	}
	for _, tt := range tests {
		_, err := join.Compile(cond(tt.cond))
		require.Error(t, err, tt.cond)
		assert.Contains(t, err.Error(), tt.want, tt.cond)
	}
}

func manyTasks(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = "t" + strings.Repeat("x", i) + ".succeeded"
	}
	return strings.Join(parts, " && ")
}

func TestCompileCachesBySource(t *testing.T) {
	a, err := join.Compile(cond("a.succeeded && b.succeeded"))
	require.NoError(t, err)
	b, err := join.Compile(cond("a.succeeded && b.succeeded"))
	require.NoError(t, err)
	assert.Same(t, a, b)
	src, _ := join.Source(&orcav1.StartWhen{AllSucceeded: names("a", "b")})
	assert.Equal(t, `tasks["a"].succeeded && tasks["b"].succeeded`, src)
}
