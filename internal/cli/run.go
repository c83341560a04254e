package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/sirocco-cloud/orca/internal/actions"
	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/sandbox"
	"github.com/sirocco-cloud/orca/internal/scheduler"
	"github.com/sirocco-cloud/orca/internal/watcher"
)

// RunName is the service name of the all-in-one process: its logs say
// service=all, its NATS connection is orca-all, its leader election Lease orca-all.
const RunName = "all"

// DefaultNATSPort is the port of the embedded NATS server: NATS's usual port, so
// that `orca fire` and `orca events` find it without flags.
const DefaultNATSPort = 4222

// RunOptions configure RunAll.
type RunOptions struct {
	// App are the services' usual options; App.NATS.URLs empty means an embedded
	// NATS server.
	App app.Options
	// Actions are the actions service's own options (its flags); Namespaces
	// comes from App.
	Actions actions.Options
	// Dispatcher are the dispatcher's own options (its flags); Namespaces and
	// RetryFor come from App.
	Dispatcher dispatcher.Options
	// StateDir holds the embedded server's JetStream files; default DefaultStateDir.
	StateDir string
	// NATSHost and NATSPort are where the embedded server listens; defaults
	// 127.0.0.1 and DefaultNATSPort (a negative port picks a free one).
	NATSHost string
	NATSPort int
	// NATSStarted, when set, is called with the URL of the embedded server once it
	// accepts connections.
	NATSStarted func(url string)
	// Sandbox starts a local cluster in StateDir/sandbox (package sandbox) and runs
	// against it; its NATS stream is kept there too, so that each start is clean.
	Sandbox bool
	// InstallCRDs applies Orca's CRDs before the services start (the sandbox has
	// them anyway).
	InstallCRDs bool
	// Apply are YAML files or folders applied before the services start;
	// objects without a namespace go to ApplyNamespace (default "default").
	Apply          []string
	ApplyNamespace string
	// UIAddress is where the web view of ApplyNamespace listens (loopback only);
	// empty means DefaultUIAddress, or a free port when that is taken; "0"
	// disables it.
	UIAddress string
	// UIStarted, when set, is called with the web view's address (token included).
	UIStarted func(url string)
}

// DefaultStateDir returns $XDG_STATE_HOME/orca, else ~/.local/state/orca.
func DefaultStateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "orca"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the state folder: %w (pass --state-dir)", err)
	}
	return filepath.Join(home, ".local", "state", "orca"), nil
}

// RunAll runs the scheduler, dispatcher, watcher and actions in one process, with
// one controller-runtime manager, until ctx ends. With Sandbox it first starts a
// local cluster (package sandbox), and stops it last; then it installs the CRDs
// and applies o.Apply when asked. Without a NATS URL it starts an embedded
// nats-server whose JetStream lives in StateDir, and stops it after the services.
// It notes what it started on stderr; the services and the Pods' output go there too.
func RunAll(ctx context.Context, stderr io.Writer, o RunOptions) error {
	log := app.NewLogger(o.App.LogFormat, o.App.LogLevel).With("service", RunName)
	var sb *sandbox.Sandbox
	if o.Sandbox {
		var err error
		if sb, err = startSandbox(ctx, stderr, log, &o); err != nil {
			return err
		}
		defer func() {
			log.Info("stopping the sandbox")
			if err := sb.Stop(); err != nil {
				log.Error("stop the sandbox", "error", err)
			}
		}()
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		go func() {
			select {
			case err := <-sb.Failed():
				cancel(err)
			case <-ctx.Done():
			}
		}()
	}
	if err := prepareCluster(ctx, stderr, o); err != nil {
		return err
	}
	if len(o.App.NATS.URLs) == 0 {
		srv, err := startEmbedded(o)
		if err != nil {
			return err
		}
		defer srv.Shutdown()
		o.App.NATS.URLs = []string{srv.URL()}
		fmt.Fprintf(stderr, "embedded NATS with JetStream listening on %s, storing in %s\n", srv.URL(), filepath.Join(o.StateDir, "jetstream"))
		if o.NATSStarted != nil {
			o.NATSStarted(srv.URL())
		}
	} else {
		fmt.Fprintf(stderr, "using NATS at %s\n", natsURL(o.App.NATS))
	}
	webView, stopUI := startRunUI(ctx, stderr, log, o)
	defer stopUI()
	if sb != nil {
		printTryThis(stderr, sb, o, webView)
	} else if webView != "" {
		fmt.Fprintf(stderr, "Orca's web view of namespace %s: %s\n", o.namespace(), webView)
	}
	if o.Sandbox {
		// Whoever uses the sandbox is its cluster admin, and a webhook receiver on
		// this host is what a local test of an Action calls.
		o.Actions.Egress.AllowedCIDRs = append(o.Actions.Egress.AllowedCIDRs, actions.LoopbackCIDRs...)
	}
	err := app.Run(ctx, RunName, o.App, AllServices(o.App, o.Actions, o.Dispatcher))
	if cause := context.Cause(ctx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return cause // the sandbox failed
	}
	return err
}

// AllServices returns the Setup of the four services on one manager.
func AllServices(o app.Options, ao actions.Options, do dispatcher.Options) app.Setup {
	ao.Namespaces = o.Namespaces
	do.Namespaces, do.Consumer.RetryFor = o.Namespaces, o.RetryFor
	return func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
		if err := scheduler.Setup(ctx, mgr, b, scheduler.Options{}); err != nil {
			return fmt.Errorf("scheduler: %w", err)
		}
		if err := dispatcher.Setup(ctx, mgr, b, do); err != nil {
			return fmt.Errorf("dispatcher: %w", err)
		}
		if err := watcher.Setup(ctx, mgr, b, watcher.Options{StatusWritesPerSecond: o.TaskStatusQPS}); err != nil {
			return fmt.Errorf("watcher: %w", err)
		}
		ao.Consumer.RetryFor = o.RetryFor
		if err := actions.Setup(ctx, mgr, b, ao); err != nil {
			return fmt.Errorf("actions: %w", err)
		}
		return nil
	}
}

