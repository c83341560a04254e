package v1alpha1_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConcurrencyAndHistoryFieldsAreValidatedAtApplyTime applies Tasks whose
// concurrency or history fields are out of range, and the values at the edges.
func TestConcurrencyAndHistoryFieldsAreValidatedAtApplyTime(t *testing.T) {
	ns := namespace(t)
	with := func(name, fields string) string {
		return strings.Replace(strings.Replace(validTask, "name: t\n", "name: "+name+"\n", 1),
			"  startOnIgnition: [ignitor1]\n", "  startOnIgnition: [ignitor1]\n"+fields, 1)
	}
	for _, tt := range []struct {
		name, fields string
		want         []string
	}{
		{"unknown policy", "  concurrencyPolicy: Queue\n", []string{"spec.concurrencyPolicy", `Unsupported value: "Queue"`, `"Allow", "Forbid", "Replace"`}},
		{"policy in lowercase", "  concurrencyPolicy: forbid\n", []string{"spec.concurrencyPolicy", `Unsupported value: "forbid"`}},
		{"parallelism 0", "  parallelism: 0\n", []string{"spec.parallelism", "should be greater than or equal to 1"}},
		{"parallelism over 1000", "  parallelism: 1001\n", []string{"spec.parallelism", "should be less than or equal to 1000"}},
		{"negative ttl", "  ttlSecondsAfterFinished: -1\n", []string{"spec.ttlSecondsAfterFinished", "should be greater than or equal to 0"}},
		{"negative successful limit", "  successfulRunsHistoryLimit: -1\n", []string{"spec.successfulRunsHistoryLimit", "should be greater than or equal to 0"}},
		{"negative failed limit", "  failedRunsHistoryLimit: -2\n", []string{"spec.failedRunsHistoryLimit", "should be greater than or equal to 0"}},
		{"parallelism as text", "  parallelism: two\n", []string{"spec.parallelism", "must be of type integer"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := apply(t, ns, with("bad", tt.fields))
			require.Error(t, err, "the API server accepted %q", tt.fields)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	for i, fields := range []string{
		"  concurrencyPolicy: Allow\n  parallelism: 1000\n",
		"  concurrencyPolicy: Forbid\n",
		"  concurrencyPolicy: Replace\n  parallelism: 2\n",
		"  parallelism: 1\n",
		"  ttlSecondsAfterFinished: 0\n  successfulRunsHistoryLimit: 0\n  failedRunsHistoryLimit: 0\n",
		"  ttlSecondsAfterFinished: 86400\n  successfulRunsHistoryLimit: 100000\n  failedRunsHistoryLimit: 50\n",
	} {
		_, err := apply(t, ns, with("ok-"+string(rune('a'+i)), fields))
		assert.NoError(t, err, fields)
	}
}
