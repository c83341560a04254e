package sandbox

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPrepareStartsCleanAndOnce: what an earlier, killed run left (files and a
// process naming the folder) is gone, and a second sandbox in the same folder is
// refused while the first holds it.
func TestPrepareStartsCleanAndOnce(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "etcd"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "etcd", "member"), []byte("old"), 0o600))
	// A leftover process whose command line names a path in the folder, as
	// etcd's --data-dir does.
	left := exec.Command("sh", "-c", "sleep 300", "leftover", filepath.Join(dir, "etcd"))
	require.NoError(t, left.Start())
	exited := make(chan struct{})
	go func() { _ = left.Wait(); close(exited) }()
	t.Cleanup(func() { _ = left.Process.Kill() })

	unlock, err := prepare(dir, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer unlock()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the leftover process still runs")
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{lockName}, names, "only the lock is left")

	_, err = prepare(dir, slog.New(slog.DiscardHandler))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "another sandbox runs in "+dir)
}
