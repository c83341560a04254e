package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/sirocco-cloud/orca/internal/controlplane"
	"github.com/sirocco-cloud/orca/internal/scheme"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// controlPlane is etcd and kube-apiserver with Orca's CRDs. Their data and
// certificates live in fixed folders, so that kube-apiserver can be stopped and
// started again on the same etcd, port and certificates: the services'
// kubeconfig stays valid.
type controlPlane struct {
	env        *envtest.Environment
	dir        string
	config     *rest.Config
	client     client.Client
	kubeconfig string

	mu sync.Mutex // serialises restarts of kube-apiserver
}

func startControlPlane(dir string) (*controlPlane, error) {
	assets, err := controlplane.AssetsDir()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "control-plane.log"))
	if err != nil {
		return nil, err
	}
	s := scheme.New()
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDInstallOptions: envtest.CRDInstallOptions{
			Paths: testenv.CRDPaths(), ErrorIfPathMissing: true, Scheme: s,
		},
		Scheme: s,
		// A busy machine starts kube-apiserver slowly; envtest's 20s is too short.
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	etcdDir, certDir := filepath.Join(dir, "etcd"), filepath.Join(dir, "pki")
	for _, d := range []string{etcdDir, certDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	env.ControlPlane.Etcd = &envtest.Etcd{DataDir: etcdDir, Out: logf, Err: logf}
	env.ControlPlane.APIServer = &envtest.APIServer{CertDir: certDir, Out: logf, Err: logf}
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("start etcd and kube-apiserver (log %s): %w", logf.Name(), err)
	}
	cp := &controlPlane{env: env, dir: dir, kubeconfig: filepath.Join(dir, "kubeconfig")}
	admin, err := env.AddUser(envtest.User{Name: "orca-chaos-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		_ = cp.stop()
		return nil, fmt.Errorf("add admin: %w", err)
	}
	cp.config = admin.Config()
	// The suite's own clients see the API server go away: fail fast, retry above.
	cp.config.Timeout = 10 * time.Second
	cp.config.QPS, cp.config.Burst = -1, -1
	kubeconfig, err := admin.KubeConfig()
	if err == nil {
		err = os.WriteFile(cp.kubeconfig, kubeconfig, 0o600)
	}
	if err == nil {
		cp.client, err = client.New(cp.config, client.Options{Scheme: s})
	}
	if err != nil {
		_ = cp.stop()
		return nil, err
	}
	return cp, nil
}

// restartAPIServer kills kube-apiserver (SIGKILL), waits down, and starts it
// again on the same etcd; it returns once it is healthy.
func (cp *controlPlane) restartAPIServer(down time.Duration) error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	pid, err := findProcess("kube-apiserver", cp.dir)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill kube-apiserver: %w", err)
	}
	// envtest reaps it.
	api := cp.env.ControlPlane.APIServer
	if err := api.Stop(); err != nil {
		return fmt.Errorf("stop kube-apiserver: %w", err)
	}
	time.Sleep(down)
	if err := api.Start(); err != nil {
		return fmt.Errorf("start kube-apiserver again: %w", err)
	}
	return nil
}

// findProcess returns the process of the named binary that has dir in its
// command line: the suite's own kube-apiserver, not another test's.
func findProcess(name, dir string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if filepath.Base(args[0]) == name && strings.Contains(string(cmdline), dir) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no %s process with %s in its command line", name, dir)
}

func (cp *controlPlane) stop() error { return cp.env.Stop() }

// eventually retries f on the API server until it succeeds or ctx ends: the
// suite's own calls must outlast a stopped kube-apiserver.
func eventually(ctx context.Context, timeout time.Duration, f func(ctx context.Context) error) error {
	return testenv.Eventually(ctx, timeout, func(ctx context.Context) (bool, error) {
		err := f(ctx)
		return err == nil, err
	})
}

// every calls f every interval until it succeeds or timeout passes, and then
// returns its last error.
func every(ctx context.Context, timeout, interval time.Duration, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not within %s: %w", timeout, err)
		case <-time.After(interval):
		}
	}
}
