package app

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"
)

// apiServer answers discovery of Orca's group with the given status codes, one
// per request, then 200.
func apiServer(t *testing.T, codes ...int) *rest.Config {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/apis/sirocco.cloud/v1alpha1", r.URL.Path)
		if i := int(n.Add(1)) - 1; i < len(codes) {
			http.Error(w, http.StatusText(codes[i]), codes[i])
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"sirocco.cloud/v1alpha1","resources":[]}`))
	}))
	t.Cleanup(srv.Close)
	return &rest.Config{Host: srv.URL}
}

func TestWaitForAPIServerWaitsForOrcasCRDs(t *testing.T) {
	var logs bytes.Buffer
	probes, err := serveWaitProbes("0")
	require.NoError(t, err)
	cfg := apiServer(t, http.StatusServiceUnavailable, http.StatusNotFound)
	require.NoError(t, waitForAPIServer(t.Context(), cfg, slog.New(slog.NewTextHandler(&logs, nil)), probes))
	assert.Contains(t, logs.String(), `msg="waiting for kube-apiserver"`)
	assert.Contains(t, logs.String(), `msg="waiting for Orca's CRDs"`)
	assert.Contains(t, logs.String(), `msg="kube-apiserver reached"`)
	assert.Equal(t, "Orca's CRDs (sirocco.cloud/v1alpha1) on kube-apiserver at "+cfg.Host+": not installed: kubectl apply -k deploy/kustomize/crd", *probes.what.Load())
}

func TestWaitForAPIServerStopsOnRefusedCredentials(t *testing.T) {
	probes, err := serveWaitProbes("0")
	require.NoError(t, err)
	err = waitForAPIServer(t.Context(), apiServer(t, http.StatusUnauthorized), slog.New(slog.DiscardHandler), probes)
	assert.ErrorContains(t, err, "refused the service's credentials")
}
