package actions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// Defaults of the webhook plugin.
const (
	DefaultWebhookTimeout = 10 * time.Second
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
	opts := []cehttp.Option{cehttp.WithTarget(spec.URL), cehttp.WithClient(*w.deps.HTTPClient)}
	for name, value := range headers {
		opts = append(opts, cehttp.WithHeader(name, value))
	}
	p, err := cehttp.New(opts...)
	if err != nil {
		return Misconfigured(fmt.Errorf("webhook %s: %w", spec.URL, err))
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		return fmt.Errorf("cloudevents client: %w", err)
	}
	timeout := DefaultWebhookTimeout
	if spec.Timeout != nil && spec.Timeout.Duration > 0 {
		timeout = spec.Timeout.Duration
	}
	retries := DefaultWebhookRetries
	if spec.Retries != nil {
		retries = int(max(*spec.Retries, 0))
	}

	wait := w.deps.RetryBackoff
	for attempt := 1; ; attempt++ {
		err := w.send(ctx, c, r, timeout)
		if err == nil {
			return nil
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

// send makes one attempt, binary content mode, within timeout.
func (w *webhook) send(ctx context.Context, c cloudevents.Client, r Run, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(binding.WithForceBinary(ctx), timeout)
	defer cancel()
	res := c.Send(ctx, r.Delivery.Event)
	if cloudevents.IsACK(res) {
		return nil
	}
	var answer *cehttp.Result
	if cloudevents.ResultAs(res, &answer) {
		body := strings.TrimPrefix(answer.Error(), strconv.Itoa(answer.StatusCode)+":")
		return &statusError{code: answer.StatusCode, body: truncate(strings.TrimSpace(body), 256)}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s: %w", timeout, res)
	}
	return res
}

// statusError is an answer other than 2xx.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("answered %d %s", e.code, http.StatusText(e.code))
	if e.body != "" {
		msg += ": " + e.body
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
