package actions_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/sirocco-cloud/orca/internal/actions"
	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

func TestMissingAndMisconfiguredActionsAreReported(t *testing.T) {
	t.Parallel()
	f := startService(t, true)
	h := newHook(t, http.StatusOK)
	f.createAction(t, "needs-secret", orcav1.ActionSpec{Webhook: &orcav1.WebhookAction{
		URL:     h.URL,
		Headers: []orcav1.WebhookHeader{{Name: "Authorization", ValueFrom: &orcav1.SecretKeySelector{Name: "nope", Key: "token"}}},
	}})
	f.createAction(t, "logger", orcav1.ActionSpec{Log: &orcav1.LogAction{}})
	f.createTask(t, "report", []orcav1.ObjectName{"ghost", "needs-secret", "logger"}, nil)

	f.publish(t, "report", "pod-uid-3", true)
	eventually(t, "missing action reported", func() bool {
		return f.findEvent(t, "report", corev1.EventTypeWarning, actions.ReasonNotFound, "ghost") != nil
	})
	assert.Contains(t, f.findEvent(t, "report", corev1.EventTypeWarning, actions.ReasonNotFound, "ghost").Note, "action ghost not found")

	eventually(t, "misconfigured action reported", func() bool {
		return f.findEvent(t, "report", corev1.EventTypeWarning, actions.ReasonMisconfigured, "needs-secret") != nil
	})
	assert.Contains(t, f.findEvent(t, "report", corev1.EventTypeWarning, actions.ReasonMisconfigured, "needs-secret").Note, "secret nope not found")
	eventually(t, "misconfiguration in the status", func() bool { return f.actionStatus(t, "needs-secret").LastError != "" })
	st := f.actionStatus(t, "needs-secret")
	assert.Contains(t, st.LastError, "secret nope not found")
	cond := meta.FindStatusCondition(st.Conditions, actions.ConditionReady)
	require.NotNil(t, cond)
	assert.Equal(t, actions.ReasonMisconfigured, cond.Reason)
	assert.Empty(t, h.requests(), "nothing is sent without the secret's header")

	eventually(t, "the log action ran", func() bool { return f.actionStatus(t, "logger").LastSuccess != nil })
	assert.True(t, strings.Contains(f.logs.String(), `msg="task event"`))
	assert.True(t, strings.Contains(f.logs.String(), "id=pod-uid-3"))
}

func TestNATSActionRepublishesTheEvent(t *testing.T) {
	t.Parallel()
	f := startService(t, false)
	nc, err := nats.Connect(f.natsURL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync("alerts.>")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	f.createAction(t, "forward", orcav1.ActionSpec{NATS: &orcav1.NATSAction{Subject: "alerts.builds"}})
	f.createAction(t, "loop", orcav1.ActionSpec{NATS: &orcav1.NATSAction{Subject: "orca.task.failed.x.y"}})
	f.createTask(t, "nightly", nil, []orcav1.ObjectName{"forward", "loop"})

	te := f.publish(t, "nightly", "pod-uid-4", false)
	msg, err := sub.NextMsg(20 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, "alerts.builds", msg.Subject)

	// Binary content mode: attributes in ce- headers, data as the body.
	e := cloudevents.NewEvent(msg.Header.Get("ce-specversion"))
	e.SetID(msg.Header.Get("ce-id"))
	e.SetSource(msg.Header.Get("ce-source"))
	e.SetType(msg.Header.Get("ce-type"))
	e.SetSubject(msg.Header.Get("ce-subject"))
	e.SetExtension(bus.ExtensionRun, msg.Header.Get("ce-orcarun"))
	require.NoError(t, e.SetData(msg.Header.Get("content-type"), msg.Data))
	require.NoError(t, e.Validate())
	assert.Equal(t, "1.0", e.SpecVersion())
	assert.Equal(t, "pod-uid-4", e.ID())
	assert.Equal(t, bus.TypeTaskFailed, e.Type())
	assert.Equal(t, "nightly", e.Subject())
	assert.Equal(t, "run-pod-uid-4", msg.Header.Get("ce-orcarun"))
	assert.Equal(t, "application/json", e.DataContentType())
	want, err := json.Marshal(te.Result)
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(msg.Data))

	eventually(t, "a subject of Orca's own is refused", func() bool { return f.actionStatus(t, "loop").LastError != "" })
	assert.Contains(t, f.actionStatus(t, "loop").LastError, "Orca's own event subjects")
	eventually(t, "forward succeeded", func() bool { return f.actionStatus(t, "forward").LastSuccess != nil })
}

func TestEachOutcomeRunsItsOwnActions(t *testing.T) {
	t.Parallel()
	f := startService(t, false)
	h := newHook(t, http.StatusOK)
	for _, name := range []string{"on-success", "on-failure"} {
		f.createAction(t, name, orcav1.ActionSpec{Webhook: &orcav1.WebhookAction{
			URL: h.URL, Headers: []orcav1.WebhookHeader{{Name: "X-Action", Value: ptrTo(name)}},
		}})
	}
	f.createTask(t, "job", []orcav1.ObjectName{"on-success"}, []orcav1.ObjectName{"on-failure"})

	// An event of a Task that does not exist is acknowledged without running anything.
	f.publish(t, "no-such-task", "pod-uid-0", true)
	f.publish(t, "job", "pod-uid-5", false)
	eventually(t, "failure action ran", func() bool { return len(h.requests()) == 1 })
	f.publish(t, "job", "pod-uid-6", true)
	eventually(t, "success action ran", func() bool { return len(h.requests()) == 2 })
	eventually(t, "both runs recorded", func() bool {
		return f.actionStatus(t, "on-success").LastSuccess != nil && f.actionStatus(t, "on-failure").LastSuccess != nil
	})

	reqs := h.requests()
	assert.Equal(t, "on-failure", reqs[0].header.Get("X-Action"))
	assert.Equal(t, bus.TypeTaskFailed, reqs[0].header.Get("Ce-Type"))
	assert.Equal(t, "pod-uid-5", reqs[0].header.Get("Ce-Id"))
	assert.Equal(t, "on-success", reqs[1].header.Get("X-Action"))
	assert.Equal(t, bus.TypeTaskSucceeded, reqs[1].header.Get("Ce-Type"))
	assert.Equal(t, "pod-uid-6", reqs[1].header.Get("Ce-Id"))

	// Every event, the one without a Task included, is acknowledged.
	js, err := jetstream.New(f.bus.Conn())
	require.NoError(t, err)
	eventually(t, "consumer caught up", func() bool {
		c, err := js.Consumer(t.Context(), bus.DefaultStream, actions.ConsumerName)
		if err != nil {
			return false
		}
		info, err := c.Info(t.Context())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && info.AckFloor.Stream == 3
	})
	assert.True(t, strings.Contains(f.logs.String(), "task of event not found"))
	assert.Len(t, h.requests(), 2, "no action ran twice")
}
