package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/testenv"
)

// kubectlInRepo runs the test control plane's kubectl from the root of the
// checkout, where the README's commands run, and returns its output.
func kubectlInRepo(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), filepath.Join(env.AssetsDir, "kubectl"), append([]string{"--kubeconfig", env.KubeconfigPath}, args...)...)
	cmd.Dir = testenv.RepoRoot()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// kustomizations returns every folder to `kubectl apply -k`: the CRDs, the base,
// the overlays and testdata's combination of components, relative to the root.
func kustomizations(t *testing.T) []string {
	t.Helper()
	out := []string{"deploy/kustomize/crd"}
	for _, name := range sortedKeys(installs(t)) {
		rel, err := filepath.Rel(testenv.RepoRoot(), installs(t)[name])
		require.NoError(t, err)
		out = append(out, rel)
	}
	return out
}

// createNamespaces creates the namespaces the installs put objects in, so that a
// dry-run can create those objects.
func createNamespaces(t *testing.T) {
	t.Helper()
	for _, dir := range kustomizations(t) {
		applyForReal(t, ofKind(objects(t, render(t, filepath.Join(testenv.RepoRoot(), dir))), "Namespace"))
	}
}

// TestEveryKustomizationAppliesClientSideAndServerSide applies each kustomization
// with the kubectl Orca builds, the usual client-side way (which stores the whole
// object in the last-applied annotation, at most 256 KiB) and server-side, each as
// a server dry-run so that the API server validates everything.
func TestEveryKustomizationAppliesClientSideAndServerSide(t *testing.T) {
	createNamespaces(t)
	for _, dir := range kustomizations(t) {
		t.Run(dir, func(t *testing.T) {
			out, err := kubectlInRepo(t, "apply", "-k", dir, "--dry-run=server")
			require.NoError(t, err, "client-side: kubectl apply -k %s:\n%s", dir, out)
			assert.Contains(t, out, "(server dry run)")
			out, err = kubectlInRepo(t, "apply", "-k", dir, "--server-side", "--force-conflicts", "--dry-run=server")
			require.NoError(t, err, "server-side: kubectl apply -k %s --server-side:\n%s", dir, out)
			assert.Contains(t, out, "(server dry run)")
		})
	}
}

// applyCommand finds `kubectl apply -k ...` commands in documentation.
var applyCommand = regexp.MustCompile("kubectl apply -k [^`\n]+")

// TestTheDocumentedApplyCommandsWork runs every `kubectl apply -k` command that
// README.md and the kustomizations' comments give, as written (from the root of
// the checkout), with --dry-run=server added.
func TestTheDocumentedApplyCommandsWork(t *testing.T) {
	createNamespaces(t)
	files := []string{filepath.Join(testenv.RepoRoot(), "README.md")}
	err := filepath.WalkDir(deployDir(), func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "kustomization.yaml" {
			files = append(files, path)
		}
		return err
	})
	require.NoError(t, err)
	commands := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, c := range applyCommand.FindAllString(string(b), -1) {
			commands[strings.TrimSpace(c)] = true
		}
	}
	require.Contains(t, commands, "kubectl apply -k deploy/kustomize/crd")
	require.Contains(t, commands, "kubectl apply -k deploy/kustomize/base")
	for _, c := range sortedKeys(commands) {
		t.Run(c, func(t *testing.T) {
			args := shellWords(t, strings.TrimPrefix(c, "kubectl "))
			out, err := kubectlInRepo(t, append(args, "--dry-run=server")...)
			require.NoError(t, err, "%s:\n%s", c, out)
			assert.Contains(t, out, "(server dry run)")
		})
	}
}

// shellWords splits a command line as a shell would, for the quoting that the
// documented commands use (single quotes).
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	var word strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				out = append(out, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	require.False(t, quoted, "unbalanced quote in %q", s)
	if inWord {
		out = append(out, word.String())
	}
	return out
}
