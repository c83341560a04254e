package deploy_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

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
// the overlays, testdata's combination of components and the dashboards and
// alerts, relative to the root.
func kustomizations(t *testing.T) []string {
	t.Helper()
	out := []string{"deploy/kustomize/crd", "deploy/monitoring"}
	for _, name := range sortedKeys(installs(t)) {
		rel, err := filepath.Rel(testenv.RepoRoot(), installs(t)[name])
		require.NoError(t, err)
		out = append(out, rel)
	}
	return out
}

// prepareCluster creates what the installs expect to find: the namespaces they
// put objects in, and, for deploy/monitoring, the Prometheus Operator's CRDs
// (stand-ins that accept any content), so that a dry-run can create every object.
func prepareCluster(t *testing.T) {
	t.Helper()
	for _, dir := range kustomizations(t) {
		applyForReal(t, ofKind(objects(t, render(t, filepath.Join(testenv.RepoRoot(), dir))), "Namespace"))
	}
	var crds strings.Builder
	for _, kind := range []string{"PrometheusRule", "ServiceMonitor"} {
		plural := strings.ToLower(kind) + "s"
		fmt.Fprintf(&crds, `---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %[1]s.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: %[2]s, listKind: %[2]sList, plural: %[1]s, singular: %[3]s}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`, plural, kind, strings.ToLower(kind))
	}
	applyForReal(t, objects(t, crds.String()))
	for _, kind := range []string{"prometheusrules", "servicemonitors"} {
		err := testenv.Eventually(t.Context(), 30*time.Second, func(ctx context.Context) (bool, error) {
			_, err := kubectlInRepo(t, "get", kind+".monitoring.coreos.com", "-A")
			return err == nil, nil
		})
		require.NoError(t, err, "CRD %s served", kind)
	}
}

// TestEveryKustomizationAppliesClientSideAndServerSide applies each kustomization
// with the kubectl Orca builds, the usual client-side way (which stores the whole
// object in the last-applied annotation, at most 256 KiB) and server-side, each as
// a server dry-run so that the API server validates everything.
func TestEveryKustomizationAppliesClientSideAndServerSide(t *testing.T) {
	prepareCluster(t)
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
// README.md and the comments of deploy/'s kustomizations give, as written (from the root of
// the checkout), with --dry-run=server added.
func TestTheDocumentedApplyCommandsWork(t *testing.T) {
	prepareCluster(t)
	files := []string{filepath.Join(testenv.RepoRoot(), "README.md")}
	err := filepath.WalkDir(filepath.Join(testenv.RepoRoot(), "deploy"), func(path string, d os.DirEntry, err error) error {
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
