package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/scheme"
)

// KubeOptions say how to reach the cluster, as kubectl does.
type KubeOptions struct {
	// Kubeconfig is a kubeconfig file; empty means KUBECONFIG, then ~/.kube/config,
	// then the in-cluster config.
	Kubeconfig string
	// Context is the kubeconfig context; empty means the current one.
	Context string
}

func (k *KubeOptions) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&k.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)")
	fs.StringVar(&k.Context, "context", "", "kubeconfig context (default: the current context)")
}

func (k KubeOptions) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.Kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.Context})
}

// Namespace returns the namespace of the kubeconfig's context, else "default".
func (k KubeOptions) Namespace() string {
	ns, _, err := k.clientConfig().Namespace()
	if err != nil || ns == "" {
		return "default"
	}
	return ns
}

// RESTConfig loads the kubeconfig.
func (k KubeOptions) RESTConfig() (*rest.Config, error) {
	cfg, err := k.clientConfig().ClientConfig()
	if err != nil {
		where := "KUBECONFIG, ~/.kube/config or the in-cluster config"
		if k.Kubeconfig != "" {
			where = k.Kubeconfig
		}
		return nil, fmt.Errorf("load kubeconfig from %s: %w (pass --kubeconfig)", where, err)
	}
	return cfg, nil
}

// Client returns an uncached client with Orca's types.
func (k KubeOptions) Client() (client.Client, string, error) {
	cfg, err := k.RESTConfig()
	if err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	return c, cfg.Host, nil
}

// resolveNamespace returns the namespace flag, else the kubeconfig's.
func (k KubeOptions) resolveNamespace(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return k.Namespace()
}

// bindNATSFlags registers the NATS client flags of the services (--nats-url, the
// credential and TLS flags, --nats-stream), spelled as app.Options spells them.
// complete must be called after parsing: it applies ORCA_NATS_URL.
func bindNATSFlags(fs *flag.FlagSet) (complete func() bus.Options) {
	var o app.Options
	all := flag.NewFlagSet("", flag.ContinueOnError)
	o.BindFlags(all)
	all.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "nats-") {
			fs.Var(f.Value, f.Name, f.Usage)
		}
	})
	return func() bus.Options {
		_ = o.Complete() // only the log format can fail, and it keeps its default
		return o.NATS
	}
}

// natsURL returns the URLs the options connect to, for messages.
func natsURL(o bus.Options) string {
	if len(o.URLs) == 0 {
		return bus.DefaultURL
	}
	return strings.Join(o.URLs, ",")
}

// connect connects to NATS within timeout and, with checkStream, checks that
// Orca's stream exists; its errors say which URL failed and what to change.
func connect(ctx context.Context, o bus.Options, timeout time.Duration, checkStream bool) (*bus.Bus, error) {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if o.Name == "" {
		o.Name = "orca-cli"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	b, err := bus.Connect(cctx, o)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("cannot reach NATS at %s within %s: %w\n"+
			"Is Orca's NATS (or `orca run`) running there? Pass --nats-url (or set ORCA_NATS_URL) to use another server",
			natsURL(o), timeout, unwrapConnect(err))
	}
	if !checkStream {
		return b, nil
	}
	if err := b.CheckStream(cctx); err != nil {
		_ = b.Close()
		return nil, streamError(o, b.Stream(), err)
	}
	return b, nil
}

// streamError explains an error about Orca's stream.
func streamError(o bus.Options, stream string, err error) error {
	if errors.Is(err, bus.ErrNoStream) {
		return fmt.Errorf("NATS at %s has no stream %s: start Orca's services (or `orca run --nats-url %s`) once, they create it, or pass --nats-stream",
			natsURL(o), stream, natsURL(o))
	}
	return fmt.Errorf("NATS at %s: stream %s: %w", natsURL(o), stream, err)
}

// unwrapConnect drops the "connect to nats URL:" prefix that the message repeats.
func unwrapConnect(err error) error {
	u := errors.Unwrap(err)
	if u == nil {
		return err
	}
	if j, ok := u.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 0 {
		return j.Unwrap()[0] // the connection's error, not the deadline's
	}
	return u
}