func startEmbedded(o RunOptions) (*bus.Embedded, error) {
	if o.StateDir == "" {
		return nil, errors.New("no state folder for the embedded NATS")
	}
	// nats-server keeps JetStream in <store folder>/jetstream.
	store := o.StateDir
	if err := os.MkdirAll(store, 0o700); err != nil {
		return nil, fmt.Errorf("create the state folder: %w (pass --state-dir, or --nats-url to use a NATS server)", err)
	}
	host := o.NATSHost
	if host == "" {
		host = "127.0.0.1"
	}
	port := o.NATSPort
	switch {
	case port < 0:
		port = 0
	case port == 0:
		port = DefaultNATSPort
	}
	if port != 0 {
		// nats-server only logs a port in use, then never gets ready: say it now.
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS cannot listen on %s: %w\n"+
				"Another `orca run` or a nats-server may hold it: pass --nats-port (0 picks a free port), or --nats-url to use that server", addr, err)
		}
		_ = l.Close()
	}
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: store, Host: host, Port: port})
	if err != nil {
		return nil, fmt.Errorf("start embedded NATS on %s:%d with JetStream in %s: %w", host, port, filepath.Join(store, "jetstream"), err)
	}
	return srv, nil
}

func runCmd(ctx context.Context, c *cmdEnv, args []string) error {
	fs := newFlagSet("run")
	var o RunOptions
	o.App.BindFlags(fs)
	o.Actions.BindFlags(fs)
	o.Dispatcher.BindFlags(fs)
	fs.StringVar(&o.StateDir, "state-dir", "", "folder of the embedded NATS's JetStream files and of the sandbox (default: $XDG_STATE_HOME/orca, else ~/.local/state/orca)")
	fs.StringVar(&o.NATSHost, "nats-host", "127.0.0.1", "address the embedded NATS listens on (ignored with --nats-url)")
	fs.IntVar(&o.NATSPort, "nats-port", DefaultNATSPort, "port of the embedded NATS; 0 picks a free one (ignored with --nats-url)")
	fs.BoolVar(&o.Sandbox, "sandbox", false, "start a local cluster in <state-dir>/sandbox, emptied at each start, whose Pods run as processes on this host, and run against it")
	fs.BoolVar(&o.InstallCRDs, "install-crds", false, "apply Orca's CRDs to the cluster first (needs a cluster admin)")
	fs.Func("apply", "a YAML file or folder to apply before the services start (repeatable), e.g. examples", func(s string) error {
		o.Apply = append(o.Apply, s)
		return nil
	})
	fs.StringVar(&o.ApplyNamespace, "apply-namespace", "default", "namespace of the applied objects that name none, and the one the web view shows")
	fs.StringVar(&o.UIAddress, "ui-address", DefaultUIAddress, "address of the web view, on the loopback interface (0 disables it; see 'orca ui')")
	pos, err := parse(c, fs, "run [--sandbox | --kubeconfig FILE] [--state-dir DIR | --nats-url URL] [--apply PATH] [flags]",
		`Runs Orca's four services, scheduler, dispatcher, watcher and actions, in one
process against the cluster of the kubeconfig (the CRDs must be installed), until
Ctrl-C. Without --nats-url (or ORCA_NATS_URL) it also runs an embedded NATS server
with JetStream, listening on 127.0.0.1:4222 (where 'orca fire' and 'orca events'
look by default) and storing the stream in --state-dir, so that events survive a
restart. The services' flags are the same as those of the separate binaries;
leader election is off unless --leader-elect.

With --sandbox it first starts a local cluster (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and a node agent that runs each Pod's
commands as processes on this host) in <state-dir>/sandbox, with the CRDs
installed, and prints its kubeconfig. Each start is clean: the sandbox folder,
the NATS stream included, is emptied first. Ctrl-C stops every process. In the
sandbox, webhooks may also reach this host (127.0.0.0/8, ::1); elsewhere they may
not, unless --webhook-allowed-cidrs says so.

Examples:
  orca run --sandbox --apply examples
  orca run --kubeconfig ~/.kube/config --install-crds
  orca run --nats-url nats://nats.orca:4222 --namespaces team-a,team-b
`, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf("run takes no arguments, got %q", pos)
	}
	if o.NATSPort == 0 {
		o.NATSPort = -1 // the flag's 0 means a free port
	}
	if o.UIAddress == DefaultUIAddress {
		o.UIAddress = "" // the default may move to a free port when taken
	}
	if err := o.App.Complete(); err != nil {
		return usageErrorf("%v", err)
	}
	if o.Sandbox && o.App.Kubeconfig != "" {
		return usageErrorf("--sandbox starts its own cluster: drop --kubeconfig, or --sandbox to use that cluster")
	}
	if o.StateDir == "" && (o.Sandbox || len(o.App.NATS.URLs) == 0) {
		if o.StateDir, err = DefaultStateDir(); err != nil {
			return err
		}
	}
	return RunAll(ctx, c.stderr, o)
}

// namespace is where objects without one are applied, and what the web view shows.
func (o RunOptions) namespace() string {
	if o.ApplyNamespace == "" {
		return "default"
	}
	return o.ApplyNamespace
}
