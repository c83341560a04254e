package app

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
)

// TestMachineryLinesAreDebug logs as controller-runtime does, through logr: its
// start-up lines show only at debug level, and then as debug lines.
func TestMachineryLinesAreDebug(t *testing.T) {
	for _, tt := range []struct {
		level slog.Level
		want  []string
		not   []string
	}{
		{slog.LevelInfo, []string{`level=INFO msg="pod created"`}, []string{"Starting workers", "Starting EventSource"}},
		{slog.LevelDebug, []string{`level=INFO msg="pod created"`, `level=DEBUG msg="Starting workers"`, `level=DEBUG msg="Starting EventSource"`}, nil},
	} {
		var out bytes.Buffer
		log := logr.FromSlogHandler(newHandler(&out, "text", tt.level)).WithValues("controller", "scheduler")
		log.Info("Starting EventSource", "source", "kind source: *v1alpha1.Ignitor")
		log.Info("Starting workers", "worker count", 4)
		log.Info("pod created", "pod", "task1-abc")
		for _, w := range tt.want {
			assert.Contains(t, out.String(), w, "at level %s", tt.level)
		}
		for _, n := range tt.not {
			assert.NotContains(t, out.String(), n, "at level %s", tt.level)
		}
		assert.Contains(t, out.String(), "controller=scheduler", "attributes are kept")
	}
}
