package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/sirocco-cloud/orca/deploy/kustomize/crd"
	"github.com/sirocco-cloud/orca/internal/controlplane"
	"github.com/sirocco-cloud/orca/internal/nodeagent"
)

// NodeName is the name of the sandbox's one Node.
const NodeName = "orca-sandbox"

// Options configure Start.
type Options struct {
	// Dir holds everything of the sandbox: etcd's data, certificates, logs, the
	// kubeconfig and the Pods' files. It is emptied at start.
	Dir string
	// AssetsDir holds the control-plane binaries; default controlplane.AssetsDir().
	AssetsDir string
	// Output receives the output of the Pods' containers, one prefixed line each;
	// nil drops it (it stays in the log files and in `kubectl logs`).
	Output io.Writer
	// Log receives the sandbox's own messages; default slog.Default().
	Log *slog.Logger
}

// Sandbox is a running local cluster.
type Sandbox struct {
	// Config reaches the API server as a cluster admin.
	Config *rest.Config
	// KubeconfigPath is the admin's kubeconfig file, for kubectl.
	KubeconfigPath string
	// Kubectl is the path of the cached kubectl.
	Kubectl string
	// LogDir holds the logs of the control-plane processes.
	LogDir string

	env       *envtest.Environment
	kubelet   *controlplane.KubeletClient
	logs      []*os.File
	procs     []*controlplane.Process
	stopAgent context.CancelFunc
	agentDone chan error
	failed    chan error
	guard     *guard
	unlock    func()
	log       *slog.Logger
}

// Start starts the sandbox and returns once its Node is Ready. The processes
// outlive ctx: call Stop.
func Start(ctx context.Context, o Options) (_ *Sandbox, err error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.AssetsDir == "" {
		if o.AssetsDir, err = controlplane.AssetsDir(); err != nil {
			return nil, err
		}
	}
	if err := controlplane.CheckAssets(o.AssetsDir, "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"); err != nil {
		return nil, err
	}
	if o.Dir == "" {
		return nil, errors.New("no sandbox folder")
	}
	if o.Dir, err = filepath.Abs(o.Dir); err != nil {
		return nil, fmt.Errorf("sandbox folder: %w", err)
	}
	unlock, err := prepare(o.Dir, o.Log)
	if err != nil {
		return nil, err
	}
	g, err := startGuard(o.Dir)
	if err != nil {
		unlock()
		return nil, err
	}
	s := &Sandbox{
		KubeconfigPath: filepath.Join(o.Dir, "kubeconfig"),
		Kubectl:        filepath.Join(o.AssetsDir, "kubectl"),
		LogDir:         filepath.Join(o.Dir, "logs"),
		failed:         make(chan error, 1),
		guard:          g,
		unlock:         unlock,
		log:            o.Log,
	}
	defer func() {
		if err != nil {
			_ = s.Stop()
		}
	}()
	if err := s.startAPIServer(o); err != nil {
		return nil, err
	}
	if err := s.startControllers(o.AssetsDir); err != nil {
		return nil, err
	}
	if err := s.startAgent(ctx, o); err != nil {
		return nil, err
	}
	return s, nil
}

// startAPIServer starts etcd and kube-apiserver with Orca's CRDs and writes the
// admin's kubeconfig.
func (s *Sandbox) startAPIServer(o Options) error {
	crds, err := crd.Objects()
	if err != nil {
		return err
	}
	etcdLog, err := s.logFile("etcd.log")
	if err != nil {
		return err
	}
	apiLog, err := s.logFile("kube-apiserver.log")
	if err != nil {
		return err
	}
	s.env = &envtest.Environment{
		BinaryAssetsDirectory: o.AssetsDir,
		CRDInstallOptions:     envtest.CRDInstallOptions{CRDs: crds},
	}
	etcdDir, certDir := filepath.Join(o.Dir, "etcd"), filepath.Join(o.Dir, "pki")
	for _, d := range []string{etcdDir, certDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	s.env.ControlPlane.Etcd = &envtest.Etcd{DataDir: etcdDir, Out: etcdLog, Err: etcdLog}
	s.env.ControlPlane.APIServer = &envtest.APIServer{CertDir: certDir, Out: apiLog, Err: apiLog}
	// kube-apiserver reaches the node agent's kubelet API (kubectl logs) with a
	// client certificate, which the agent requires.
	if s.kubelet, err = controlplane.NewKubeletClient(certDir); err != nil {
		return err
	}
	for k, v := range s.kubelet.APIServerArgs() {
		s.env.ControlPlane.APIServer.Configure().Set(k, v)
	}
	s.log.Info("starting etcd and kube-apiserver", "logs", s.LogDir)
	if _, err := s.env.Start(); err != nil {
		s.env = nil
		return fmt.Errorf("start etcd and kube-apiserver (logs in %s): %w", s.LogDir, err)
	}
	admin, err := s.env.AddUser(envtest.User{Name: "orca-sandbox-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add the admin user: %w", err)
	}
	s.Config = admin.Config()
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("write the admin kubeconfig: %w", err)
	}
	return os.WriteFile(s.KubeconfigPath, kubeconfig, 0o600)
}

