package actions

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
	"strings"
	"syscall"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"go.opentelemetry.io/otel/propagation"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/telemetry"
)

// Defaults of the webhook plugin.
const (
	DefaultWebhookTimeout = 10 * time.Second
	// MaxWebhookTimeout is the longest timeout an Action may set (the CRD's
	// validation says so too).
	MaxWebhookTimeout     = 30 * time.Second
	DefaultWebhookRetries = 3
	maxWebhookBackoff     = 30 * time.Second
)

func init() {
	register("webhook", func(d Deps) Plugin { return &webhook{deps: d} })
}

// webhook POSTs the task event as a CloudEvent over HTTP in binary content mode.
type webhook struct {
	deps Deps
}

func (w *webhook) Selected(spec *orcav1.ActionSpec) bool { return spec.Webhook != nil }

func (w *webhook) Run(ctx context.Context, r Run) error {
	spec := r.Action.Spec.Webhook
	headers, err := w.headers(ctx, r.Action.Namespace, spec.Headers)
	if err != nil {
		return err
	}
	timeout := DefaultWebhookTimeout
	if spec.Timeout != nil && spec.Timeout.Duration > 0 {
		timeout = spec.Timeout.Duration
	}
	// The API server refuses a longer timeout; an Action stored before that rule
	// existed gets the maximum.
	timeout = min(timeout, MaxWebhookTimeout)
	retries := DefaultWebhookRetries
	if spec.Retries != nil {
		retries = int(max(*spec.Retries, 0))
	}
	wait := w.deps.RetryBackoff
	for attempt := 1; ; attempt++ {
		err := w.send(ctx, spec.URL, headers, r, timeout)
		if err == nil {
			return nil
		}
		var denied *deniedError
		if errors.As(err, &denied) {
			return Misconfigured(fmt.Errorf("webhook %s: %w", spec.URL, err))
		}
		if !retryable(err) {
			return fmt.Errorf("webhook %s: attempt %d, not retried: %w", spec.URL, attempt, err)
		}
		if attempt > retries {
			return fmt.Errorf("webhook %s: attempt %d of %d: %w", spec.URL, attempt, retries+1, err)
		}
		w.deps.Log.Info("webhook attempt failed, will retry", "namespace", r.Action.Namespace,
			"action", r.Action.Name, "attempt", attempt, "retryIn", wait, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("webhook %s: attempt %d: %w", spec.URL, attempt, errors.Join(err, ctx.Err()))
		case <-time.After(wait):
		}
		wait = min(2*wait, maxWebhookBackoff)
	}
}

// send makes one attempt, binary content mode, within timeout. Its error says
// what happened in fixed words (a status code, a timeout, a refused address): it
// never carries the answer's body, nor details that would map the network behind
// the URL. The whole error goes to the service's log only.
func (w *webhook) send(ctx context.Context, target string, headers map[string]string, r Run, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return &deniedError{reason: "the URL is not usable"}
	}
	for name, value := range headers {
		req.Header.Set(name, value)
	}
	e := r.Delivery.Event
	if err := cehttp.WriteRequest(binding.WithForceBinary(ctx), binding.ToMessage(&e), req); err != nil {
		return fmt.Errorf("encode the task event: %w", err)
	}
	telemetry.W3C.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := w.deps.HTTPClient.Do(req)
	if err != nil {
		w.deps.Log.Info("webhook request failed", "namespace", r.Action.Namespace, "action", r.Action.Name, "err", err)
		return requestError(ctx, err, timeout)
	}
	// Read a little of the body so that the connection can be reused; keep none.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return nil
	}
	se := &statusError{code: resp.StatusCode}
	if resp.StatusCode/100 == 3 && resp.Header.Get("Location") != "" {
		se.note = errRedirectRefused.Error()
	}
	return se
}

// deniedError is an attempt refused before any request left: the egress policy
// refused the address, or the URL cannot be used. Retrying will not help.
type deniedError struct{ reason string }

func (e *deniedError) Error() string { return e.reason }

// requestError turns an error of the HTTP client into a fixed reason.
func requestError(ctx context.Context, err error, timeout time.Duration) error {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, errEgressDenied):
		return &deniedError{reason: errEgressDenied.Error()}
	case errors.Is(ctx.Err(), context.DeadlineExceeded), os.IsTimeout(err):
		return fmt.Errorf("no answer within %s", timeout)
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return errors.New("host not found")
		}
		return errors.New("host lookup failed")
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused")
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return errors.New("connection failed")
	case isTLSError(err):
		return errors.New("TLS handshake failed")
	default:
		return errors.New("request failed")
	}
}

func isTLSError(err error) bool {
	var certErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	return errors.As(err, &certErr) || errors.As(err, &recordErr) || errors.As(err, &unknownAuthority) ||
		errors.As(err, &hostname) || strings.Contains(err.Error(), "tls: ")
}

// statusError is an answer other than 2xx: only its code is kept.
type statusError struct {
	code int
	note string
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("answered %d %s", e.code, http.StatusText(e.code))
	if e.note != "" {
		msg += ": " + e.note
	}
	return msg
}

// retryable reports whether another attempt may succeed: on a network error, a
// timeout, a 5xx, 408 or 429 answer; not on any other answer.
func retryable(err error) bool {
	var answer *statusError
	if !errors.As(err, &answer) {
		return true
	}
	return answer.code >= 500 || answer.code == http.StatusRequestTimeout || answer.code == http.StatusTooManyRequests
}

// headers resolves the header values, reading Secrets of the namespace.
func (w *webhook) headers(ctx context.Context, namespace string, hs []orcav1.WebhookHeader) (map[string]string, error) {
	out := make(map[string]string, len(hs))
	secrets := map[string]*corev1.Secret{}
	for _, h := range hs {
		switch {
		case h.Value != nil:
			out[h.Name] = *h.Value
		case h.ValueFrom != nil:
			ref := h.ValueFrom
			secret, ok := secrets[string(ref.Name)]
			if !ok {
				secret = &corev1.Secret{}
				err := w.deps.Reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: string(ref.Name)}, secret)
				if apierrors.IsNotFound(err) {
					return nil, Misconfigured(fmt.Errorf("header %s: secret %s not found", h.Name, ref.Name))
				}
				if apierrors.IsForbidden(err) {
					return nil, Misconfigured(fmt.Errorf("header %s: the actions service may not read secret %s: "+
						"bind the ClusterRole %s to its ServiceAccount in namespace %s", h.Name, ref.Name, SecretReaderRole, namespace))
				}
				if err != nil {
					return nil, fmt.Errorf("header %s: read secret %s: %w", h.Name, ref.Name, err)
				}
				secrets[string(ref.Name)] = secret
			}
			v, ok := secret.Data[ref.Key]
			if !ok {
				return nil, Misconfigured(fmt.Errorf("header %s: secret %s has no key %q", h.Name, ref.Name, ref.Key))
			}
			out[h.Name] = string(v)
		default:
			return nil, Misconfigured(fmt.Errorf("header %s: neither value nor valueFrom is set", h.Name))
		}
	}
	return out, nil
}
