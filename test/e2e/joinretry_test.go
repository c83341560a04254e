package e2e_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
)

// TestJoinsSeeFinalOutcomesAndRetryWithTheirInputs: a retried upstream Task's
// failed attempt is not a result for a join, a joined Task's retry gets the same
// ORCA_INPUTS, and a join's start is a step of the run for the loop guard.
func TestJoinsSeeFinalOutcomesAndRetryWithTheirInputs(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	startOthers(t, srv.URL())
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	skips := collectEvents(t, srv.URL(), bus.SubjectTaskSkipped+".>")
	halts := collectEvents(t, srv.URL(), bus.SubjectTaskHalted+".>")
	const retry = "\n  retry: {limit: 1, backoff: {duration: 0s}}"
	apply(t, ns, joinTasks(
		"a: startOnIgnition: [go]"+retry,
		"b: startOnIgnition: [go]",
		"d: startWhen: {allSucceeded: [a, b]}"+retry,
		"after-d: startWhen: {condition: d.succeeded || d.failed}",
		// a1, a2, b, d1 and d2 are five steps: a sixth is refused.
		"capped: startWhen: {condition: d.done}\n  maxRunSteps: 5",
	))
	fire(t, srv.URL(), ns, "go", "r1", "")

	// a's first attempt fails: a retrying event, which the join does not see.
	a1 := waitRunPod(t, ns, "a", "r1")
	require.NoError(t, kubelet().End(t.Context(), key(a1), 1, "a broke once"))
	a2 := waitNewPod(t, ns, "a", a1)
	assert.Equal(t, "2", attemptEnv(a2))
	require.NoError(t, kubelet().Succeed(t.Context(), key(waitRunPod(t, ns, "b", "r1")), "from b"))
	consumerSettled(t, srv.URL())
	assert.Empty(t, runPods(t, ns, "d", "r1"), "d waits for a's final outcome")
	assert.Zero(t, skips.count(bus.SubjectTaskSkipped+"."+ns+".d", "r1"), "a's retried failure skips nothing")

	require.NoError(t, kubelet().Succeed(t.Context(), key(a2), "from a"))
	d1 := waitRunPod(t, ns, "d", "r1")
	inputs := map[string]map[string]any{"a": {"result": "succeeded", "message": "from a"}, "b": {"result": "succeeded", "message": "from b"}}
	assert.Equal(t, inputs, inputsOf(t, d1))

	// d's first attempt fails: its retry runs with the same inputs, and the joins
	// after d wait for its final outcome.
	require.NoError(t, kubelet().End(t.Context(), key(d1), 2, "d broke once"))
	d2 := waitNewPod(t, ns, "d", d1)
	env := envOf(d2.Spec.Containers[0])
	assert.Equal(t, "2", env[orcav1.EnvAttempt])
	assert.Equal(t, "from a", env[orcav1.EnvData])
	assert.Equal(t, inputs, inputsOf(t, d2), "a retried join keeps its ORCA_INPUTS")
	consumerSettled(t, srv.URL())
	assert.Empty(t, taskPods(t, ns, "after-d"), "d's retried failure is not its result")

	require.NoError(t, kubelet().Succeed(t.Context(), key(d2), "from d"))
	after := waitRunPod(t, ns, "after-d", "r1")
	assert.Equal(t, map[string]map[string]any{"d": {"result": "succeeded", "message": "from d"}}, inputsOf(t, after))

	// The loop guard counted the join's starts: capped's is the sixth step.
	m := halts.wait(t, bus.SubjectTaskHalted+"."+ns+".capped", "r1")
	var h bus.TaskHalt
	require.NoError(t, json.Unmarshal(m.Data, &h))
	assert.Equal(t, int64(5), h.Limit)
	assert.GreaterOrEqual(t, h.Steps, int64(5))
	consumerSettled(t, srv.URL())
	assert.Empty(t, taskPods(t, ns, "capped"))
	assert.Len(t, taskPods(t, ns, "after-d"), 1)
}
