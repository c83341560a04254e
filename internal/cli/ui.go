package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/telemetry"
	"github.com/sirocco-cloud/orca/internal/ui"
)

// DefaultUIAddress is where the web view listens unless told otherwise.
const DefaultUIAddress = "127.0.0.1:8090"

// UIOptions configure UI.
type UIOptions struct {
	Kube KubeOptions
	NATS bus.Options
	// Namespace whose workflow the page shows.
	Namespace string
	// Address to listen on; default DefaultUIAddress. A non-loopback address needs
	// AllowRemote.
	Address     string
	AllowRemote bool
	// History is how far back the list of runs reaches; default 24h.
	History time.Duration
	// Timeout bounds connecting to NATS and to the cluster; default 10s.
	Timeout time.Duration
}

// UI serves the web view of a namespace until ctx ends. It reads the cluster
// with the kubeconfig's rights and NATS with the given credentials, and prints
// the page's address, which carries a token made for this start.
func UI(ctx context.Context, stderr io.Writer, o UIOptions) error {
	if err := validateName("namespace", o.Namespace, true); err != nil {
		return err
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	l, note, err := listenUI(o.Address, o.AllowRemote)
	if err != nil {
		return err
	}
	defer l.Close()
	cfg, err := o.Kube.RESTConfig()
	if err != nil {
		return err
	}
	b, err := connect(ctx, o.NATS, o.Timeout, true)
	if err != nil {
		return fmt.Errorf("web view: %w", err)
	}
	defer func() { _ = b.Close() }()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	url, serve, err := startUI(ctx, l, ui.Options{Namespace: o.Namespace, Config: cfg, Bus: b, History: o.History, StartTimeout: o.Timeout, Log: log})
	if err != nil {
		return explainKube(err)
	}
	if note != "" {
		fmt.Fprintln(stderr, note)
	}
	fmt.Fprintf(stderr, "Orca's web view of namespace %s: %s\n(reading the cluster at %s with your kubeconfig, and NATS at %s; Ctrl-C stops it)\n",
		o.Namespace, url, cfg.Host, natsURL(o.NATS))
	if !ui.IsLoopback(l.Addr().String()) {
		fmt.Fprintln(stderr, "warning: the web view listens beyond this machine over plain HTTP: anyone who sees its address (the token in it) can fire ignitions. Prefer the loopback address and an SSH tunnel, or a TLS proxy in front.")
	}
	return serve()
}

// startUI starts a web view on l with a new token, and returns its address and
// the function that serves it until ctx ends.
func startUI(ctx context.Context, l net.Listener, o ui.Options) (string, func() error, error) {
	o.Token = ui.NewToken()
	o.MaxData = bus.MaxIgnitionData
	srv, err := ui.New(o)
	if err != nil {
		return "", nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return "", nil, err
	}
	url := "http://" + l.Addr().String() + "/?token=" + o.Token
	return url, func() error { return srv.Serve(ctx, l) }, nil
}

// listenUI listens on addr (DefaultUIAddress when empty). A non-loopback address
// needs allowRemote. When the default port is taken, it picks a free one and
// says so in note.
func listenUI(addr string, allowRemote bool) (l net.Listener, note string, err error) {
	isDefault := addr == ""
	if isDefault {
		addr = DefaultUIAddress
	}
	if !ui.IsLoopback(addr) && !allowRemote {
		return nil, "", usageErrorf("the web view listens on the loopback interface only (127.0.0.1, ::1 or localhost), not %q: "+
			"pass --allow-remote to listen there anyway, knowing that the page can fire ignitions and speaks plain HTTP", addr)
	}
	l, err = net.Listen("tcp", addr)
	if err != nil && isDefault && errors.Is(err, syscall.EADDRINUSE) {
		host, _, _ := net.SplitHostPort(addr)
		if l, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err == nil {
			note = fmt.Sprintf("note: %s is in use: the web view listens on %s instead", addr, l.Addr())
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("web view cannot listen on %s: %w (pick another address with --ui-address or --address)", addr, err)
	}
	return l, note, nil
}

func uiCmd(ctx context.Context, c *cmdEnv, args []string) error {
	fs := newFlagSet("ui")
	var o UIOptions
	o.Kube.bindFlags(fs)
	complete := bindNATSFlags(fs)
	var ns string
	fs.StringVar(&ns, "n", "", "namespace to show (default: the kubeconfig context's, else default)")
	fs.StringVar(&ns, "namespace", "", "same as -n")
	fs.StringVar(&o.Address, "address", DefaultUIAddress, "address to listen on (host:port; a loopback address unless --allow-remote)")
	fs.BoolVar(&o.AllowRemote, "allow-remote", false, "allow an --address beyond the loopback interface (plain HTTP: put a TLS proxy in front)")
	fs.DurationVar(&o.History, "history", 24*time.Hour, "how far back the list of runs reaches in the stream")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Second, "how long to try to reach NATS and the cluster")
	pos, err := parse(c, fs, "ui [-n NAMESPACE] [--address HOST:PORT]",
		`Serves Orca's web view of a namespace until Ctrl-C, and prints its address:
the workflow graph with each Task's state updated live from the bus, the recent
runs (from the stream, --history back), each run's timeline (Pods, durations,
exit codes, messages, retries), and a form to fire an ignition with data.

It reads the Tasks and Ignitors with your kubeconfig's rights (one watch, shared
by every browser) and follows the events with your NATS credentials. The page
needs the token in the printed address, new at each start; it listens on
127.0.0.1 unless --allow-remote. For a cluster, run it on your machine with
'kubectl -n orca-system port-forward svc/orca-nats 4222' in another terminal.

Examples:
  orca ui -n default
  orca ui --address 127.0.0.1:9000 --nats-url nats://127.0.0.1:4222
`, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf("ui takes no arguments, got %q", pos)
	}
	if o.History <= 0 {
		return usageErrorf("--history must be positive")
	}
	o.Namespace = o.Kube.resolveNamespace(ns)
	o.NATS = complete()
	if o.Address == DefaultUIAddress {
		o.Address = "" // the default may move to a free port when taken
	}
	stop, err := telemetry.Setup(ctx, telemetry.Options{Service: "orca-ui"})
	if err != nil {
		return err
	}
	defer stop()
	return UI(ctx, c.stderr, o)
}

// startRunUI starts the web view of `orca run` for the applied namespace, with
// a NATS connection of its own, and returns its address and the function that
// stops it. A web view that cannot start is logged and left out: Orca runs on.
func startRunUI(ctx context.Context, stderr io.Writer, log *slog.Logger, o RunOptions) (string, func()) {
	if o.UIAddress == "0" {
		return "", func() {}
	}
	fail := func(err error) (string, func()) {
		log.Warn("web view not started", "err", err)
		return "", func() {}
	}
	l, note, err := listenUI(o.UIAddress, false)
	if err != nil {
		return fail(err)
	}
	cfg, err := o.App.RESTConfig()
	if err != nil {
		_ = l.Close()
		return fail(err)
	}
	nats := o.App.NATS
	nats.Name, nats.Logger = "orca-ui", log
	ctx, cancel := context.WithCancel(ctx)
	// The services create the stream: the web view follows it once it exists.
	b, err := bus.Connect(ctx, nats)
	if err != nil {
		cancel()
		_ = l.Close()
		return fail(err)
	}
	stop := func() {
		cancel()
		_ = b.Close()
		_ = l.Close()
	}
	url, serve, err := startUI(ctx, l, ui.Options{Namespace: o.namespace(), Config: cfg, Bus: b, Log: log})
	if err != nil {
		stop()
		return fail(explainKube(err))
	}
	if note != "" {
		fmt.Fprintln(stderr, note)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := serve(); err != nil {
			log.Error("web view stopped", "err", err)
		}
	}()
	if o.UIStarted != nil {
		o.UIStarted(url)
	}
	return url, func() {
		cancel()
		<-done
		stop()
	}
}
