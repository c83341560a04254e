package join_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/join"
)

var (
	ok   = join.Result{Outcome: join.Succeeded, Message: "7"}
	ko   = join.Result{Outcome: join.Failed, ExitCode: 2, Reason: "Error", Message: "boom"}
	skip = join.Result{Outcome: join.Skipped}
)

// TestEvalIsThreeValued checks that a condition decides as soon as the Tasks
// that reported settle it, whatever the others do, and waits otherwise.
func TestEvalIsThreeValued(t *testing.T) {
	tests := []struct {
		cond    string
		results map[string]join.Result
		want    join.Verdict
	}{
		{"a.succeeded && b.succeeded", nil, join.Undecided},
		{"a.succeeded && b.succeeded", map[string]join.Result{"a": ok}, join.Undecided},
		{"a.succeeded && b.succeeded", map[string]join.Result{"a": ko}, join.False},
		{"a.succeeded && b.succeeded", map[string]join.Result{"b": skip}, join.False},
		{"a.succeeded && b.succeeded", map[string]join.Result{"a": ok, "b": ok}, join.True},
		{"a.succeeded || b.succeeded", map[string]join.Result{"b": ok}, join.True},
		{"a.succeeded || b.succeeded", map[string]join.Result{"a": ko}, join.Undecided},
		{"a.succeeded || b.succeeded", map[string]join.Result{"a": ko, "b": skip}, join.False},
		{"!a.failed", nil, join.Undecided},
		{"!a.failed", map[string]join.Result{"a": ok}, join.True},
		{"!a.failed", map[string]join.Result{"a": skip}, join.True},
		{"!a.failed", map[string]join.Result{"a": ko}, join.False},
		{"a.succeeded && (b.succeeded || b.failed)", map[string]join.Result{"b": ko}, join.Undecided},
		{"a.succeeded && (b.succeeded || b.failed)", map[string]join.Result{"a": ok, "b": ko}, join.True},
		{`tasks["c.d"].skipped || load_data.done`, map[string]join.Result{"c.d": skip}, join.True},
		{`tasks["c.d"].skipped || load_data.done`, map[string]join.Result{"c.d": ok}, join.Undecided},
		{`tasks["c.d"].skipped || load_data.done`, map[string]join.Result{"load-data": ko}, join.True},
		{`a.exitCode == 2 && a.reason == "Error"`, map[string]join.Result{"a": ko}, join.True},
		{`int(a.message) > 5 || b.succeeded`, map[string]join.Result{"a": ok}, join.True},
		{`int(a.message) > 5 || b.succeeded`, map[string]join.Result{"a": ko}, join.Undecided}, // an error b may make moot
		// A list with an unknown element is unknown: a macro over Tasks waits for all.
		{`[a, b].all(x, x.succeeded)`, map[string]join.Result{"a": ko}, join.Undecided},
		{`[a, b].all(x, x.succeeded)`, map[string]join.Result{"a": ko, "b": ok}, join.False},
		{`[a, b].all(x, x.succeeded)`, map[string]join.Result{"a": ok}, join.Undecided},
	}
	for _, tt := range tests {
		p, err := join.Compile(cond(tt.cond))
		require.NoError(t, err, tt.cond)
		got, err := p.Eval(tt.results)
		require.NoError(t, err, tt.cond)
		assert.Equal(t, tt.want, got, "%s with %v", tt.cond, tt.results)
	}
}

func TestEvalFailsOnlyWhenEverythingIsKnown(t *testing.T) {
	p, err := join.Compile(cond(`int(a.message) > 5 || b.succeeded`))
	require.NoError(t, err)
	_, err = p.Eval(map[string]join.Result{"a": ko, "b": ko})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the condition failed")
}

func TestInputsHoldTheKnownResultsWithinTheLimit(t *testing.T) {
	p, err := join.Compile(cond("a.succeeded && b.succeeded || c.succeeded"))
	require.NoError(t, err)
	var got map[string]map[string]any
	require.NoError(t, json.Unmarshal([]byte(join.Inputs(p, map[string]join.Result{"a": ok, "b": ko})), &got))
	assert.Equal(t, map[string]map[string]any{
		"a": {"result": "succeeded", "message": "7"},
		"b": {"result": "failed", "message": "boom", "exitCode": float64(2), "reason": "Error"},
	}, got, "c has no result in the run: it is left out")

	// Past the limit, the longest messages are cut, and marked.
	big := map[string]join.Result{}
	for _, n := range []string{"a", "b", "c"} {
		big[n] = join.Result{Outcome: join.Succeeded, Message: strings.Repeat("\x01é", 12<<10)}
	}
	big["c"] = join.Result{Outcome: join.Succeeded, Message: "short"}
	in := join.Inputs(p, big)
	assert.LessOrEqual(t, len(in), join.MaxInputs)
	require.NoError(t, json.Unmarshal([]byte(in), &got))
	assert.Equal(t, true, got["a"]["messageTruncated"])
	assert.Equal(t, "short", got["c"]["message"])
	assert.Nil(t, got["c"]["messageTruncated"])
}
