package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/scheme"
)

// Setup adds a service's controllers and consumers to the manager.
type Setup func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error

// Run runs a service until ctx ends: it builds the manager, connects to the bus,
// creates the stream if needed, calls setup and starts everything.
func Run(ctx context.Context, name string, o Options, setup Setup) error {
	log := NewLogger(o.LogFormat).With("service", name)
	slog.SetDefault(log)
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))

	cfg, err := o.RESTConfig()
	if err != nil {
		return err
	}
	mgr, err := manager.New(cfg, o.ManagerOptions(name))
	if err != nil {
		return fmt.Errorf("new manager: %w", err)
	}
	o.NATS.Name = "orca-" + name
	o.NATS.Logger = log
	b, err := bus.Connect(ctx, o.NATS)
	if err != nil {
		return err
	}
	defer func() { _ = b.Close() }()
	if err := b.EnsureStream(ctx, o.Stream); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("nats", func(*http.Request) error { return b.Healthy() }); err != nil {
		return err
	}
	if err := setup(ctx, mgr, b); err != nil {
		return fmt.Errorf("set up %s: %w", name, err)
	}
	log.Info("starting", "namespaces", o.Namespaces, "leaderElect", o.LeaderElect)
	if err := mgr.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// NewLogger returns the services' slog logger on stderr.
func NewLogger(format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

// RESTConfig loads the kubeconfig: --kubeconfig, else KUBECONFIG, else in-cluster,
// else ~/.kube/config.
func (o *Options) RESTConfig() (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if o.Kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	} else {
		cfg, err = config.GetConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	// Client-side throttling would add latency to every hop: by default rely on
	// the API server's priority and fairness instead, as controller-runtime does.
	cfg.QPS, cfg.Burst = o.KubeAPILimits()
	return cfg, nil
}

// ManagerOptions returns the manager's options for the named service.
func (o *Options) ManagerOptions(name string) manager.Options {
	opts := manager.Options{
		Scheme:                        scheme.New(),
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:        o.ProbeAddr,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              "orca-" + name,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       ptrTo(15 * time.Second),
	}
	// No service reads managedFields: without them the cache holds less and every
	// read from it (a deep copy) copies less. An update of an object read from the
	// cache leaves them as they are: it sends none.
	opts.Cache.DefaultTransform = cache.TransformStripManagedFields()
	opts.Cache.ByObject = map[client.Object]cache.ByObject{
		// Orca reads only the Pods it started: caching every Pod of a cluster would
		// cost memory for nothing.
		&corev1.Pod{}: {Label: OrcaPods()},
	}
	if len(o.Namespaces) > 0 {
		opts.Cache.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range o.Namespaces {
			opts.Cache.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// OrcaPods selects the Pods that Orca started.
func OrcaPods() labels.Selector {
	req, err := labels.NewRequirement(orcav1.LabelTask, selection.Exists, nil)
	if err != nil {
		panic(err)
	}
	return labels.NewSelector().Add(*req)
}

func ptrTo[T any](v T) *T { return &v }
