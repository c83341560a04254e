package testenv

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/sirocco-cloud/orca/internal/controlplane"
	"github.com/sirocco-cloud/orca/internal/scheme"
)

// Env is a running control plane with Orca's CRDs installed.
type Env struct {
	// Config reaches the API server as a cluster admin.
	Config *rest.Config
	// Client is an uncached client with Orca's types registered.
	Client client.Client
	// Scheme holds the Kubernetes and Orca types.
	Scheme *runtime.Scheme
	// AssetsDir holds the control-plane binaries, kubectl included.
	AssetsDir string
	// KubeconfigPath is a kubeconfig file for the admin, for kubectl and for binaries.
	KubeconfigPath string
	// KubeletClientCAs verify the client certificate that kube-apiserver shows
	// kubelets: a node agent's Options.ClientCAs.
	KubeletClientCAs *x509.CertPool

	env *envtest.Environment
	dir string
}

// AssetsDir returns the folder of the control-plane binaries, kubectl included.
func AssetsDir() (string, error) { return controlplane.AssetsDir() }

// RepoRoot returns the root of Orca's checkout.
func RepoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// CRDPaths returns the files of Orca's generated CRDs.
func CRDPaths() []string {
	dir := filepath.Join(RepoRoot(), "deploy", "kustomize", "crd")
	return []string{
		filepath.Join(dir, "sirocco.cloud_tasks.yaml"),
		filepath.Join(dir, "sirocco.cloud_ignitors.yaml"),
		filepath.Join(dir, "sirocco.cloud_actions.yaml"),
	}
}

// Start starts etcd and kube-apiserver and installs Orca's CRDs.
func Start() (*Env, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "orca-testenv-")
	if err != nil {
		return nil, err
	}
	e := &Env{Scheme: scheme.New(), AssetsDir: assets, dir: dir}
	e.env = &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDInstallOptions: envtest.CRDInstallOptions{
			Paths:              CRDPaths(),
			ErrorIfPathMissing: true,
			Scheme:             e.Scheme,
		},
		Scheme: e.Scheme,
	}
	kubelet, err := controlplane.NewKubeletClient(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	e.KubeletClientCAs = kubelet.CAs
	for k, v := range kubelet.APIServerArgs() {
		e.env.ControlPlane.GetAPIServer().Configure().Set(k, v)
	}
	if e.Config, err = e.env.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start control plane from %s: %w", assets, err)
	}
	if err := e.init(); err != nil {
		_ = e.Stop()
		return nil, err
	}
	return e, nil
}

func (e *Env) init() error {
	var err error
	if e.Client, err = client.New(e.Config, client.Options{Scheme: e.Scheme}); err != nil {
		return fmt.Errorf("new client: %w", err)
	}
	admin, err := e.env.AddUser(envtest.User{Name: "orca-test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add admin user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("admin kubeconfig: %w", err)
	}
	e.KubeconfigPath = filepath.Join(e.dir, "kubeconfig")
	return os.WriteFile(e.KubeconfigPath, kubeconfig, 0o600)
}

// Stop stops the control plane and removes its files.
func (e *Env) Stop() error {
	err := e.env.Stop()
	return errors.Join(err, os.RemoveAll(e.dir))
}

// Kubectl runs the built kubectl against the control plane and returns its stdout;
// the error carries stderr.
func (e *Env) Kubectl(ctx context.Context, args ...string) (string, error) {
	return e.KubectlInput(ctx, "", args...)
}

// KubectlInput is Kubectl with stdin, as in `kubectl apply -f -`.
func (e *Env) KubectlInput(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(e.AssetsDir, "kubectl"), append([]string{"--kubeconfig", e.KubeconfigPath}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %v: %w: %s", args, err, stderr.String())
	}
	return stdout.String(), nil
}

// Main starts a control plane for a test package, runs its tests and stops it; use
// it from TestMain. set receives the Env before the tests run.
func Main(m *testing.M, set func(*Env)) int {
	e, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	set(e)
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: stop:", err)
	}
	return code
}
