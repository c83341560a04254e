// Package ha_test runs Orca as it runs replicated: the four services as processes
// built from ./cmd, two of each, against a real kube-apiserver, a nats-server or a
// cluster of three; it kills leaders, replicas and NATS nodes while events flow,
// and starts the services before the API server is there.
package ha_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sirocco-cloud/orca/internal/testenv"
)

var (
	env *testenv.Env
	// binDir holds the binaries, built once for the package.
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "orca-ha-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := testenv.Main(m, func(e *testenv.Env) { env = e })
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// binary returns the path of a binary of the services (or nats-server), built
// the first time it is asked for.
func binary(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		// No symbol tables: the link is the slow part of the build.
		args := []string{"build", "-ldflags=-s -w", "-o", binDir + "/", "github.com/nats-io/nats-server/v2"}
		for _, svc := range services {
			args = append(args, "./cmd/"+svc)
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = testenv.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go %v: %w\n%s", args, err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}
