package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// waitProbes serve /healthz and /readyz while a service waits for kube-apiserver
// and NATS, before its manager exists to serve them: /healthz answers 200, so
// that the kubelet does not restart a service that only waits, and /readyz 503
// with what the service waits for.
type waitProbes struct {
	srv  *http.Server
	what atomic.Pointer[string]
}

// serveWaitProbes listens on addr ("" or "0": no probes).
func serveWaitProbes(addr string) (*waitProbes, error) {
	p := &waitProbes{}
	p.waitFor("start")
	if addr == "" || addr == "0" {
		return p, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on health probe address %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "waiting for "+*p.what.Load(), http.StatusServiceUnavailable)
	})
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

// waitFor sets what /readyz says the service waits for.
func (p *waitProbes) waitFor(what string) { p.what.Store(&what) }

// close frees the address for the manager's probes; later calls do nothing.
func (p *waitProbes) close() {
	if p.srv != nil {
		_ = p.srv.Close()
	}
}

// waitForAPIServer returns once kube-apiserver answers and serves Orca's API
// group (its CRDs are installed), trying again with backoff until ctx ends. The
// API server refusing the credentials ends the wait: no retry can fix that.
func waitForAPIServer(ctx context.Context, cfg *rest.Config, log *slog.Logger, probes *waitProbes) error {
	c := rest.CopyConfig(cfg)
	c.Timeout = 5 * time.Second
	dc, err := discovery.NewDiscoveryClientForConfig(c)
	if err != nil {
		return fmt.Errorf("discovery client for %s: %w", cfg.Host, err)
	}
	gv := orcav1.GroupVersion.String()
	// As for NATS: 100ms, doubling up to 5s.
	backoff := wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Cap: 5 * time.Second, Steps: math.MaxInt32}
	for waited := false; ; waited = true {
		_, err := dc.ServerResourcesForGroupVersion(gv)
		if err == nil {
			if waited {
				log.Info("kube-apiserver reached", "host", cfg.Host)
			}
			return nil
		}
		if apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) {
			return fmt.Errorf("kube-apiserver at %s refused the service's credentials: %w", cfg.Host, err)
		}
		msg, what := "waiting for kube-apiserver", "kube-apiserver at "+cfg.Host
		if apierrors.IsNotFound(err) {
			msg, what = "waiting for Orca's CRDs", "Orca's CRDs ("+gv+") on kube-apiserver at "+cfg.Host
			err = errors.New("not installed: kubectl apply -k deploy/kustomize/crd")
		}
		probes.waitFor(fmt.Sprintf("%s: %v", what, err))
		log.Info(msg, "host", cfg.Host, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", what, errors.Join(err, ctx.Err()))
		case <-time.After(backoff.Step()):
		}
	}
}
