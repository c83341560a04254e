package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
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
	"github.com/sirocco-cloud/orca/internal/telemetry"
)

// Setup adds a service's controllers and consumers to the manager.
type Setup func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error

// Run runs a service until ctx ends. It waits for kube-apiserver and NATS (with
// /healthz up and /readyz failing meanwhile), creates the stream if needed, then
// builds the manager, calls setup and starts everything.
func Run(ctx context.Context, name string, o Options, setup Setup) error {
	log := NewLogger(o.LogFormat, o.LogLevel).With("service", name)
	slog.SetDefault(log)
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	stopTracing, err := telemetry.Setup(ctx, telemetry.Options{Service: "orca-" + name, Log: log})
	if err != nil {
		return err
	}
	defer stopTracing()

	cfg, err := o.RESTConfig()
	if err != nil {
		return err
	}
	probes, err := serveWaitProbes(o.ProbeAddr)
	if err != nil {
		return err
	}
	defer probes.close()
	if err := waitForAPIServer(ctx, cfg, log, probes); err != nil {
		return stopped(ctx, err)
	}
	o.NATS.Name = "orca-" + name
	o.NATS.Logger = log
	urls := strings.Join(o.NATS.URLs, ",")
	if urls == "" {
		urls = bus.DefaultURL
	}
	probes.waitFor("NATS at " + urls)
	b, err := bus.Connect(ctx, o.NATS)
	if err != nil {
		return stopped(ctx, err)
	}
	defer func() { _ = b.Close() }()
	if err := b.EnsureStream(ctx, o.Stream); err != nil {
		return stopped(ctx, err)
	}
	if o.LeaderElect {
		if err := o.checkDuplicateWindow(ctx, b); err != nil {
			return err
		}
	}
	probes.close()
	mgr, err := manager.New(cfg, o.ManagerOptions(name))
	if err != nil {
		return fmt.Errorf("new manager: %w", err)
	}
	if err := addProbes(mgr, b); err != nil {
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

// stopped returns nil when ctx ended (the service was asked to stop while it
// waited), else err.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// addProbes adds the liveness and readiness checks: ready once the caches have
// synced and while the NATS connection is up.
func addProbes(mgr manager.Manager, b *bus.Bus) error {
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("nats", func(*http.Request) error { return b.Healthy() }); err != nil {
		return err
	}
	synced := &cachesSynced{}
	if err := mgr.Add(synced); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("caches", func(*http.Request) error {
		if !synced.Load() {
			return errors.New("caches not synced yet")
		}
		return nil
	})
}

// cachesSynced is set when the manager starts its runnables that need no leader,
// which it does once the caches have synced.
type cachesSynced struct{ atomic.Bool }

func (s *cachesSynced) Start(context.Context) error { s.Store(true); return nil }

// NeedLeaderElection is false: standbys are ready too.
func (s *cachesSynced) NeedLeaderElection() bool { return false }

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
	lease, renew, retry := o.election()
	opts := manager.Options{
		Scheme:                        scheme.New(),
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:        o.ProbeAddr,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              "orca-" + name,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &lease,
		RenewDeadline:                 &renew,
		RetryPeriod:                   &retry,
		GracefulShutdownTimeout:       ptrTo(15 * time.Second),
	}
	if o.ReuseControllerNames {
		opts.Controller.SkipNameValidation = ptrTo(true)
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
