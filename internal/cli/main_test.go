package cli_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/testenv"
)

var (
	env    *testenv.Env
	update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testenv.Main(m, func(e *testenv.Env) { env = e }))
}

// applyFile applies a file of testdata in the namespace.
func applyFile(t *testing.T, ns, file string) {
	t.Helper()
	_, err := env.Kubectl(t.Context(), "apply", "-n", ns, "-f", filepath.Join("testdata", file))
	require.NoError(t, err)
}

// golden compares got with testdata/<name>.golden, or rewrites it with -update.
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

// waitFor polls cond until it holds or 20s passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := testenv.Eventually(t.Context(), 20*time.Second, func(context.Context) (bool, error) {
		return cond(), nil
	})
	require.NoError(t, err, what)
}

// lines returns the non-empty lines of s.
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
