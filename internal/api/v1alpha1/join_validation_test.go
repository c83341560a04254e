package v1alpha1_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// joinTask is validTask started by a join instead of an ignition.
func joinTask(startWhen string) string {
	return strings.Replace(validTask, "  startOnIgnition: [ignitor1]\n", "  startWhen:\n"+startWhen, 1)
}

// TestInvalidJoinsAreRejected checks the rules the API server applies to
// startWhen at apply time.
func TestInvalidJoinsAreRejected(t *testing.T) {
	ns := namespace(t)
	tests := []struct {
		name     string
		manifest string
		want     []string
	}{{
		name:     "no condition at all",
		manifest: joinTask("    timeout: 1h\n"),
		want:     []string{"spec.startWhen", "exactly one of condition, allSucceeded, anySucceeded and allDone"},
	}, {
		name:     "a condition and a shorthand",
		manifest: joinTask("    condition: a.succeeded\n    allSucceeded: [a, b]\n"),
		want:     []string{"spec.startWhen", "exactly one of"},
	}, {
		name:     "an empty condition",
		manifest: joinTask("    condition: \"\"\n"),
		want:     []string{"spec.startWhen.condition", "at least 1 chars"},
	}, {
		name:     "an empty shorthand",
		manifest: joinTask("    allDone: []\n"),
		want:     []string{"spec.startWhen.allDone", "at least 1 items"},
	}, {
		name:     "a shorthand naming an invalid name",
		manifest: joinTask("    anySucceeded: [a, B_2]\n"),
		want:     []string{"spec.startWhen.anySucceeded[1]", `"B_2" is not a valid object name`},
	}, {
		name:     "a timeout of a week",
		manifest: joinTask("    allSucceeded: [a, b]\n    timeout: 168h\n"),
		want:     []string{"spec.startWhen.timeout", "between 1s and 144h"},
	}, {
		name:     "a timeout that is no duration",
		manifest: joinTask("    allSucceeded: [a, b]\n    timeout: soon\n"),
		want:     []string{"spec.startWhen.timeout"},
	}, {
		name:     "an unknown timeout policy",
		manifest: joinTask("    allSucceeded: [a, b]\n    onTimeout: Retry\n"),
		want:     []string{"spec.startWhen.onTimeout", `Unsupported value: "Retry"`},
	}, {
		name:     "a join with startOnSuccess",
		manifest: strings.Replace(joinTask("    allSucceeded: [a, b]\n"), "spec:\n", "spec:\n  startOnSuccess: [c]\n", 1),
		want:     []string{"startWhen cannot be combined with startOnSuccess or startOnFailure"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := apply(t, ns, tt.manifest)
			require.Error(t, err, "the API server accepted an invalid join")
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestValidJoinsAreAccepted guards the rules above against rejecting what is valid.
func TestValidJoinsAreAccepted(t *testing.T) {
	ns := namespace(t)
	for i, startWhen := range []string{
		"    condition: a.succeeded && (b.succeeded || b.failed)\n",
		"    condition: '!a.failed'\n    timeout: 90s\n    onTimeout: Start\n",
		"    allSucceeded: [a, b.c]\n    timeout: 144h\n    onTimeout: Fail\n",
		"    anySucceeded: [a]\n    onTimeout: Skip\n",
		"    allDone: [a, b]\n",
	} {
		manifest := strings.Replace(joinTask(startWhen), "name: t\n", "name: j"+string(rune('0'+i))+"\n", 1)
		manifest = strings.Replace(manifest, "spec:\n  startWhen", "spec:\n  startOnIgnition: [go]\n  startWhen", 1)
		_, err := apply(t, ns, manifest)
		assert.NoError(t, err, manifest)
	}
}
