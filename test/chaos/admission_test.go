package chaos

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// refusals is a validating admission webhook on Pod creates in the suite's
// namespace. While it refuses, it turns down the Pods of some Tasks as a
// cluster would during an outage or with an exhausted quota: a 500 for one Task,
// a 403 "exceeded quota" for another. Both are failures that a retry fixes.
type refusals struct {
	srv     *httptest.Server
	on      atomic.Bool
	refused atomic.Int64
	// internalError and quota name the Tasks whose Pods get a 500 and a 403.
	internalError, quota string
}

func newRefusals(internalError, quota string) *refusals {
	r := &refusals{internalError: internalError, quota: quota}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	// kube-apiserver killed mid-handshake is one of the faults, not news.
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	r.srv.StartTLS()
	return r
}

func (r *refusals) serve(w http.ResponseWriter, req *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(req.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	if r.on.Load() {
		var pod corev1.Pod
		_ = json.Unmarshal(review.Request.Object.Raw, &pod)
		switch pod.Annotations[orcav1.AnnotationTask] {
		case r.internalError:
			resp.Allowed = false
			resp.Result = &metav1.Status{Code: http.StatusInternalServerError, Reason: metav1.StatusReasonInternalError,
				Message: "chaos: the cluster fails Pod creates for a while"}
		case r.quota:
			resp.Allowed = false
			resp.Result = &metav1.Status{Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
				Message: "exceeded quota: chaos-quota, requested: pods=1, used: pods=5, limited: pods=5"}
		}
		if !resp.Allowed {
			r.refused.Add(1)
		}
	}
	review.Response = resp
	review.Request = nil
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(review)
}

// install registers the webhook for Pod creates in namespace.
func (r *refusals) install(ctx context.Context, c client.Client, namespace string) error {
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw})
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "orca-chaos-refusals"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "refusals.chaos.orca.sirocco.cloud",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				URL: ptr.To(r.srv.URL + "/validate"), CABundle: caBundle,
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
				},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
				corev1.LabelMetadataName: namespace,
			}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](5),
		}},
	}
	if err := c.Create(ctx, cfg); err != nil {
		return fmt.Errorf("install refusal webhook: %w", err)
	}
	return nil
}

func (r *refusals) close() { r.srv.Close() }
