package v1alpha1_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/testenv"
)

// TestGeneratedFilesAreUpToDate regenerates the deepcopy code and the CRDs into a
// temporary folder, as `make generate manifests` does, and compares them with the
// committed files.
func TestGeneratedFilesAreUpToDate(t *testing.T) {
	root := testenv.RepoRoot()
	out := t.TempDir()
	run := func(args ...string) {
		cmd := exec.CommandContext(t.Context(), "go", args...)
		cmd.Dir = root
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %v: %s", args, b)
	}
	run("tool", "controller-gen", "object", "paths=./internal/api/...", "output:object:dir="+out)
	run("tool", "controller-gen", "crd:generateEmbeddedObjectMeta=true", "paths=./internal/api/...", "output:crd:dir="+out)
	run("run", "./hack/taskcrd", filepath.Join(out, "sirocco.cloud_tasks.yaml"))
	files := map[string]string{
		"zz_generated.deepcopy.go":    "internal/api/v1alpha1/zz_generated.deepcopy.go",
		"sirocco.cloud_tasks.yaml":    "deploy/kustomize/crd/sirocco.cloud_tasks.yaml",
		"sirocco.cloud_ignitors.yaml": "deploy/kustomize/crd/sirocco.cloud_ignitors.yaml",
		"sirocco.cloud_actions.yaml":  "deploy/kustomize/crd/sirocco.cloud_actions.yaml",
	}
	for role, pkg := range map[string]string{
		"scheduler": "scheduler", "dispatcher": "dispatcher", "watcher": "watcher", "actions": "actions",
		"leader-election": "app",
	} {
		dir := filepath.Join(out, "rbac-"+role)
		run("tool", "controller-gen", "rbac:roleName=orca-"+role, "paths=./internal/"+pkg+"/...", "output:rbac:dir="+dir)
		files[filepath.Join("rbac-"+role, "role.yaml")] = "deploy/kustomize/rbac/" + role + "/role.yaml"
	}

	for generated, committed := range files {
		want, err := os.ReadFile(filepath.Join(out, generated))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(root, committed))
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), "%s is stale: run `make generate manifests`", committed)
	}
}
