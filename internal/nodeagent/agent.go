package nodeagent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	"k8s.io/client-go/kubernetes"
)

// Defaults of Options.
const (
	DefaultNodeName   = "orca-sandbox"
	DefaultListenAddr = "127.0.0.1:10250"
)

// Options configure an Agent.
type Options struct {
	// NodeName names the Node; DefaultNodeName when empty.
	NodeName string
	// Client reaches the API server; required.
	Client kubernetes.Interface
	// Dir holds the container logs, termination message files and Pod work
	// folders, in Dir/pods/<namespace>_<name>_<uid>/ (<container>.log,
	// <container>.termination-log, work/); required. It is created when missing.
	// A Pod's folder is removed when the Pod is deleted.
	Dir string
	// ListenAddr is the address of the kubelet API that serves `kubectl logs`
	// over TLS; DefaultListenAddr when empty. Port 0 picks a free port.
	ListenAddr string
	// ClientCAs verify the client certificates of the kubelet API, as the
	// kubelet's --client-ca-file does: only a client with a certificate they
	// signed, kube-apiserver's --kubelet-client-certificate, is served; required
	// (controlplane.KubeletClient makes both).
	ClientCAs *x509.CertPool
	// Output, when set, receives every line the containers print, prefixed with
	// "<namespace>/<pod>/<container>: ". Writes are serialized.
	Output io.Writer
	// Log receives the agent's log, virtual-kubelet's included; discarded when
	// unset. virtual-kubelet's informational messages are at V(1) and its debug
	// messages at V(2).
	Log logr.Logger
}

// Agent is a node agent: it registers a Node and runs the Pods bound to it as
// local processes. Restart policies are treated as Never: no container restarts.
type Agent struct {
	opts  Options
	log   logr.Logger
	pods  *podManager
	ready chan struct{}
	ran   atomic.Bool
}

// New checks the options and returns an Agent that Run starts.
func New(o Options) (*Agent, error) {
	if o.Client == nil {
		return nil, errors.New("node agent needs a client")
	}
	if o.Dir == "" {
		return nil, errors.New("node agent needs a folder")
	}
	if o.ClientCAs == nil {
		return nil, errors.New("node agent needs the CAs of its clients' certificates")
	}
	if o.NodeName == "" {
		o.NodeName = DefaultNodeName
	}
	if o.ListenAddr == "" {
		o.ListenAddr = DefaultListenAddr
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("node agent folder %s: %w", o.Dir, err)
	}
	o.Dir = dir
	if err := os.MkdirAll(filepath.Join(dir, "pods"), 0o755); err != nil {
		return nil, fmt.Errorf("create node agent folder: %w", err)
	}
	host, _, err := net.SplitHostPort(o.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("node agent listen address %q: %w", o.ListenAddr, err)
	}
	log := o.Log.WithValues("node", o.NodeName)
	a := &Agent{opts: o, log: log, ready: make(chan struct{})}
	a.pods = newPodManager(podManagerConfig{
		NodeName: o.NodeName,
		NodeIP:   nodeIP(host),
		Client:   o.Client,
		Dir:      filepath.Join(dir, "pods"),
		Output:   newOutputSink(o.Output),
		Log:      log,
	})
	return a, nil
}

// Ready returns a channel that is closed once the Node is registered, Ready and
// without the not-ready taint, so that Pods can be scheduled to it.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Run registers the Node, runs the Pods bound to it and serves the kubelet API
// until ctx ends. Then it kills every process it started, waits for them, closes
// the listener and returns. An Agent runs once.
func (a *Agent) Run(ctx context.Context) error {
	if !a.ran.CompareAndSwap(false, true) {
		return errors.New("node agent already ran")
	}
	ctx = vklog.WithLogger(ctx, newVKLogger(a.log))
	ln, err := net.Listen("tcp", a.opts.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen for the kubelet api: %w", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	tlsConfig, err := servingTLS(a.opts.NodeName, a.pods.cfg.NodeIP, a.opts.ClientCAs)
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	vk, err := nodeutil.NewNode(a.opts.NodeName,
		func(cfg nodeutil.ProviderConfig) (nodeutil.Provider, node.NodeProvider, error) {
			a.pods.setLister(cfg.Pods)
			return a.pods, nodeProvider{}, nil
		},
		nodeutil.WithClient(a.opts.Client),
		nodeutil.AttachProviderRoutes(mux),
		func(cfg *nodeutil.NodeConfig) error {
			cfg.NodeSpec = nodeSpec(a.opts.NodeName, a.pods.cfg.NodeIP, port)
			cfg.HTTPListenAddr = ln.Addr().String()
			// The agent serves the kubelet API on its own listener, which knows
			// the port picked for ":0"; without a handler nodeutil serves nothing.
			cfg.Handler = nil
			cfg.TLSConfig = tlsConfig
			return nil
		},
	)
	if err != nil {
		return fmt.Errorf("create virtual-kubelet node: %w", err)
	}

	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(tls.NewListener(ln, tlsConfig)) }()
	a.log.V(1).Info("kubelet api listening", "address", ln.Addr().String())

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	notified := a.pods.runNotifier(runCtx)
	go func() { _ = vk.Run(runCtx) }()

	runErr := a.serve(runCtx, vk, port)
	cancel()
	a.pods.shutdown()
	<-vk.Done()
	<-notified
	_ = srv.Close()
	if err := <-served; runErr == nil && err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		runErr = fmt.Errorf("serve kubelet api: %w", err)
	}
	a.log.V(1).Info("node agent stopped")
	return runErr
}

// serve waits for the Node to be ready, removes its not-ready taint, and then
// waits for ctx to end or virtual-kubelet to fail.
func (a *Agent) serve(ctx context.Context, vk *nodeutil.Node, port int) error {
	select {
	case <-vk.Ready():
	case <-vk.Done():
		return fmt.Errorf("virtual-kubelet node stopped before it was ready: %w", vk.Err())
	case <-ctx.Done():
		return nil
	}
	if err := untaintNode(ctx, a.opts.Client, a.opts.NodeName); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	close(a.ready)
	a.log.Info("node ready", "address", a.pods.cfg.NodeIP, "kubeletPort", port)
	select {
	case <-vk.Done():
		return fmt.Errorf("virtual-kubelet node stopped: %w", vk.Err())
	case <-ctx.Done():
		return nil
	}
}
