// Package deploy_test checks how Orca is installed: the kustomize base and overlays
// against a real kube-apiserver (server-side dry-run, PodSecurity admission, RBAC
// through impersonation), the NATS authorization against an embedded nats-server,
// and the Dockerfile and docker-compose.yaml without a Docker engine.
package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/sirocco-cloud/orca/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *testenv.Env) { env = e }))
}

// services are Orca's four services, each a Deployment orca-<name>, a ServiceAccount
// orca-<name>, a NATS user orca-<name> and a binary /usr/local/bin/<name>.
var services = []string{"scheduler", "dispatcher", "watcher", "actions"}

// deployDir returns a path under deploy/kustomize.
func deployDir(elem ...string) string {
	return filepath.Join(append([]string{testenv.RepoRoot(), "deploy", "kustomize"}, elem...)...)
}

// installs returns every kustomization to install from: the base and each overlay
// (folders of deploy/kustomize/overlays with a Kustomization, not a Component), plus
// testdata's combination of the overlays' components. Keys are short names.
func installs(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{"base": deployDir("base")}
	entries, err := os.ReadDir(deployDir("overlays"))
	require.NoError(t, err)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := deployDir("overlays", e.Name())
		k, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
		require.NoError(t, err, "overlay %s has no kustomization.yaml", e.Name())
		var meta struct{ Kind string }
		require.NoError(t, yaml.Unmarshal(k, &meta))
		require.NotEqual(t, "Component", meta.Kind, "overlays/%s is a Component: it cannot be applied alone", e.Name())
		out[e.Name()] = dir
	}
	for _, want := range []string{"existing-nats", "nats-cluster", "namespaced", "nats-tls"} {
		require.Contains(t, out, want, "overlay %s", want)
	}
	out["testdata/cluster-tls"] = filepath.Join(testenv.RepoRoot(), "test", "deploy", "testdata", "cluster-tls")
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// kubectl runs the test control plane's kubectl and returns stdout and stderr.
func kubectl(ctx context.Context, stdin string, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(env.AssetsDir, "kubectl"), append([]string{"--kubeconfig", env.KubeconfigPath}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("kubectl %v: %w: %s", args, err, stderr.String())
	}
	return stdout.String(), stderr.String(), err
}

var (
	renderMu    sync.Mutex
	renderCache = map[string]string{}
)

// render returns `kubectl kustomize dir`, once per folder.
func render(t *testing.T, dir string) string {
	t.Helper()
	renderMu.Lock()
	defer renderMu.Unlock()
	if out, ok := renderCache[dir]; ok {
		return out
	}
	out, _, err := kubectl(t.Context(), "", "kustomize", dir)
	require.NoError(t, err, "kubectl kustomize %s", dir)
	renderCache[dir] = out
	return out
}

// objects decodes a multi-document YAML stream.
func objects(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	require.NotEmpty(t, out)
	return out
}

// toYAML encodes objects as a multi-document YAML stream.
func toYAML(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	var b strings.Builder
	for _, o := range objs {
		y, err := yaml.Marshal(o.Object)
		require.NoError(t, err)
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.String()
}

// ofKind returns the objects of the given kinds.
func ofKind(objs []*unstructured.Unstructured, kinds ...string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		for _, k := range kinds {
			if o.GetKind() == k {
				out = append(out, o)
			}
		}
	}
	return out
}

// find returns the object of that kind and name, or nil.
func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// applyForReal applies objects with server-side apply (not a dry-run).
func applyForReal(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	if len(objs) == 0 {
		return
	}
	_, _, err := kubectl(t.Context(), toYAML(t, objs), "apply", "--server-side", "--force-conflicts", "--field-manager=orca-deploy-test", "-f", "-")
	require.NoError(t, err)
}