// startControllers starts kube-controller-manager (garbage collection and
// namespace deletion) and kube-scheduler.
func (s *Sandbox) startControllers(assets string) error {
	for _, c := range []controlplane.Command{
		{Name: "kube-controller-manager", Args: []string{
			"--controllers=garbagecollector,namespace", "--use-service-account-credentials=false",
		}},
		{Name: "kube-scheduler"},
	} {
		c.AssetsDir = assets
		c.Args = append(c.Args, "--kubeconfig="+s.KubeconfigPath, "--leader-elect=false", "--secure-port=0")
		c.LogPath = filepath.Join(s.LogDir, c.Name+".log")
		p, err := controlplane.Start(c)
		if err != nil {
			return err
		}
		s.procs = append(s.procs, p)
		go func() {
			<-p.Done()
			select {
			case s.failed <- p.Err():
			default:
			}
		}()
	}
	return nil
}

// startAgent starts the node agent and waits until its Node is Ready.
func (s *Sandbox) startAgent(ctx context.Context, o Options) error {
	cs, err := kubernetes.NewForConfig(s.Config)
	if err != nil {
		return fmt.Errorf("client of the node agent: %w", err)
	}
	agent, err := nodeagent.New(nodeagent.Options{
		NodeName: NodeName, Client: cs, Dir: filepath.Join(o.Dir, "node"),
		ListenAddr: "127.0.0.1:0", ClientCAs: s.kubelet.CAs, Output: o.Output, Log: logr.FromSlogHandler(o.Log.With("component", "node-agent").Handler()),
	})
	if err != nil {
		return err
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopAgent, s.agentDone = cancel, make(chan error, 1)
	go func() { s.agentDone <- agent.Run(actx) }()
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	select {
	case <-agent.Ready():
		return nil
	case err := <-s.agentDone:
		s.agentDone <- err
		return fmt.Errorf("node agent: %w", err)
	case <-timeout.C:
		return errors.New("node agent: the Node was not Ready within a minute")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Failed receives an error when a control-plane process stopped by itself.
func (s *Sandbox) Failed() <-chan error { return s.failed }

// Stop stops the node agent (and so every Pod's processes), the controllers,
// kube-apiserver and etcd, in that order. The folder stays, for its logs.
func (s *Sandbox) Stop() error {
	var errs []error
	if s.stopAgent != nil {
		s.stopAgent()
		if err := <-s.agentDone; err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("node agent: %w", err))
		}
		s.stopAgent = nil
	}
	for i := len(s.procs) - 1; i >= 0; i-- {
		errs = append(errs, s.procs[i].Stop(10*time.Second))
	}
	s.procs = nil
	if s.env != nil {
		errs = append(errs, s.env.Stop())
		s.env = nil
	}
	for _, f := range s.logs {
		_ = f.Close()
	}
	s.logs = nil
	if s.guard != nil {
		s.guard.stop()
		s.guard = nil
	}
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
	return errors.Join(errs...)
}

func (s *Sandbox) logFile(name string) (*os.File, error) {
	if err := os.MkdirAll(s.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("create log folder: %w", err)
	}
	f, err := os.Create(filepath.Join(s.LogDir, name))
	if err != nil {
		return nil, fmt.Errorf("create log: %w", err)
	}
	s.logs = append(s.logs, f)
	return f, nil
}
