package v1alpha1_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withSpec returns validTask with lines added to its spec.
func withSpec(lines string) string {
	return strings.Replace(validTask, "  template:\n", lines+"  template:\n", 1)
}

// TestRunPolicyFieldsAreValidated applies Tasks that break one rule of spec.retry,
// activeDeadlineSeconds, maxRunSteps or the restart policy each, and checks that
// the API server names the field and the reason.
func TestRunPolicyFieldsAreValidated(t *testing.T) {
	ns := namespace(t)
	tests := []struct {
		name, manifest string
		want           []string
	}{
		{"restartPolicy OnFailure", strings.Replace(validTask, "restartPolicy: Never", "restartPolicy: OnFailure", 1),
			[]string{"spec.template", "restartPolicy must be Never", "retry with spec.retry"}},
		{"retry without limit", withSpec("  retry: {}\n"), []string{"spec.retry.limit: Required value"}},
		{"negative limit", withSpec("  retry: {limit: -1}\n"), []string{"spec.retry.limit", "greater than or equal to 0"}},
		{"limit over 1000", withSpec("  retry: {limit: 1001}\n"), []string{"spec.retry.limit", "less than or equal to 1000"}},
		{"backoff duration not a duration", withSpec("  retry:\n    limit: 1\n    backoff: {duration: soon}\n"),
			[]string{"spec.retry.backoff.duration", "should match"}},
		{"negative backoff duration", withSpec("  retry:\n    limit: 1\n    backoff: {duration: -1s}\n"),
			[]string{"spec.retry.backoff.duration", "should match"}},
		{"backoff over a day", withSpec("  retry:\n    limit: 1\n    backoff: {duration: 25h, maxDuration: 25h}\n"),
			[]string{"spec.retry.backoff.duration", "at most 24h", "spec.retry.backoff.maxDuration"}},
		{"maxDuration below duration", withSpec("  retry:\n    limit: 1\n    backoff: {duration: 1m, maxDuration: 30s}\n"),
			[]string{"spec.retry.backoff", "maxDuration must not be below duration"}},
		{"factor 0", withSpec("  retry:\n    limit: 1\n    backoff: {factor: 0}\n"),
			[]string{"spec.retry.backoff.factor", "greater than or equal to 1"}},
		{"unknown operator", withSpec("  retry:\n    limit: 1\n    onExitCodes: {operator: Is, values: [1]}\n"),
			[]string{"spec.retry.onExitCodes.operator", `Unsupported value: "Is"`}},
		{"no exit codes", withSpec("  retry:\n    limit: 1\n    onExitCodes: {operator: In, values: []}\n"),
			[]string{"spec.retry.onExitCodes.values", "at least 1 items"}},
		{"exit code 256", withSpec("  retry:\n    limit: 1\n    onExitCodes: {operator: NotIn, values: [256]}\n"),
			[]string{"spec.retry.onExitCodes.values[0]", "less than or equal to 255"}},
		{"exit code 0 In", withSpec("  retry:\n    limit: 1\n    onExitCodes: {operator: In, values: [0, 1]}\n"),
			[]string{"spec.retry.onExitCodes", "0 is a success"}},
		{"exit code twice", withSpec("  retry:\n    limit: 1\n    onExitCodes: {operator: In, values: [1, 1]}\n"),
			[]string{"spec.retry.onExitCodes.values[1]", "Duplicate value"}},
		{"unknown onDisruption", withSpec("  retry:\n    limit: 1\n    onDisruption: Retry\n"),
			[]string{"spec.retry.onDisruption", `Unsupported value: "Retry"`, `"Ignore", "Count", "Fail"`}},
		{"activeDeadlineSeconds 0", withSpec("  activeDeadlineSeconds: 0\n"),
			[]string{"spec.activeDeadlineSeconds", "greater than or equal to 1"}},
		{"maxRunSteps 0", withSpec("  maxRunSteps: 0\n"), []string{"spec.maxRunSteps", "greater than or equal to 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := apply(t, ns, tt.manifest)
			require.Error(t, err, "the API server accepted an invalid Task")
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestRunPolicyDefaultsAreShown(t *testing.T) {
	ns := namespace(t)
	_, err := apply(t, ns, withSpec("  retry: {limit: 3}\n  activeDeadlineSeconds: 3600\n  maxRunSteps: 50\n"))
	require.NoError(t, err)
	got, err := env.Kubectl(t.Context(), "get", "task", "t", "-n", ns, "-o", "jsonpath={.spec.retry}|{.spec.activeDeadlineSeconds}|{.spec.maxRunSteps}")
	require.NoError(t, err)
	assert.Equal(t, `{"backoff":{"duration":"10s","factor":2,"maxDuration":"6m"},"limit":3,"onDisruption":"Ignore"}|3600|50`, got)

	for i, spec := range []string{
		"  retry:\n    limit: 0\n",
		"  retry:\n    limit: 1000\n    backoff: {duration: 0s, factor: 1, maxDuration: 0s}\n    onExitCodes: {operator: NotIn, values: [0, 255]}\n    onDisruption: Fail\n",
		"  retry:\n    limit: 2\n    backoff: {duration: 1.5s, maxDuration: 24h}\n    onExitCodes: {operator: In, values: [1, 137]}\n    onDisruption: Count\n",
		"  maxRunSteps: 1000000\n  activeDeadlineSeconds: 1\n",
	} {
		manifest := strings.Replace(withSpec(spec), "name: t\n", "name: t"+string(rune('a'+i))+"\n", 1)
		_, err := apply(t, ns, manifest)
		assert.NoError(t, err, manifest)
	}
}
