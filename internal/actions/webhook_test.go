package actions_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sirocco-cloud/orca/internal/actions"
	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

func TestWebhookPostsTheTaskEventInBinaryMode(t *testing.T) {
	t.Parallel()
	f := startService(t, true)
	h := newHook(t, http.StatusAccepted)
	require.NoError(t, env.Client.Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "hook-auth"},
		Data:       map[string][]byte{"token": []byte("Bearer s3cret")},
	}))
	f.createAction(t, "notify", orcav1.ActionSpec{Webhook: &orcav1.WebhookAction{
		URL: h.URL + "/hooks/orca",
		Headers: []orcav1.WebhookHeader{
			{Name: "Authorization", ValueFrom: &orcav1.SecretKeySelector{Name: "hook-auth", Key: "token"}},
			{Name: "X-Team", Value: ptrTo("blue")},
		},
		Timeout: &metav1.Duration{Duration: 5 * time.Second},
	}})
	f.createTask(t, "build", []orcav1.ObjectName{"notify"}, nil)

	te := f.publish(t, "build", "pod-uid-1", true)
	eventually(t, "webhook received", func() bool { return len(h.requests()) == 1 })
	req := h.requests()[0]
	assert.Equal(t, http.MethodPost, req.method)
	assert.Equal(t, "/hooks/orca", req.path)
	assert.Equal(t, "1.0", req.header.Get("Ce-Specversion"))
	assert.Equal(t, "pod-uid-1", req.header.Get("Ce-Id"))
	assert.Equal(t, bus.TypeTaskSucceeded, req.header.Get("Ce-Type"))
	assert.Equal(t, "orca/watcher", req.header.Get("Ce-Source"))
	assert.Equal(t, "build", req.header.Get("Ce-Subject"))
	assert.Equal(t, "run-pod-uid-1", req.header.Get("Ce-Orcarun"))
	assert.Equal(t, "application/json", req.header.Get("Content-Type"))
	assert.Equal(t, "Bearer s3cret", req.header.Get("Authorization"), "header value from the Secret")
	assert.Equal(t, "blue", req.header.Get("X-Team"))
	want, err := json.Marshal(te.Result)
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(req.body), "body is the task result")

	eventually(t, "status records the success", func() bool {
		st := f.actionStatus(t, "notify")
		return st.LastSuccess != nil && meta.IsStatusConditionTrue(st.Conditions, actions.ConditionReady)
	})
	st := f.actionStatus(t, "notify")
	assert.Empty(t, st.LastError)
	assert.NotNil(t, st.LastRun)
	eventually(t, "normal event on the task", func() bool {
		return f.findEvent(t, "build", corev1.EventTypeNormal, actions.ReasonSucceeded, "notify") != nil
	})
}

func TestFailingWebhookIsRetriedAndReportedWithoutStoppingTheOthers(t *testing.T) {
	t.Parallel()
	f := startService(t, false)
	broken := newHook(t, http.StatusInternalServerError)
	refusing := newHook(t, http.StatusNotFound)
	ok := newHook(t, http.StatusOK)
	f.createAction(t, "flaky", orcav1.ActionSpec{Webhook: &orcav1.WebhookAction{URL: broken.URL, Retries: ptrTo[int32](2)}})
	f.createAction(t, "wrong-path", orcav1.ActionSpec{Webhook: &orcav1.WebhookAction{URL: refusing.URL}})
	f.createAction(t, "after", orcav1.ActionSpec{Webhook: &orcav1.WebhookAction{URL: ok.URL}})
	f.createAction(t, "logger", orcav1.ActionSpec{Log: &orcav1.LogAction{}})
	f.createTask(t, "deploy", nil, []orcav1.ObjectName{"flaky", "wrong-path", "after", "logger"})
	before := runs(t, "webhook", "failed")

	f.publish(t, "deploy", "pod-uid-2", false)
	eventually(t, "the failing action is reported on the task", func() bool {
		return f.findEvent(t, "deploy", corev1.EventTypeWarning, actions.ReasonFailed, "flaky") != nil
	})
	ev := f.findEvent(t, "deploy", corev1.EventTypeWarning, actions.ReasonFailed, "flaky")
	assert.Contains(t, ev.Note, "flaky")
	assert.Contains(t, ev.Note, "500")
	assert.Len(t, broken.requests(), 3, "one attempt and two retries")

	eventually(t, "the failure is in the action's status", func() bool {
		return f.actionStatus(t, "flaky").LastError != ""
	})
	st := f.actionStatus(t, "flaky")
	assert.Contains(t, st.LastError, "answered 500 Internal Server Error")
	assert.Contains(t, st.LastError, "attempt 3 of 3")
	assert.Nil(t, st.LastSuccess)
	cond := meta.FindStatusCondition(st.Conditions, actions.ConditionReady)
	require.NotNil(t, cond)
	assert.Equal(t, metav1.ConditionFalse, cond.Status)
	assert.Equal(t, actions.ReasonFailed, cond.Reason)

	eventually(t, "a 404 is not retried", func() bool { return f.actionStatus(t, "wrong-path").LastError != "" })
	assert.Len(t, refusing.requests(), 1)
	assert.Contains(t, f.actionStatus(t, "wrong-path").LastError, "answered 404 Not Found")
	assert.Contains(t, f.actionStatus(t, "wrong-path").LastError, "not retried")

	// The other actions ran all the same.
	eventually(t, "the following actions succeeded", func() bool {
		return f.actionStatus(t, "after").LastSuccess != nil && f.actionStatus(t, "logger").LastSuccess != nil
	})
	assert.Len(t, ok.requests(), 1)
	assert.True(t, strings.Contains(f.logs.String(), `msg="task event"`), "the log action wrote the event")
	assert.GreaterOrEqual(t, runs(t, "webhook", "failed")-before, 2.0)
}

// runs reads orca_actions_runs_total for a plugin and outcome.
func runs(t *testing.T, plugin, outcome string) float64 {
	t.Helper()
	return counter(t, "orca_actions_runs_total", map[string]string{"plugin": plugin, "outcome": outcome})
}

// counter reads the counter of the series of name that has the labels.
func counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	require.NoError(t, err)
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := 0
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v == l.GetValue() {
					match++
				}
			}
			if match == len(labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
