package tracing_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

func TestTraces(t *testing.T) {
	o := startOrca(t)
	t.Run("a run of three Tasks is one trace", func(t *testing.T) { threeTaskRun(t, o) })
	t.Run("a run started with an external traceparent joins its trace", func(t *testing.T) { externalRun(t, o, "") })
	t.Run("the hop header of an external publisher is the receive's parent", func(t *testing.T) {
		externalRun(t, o, "00-%s-b7ad6b7169203331-01")
	})
	t.Run("the next attempt of a retried run continues its trace", func(t *testing.T) { retriedRun(t, o) })
	t.Run("the halted event of a run carries its trace", func(t *testing.T) { haltedRun(t, o) })
}

// threeTaskRun fires an Ignitor into step1 -> step2 -> step3, whose success
// runs a webhook Action, and checks that every span of the run is in one trace,
// each hop a child of the one before it.
func threeTaskRun(t *testing.T, o *orca) {
	ns := env.Namespace(t)
	url, requests := hook(t)
	events := o.taskEvents(t, ns)
	apply(t, ns, fmt.Sprintf(`apiVersion: sirocco.cloud/v1alpha1
kind: Action
metadata:
  name: hook
spec:
  webhook:
    url: %s
---
`, url)+task("step1", "startOnIgnition: [start]")+task("step2", "startOnSuccess: [step1]")+
		task("step3", "startOnSuccess: [step2]", "successActions: [hook]")+`apiVersion: sirocco.cloud/v1alpha1
kind: Ignitor
metadata:
  name: start
spec:
  scheduled: NOW
  data: go
`)

	var pods []corev1.Pod
	for _, name := range []string{"step1", "step2", "step3"} {
		pod := runPod(t, ns, name)
		pods = append(pods, pod)
		succeed(t, pod)
	}
	var webhook http.Header
	select {
	case webhook = <-requests:
	case <-time.After(20 * time.Second):
		t.Fatal("the webhook was not called")
	}

	// The ignition's traceparent: on every Pod, and carried unchanged by every
	// task event and the webhook's CloudEvent.
	ignition := pods[0].Annotations[orcav1.AnnotationRunTraceParent]
	require.NotEmpty(t, ignition, "the Pod carries the run's traceparent")
	traceID := ignition[3:35]
	run := pods[0].Annotations[orcav1.AnnotationRun]
	for i, pod := range pods {
		assert.Equal(t, ignition, pod.Annotations[orcav1.AnnotationRunTraceParent], "pod %d", i)
		ev := nextEvent(t, events)
		assert.Equal(t, ignition, ev.Header.Get("ce-traceparent"), "task event of %s", pod.Name)
		assert.NotEqual(t, ignition, ev.Header.Get("traceparent"), "the hop header is the publish's own")
	}
	assert.Equal(t, ignition, webhook.Get("ce-traceparent"))

	want := [][]string{{"publish orca.ignited"}, {"run action", "orca.action", "hook"}}
	for _, p := range pods {
		want = append(want, []string{"pod ended", "k8s.pod.name", p.Name},
			[]string{"receive orca.task.succeeded", "cloudevents.event_id", string(p.UID), "messaging.consumer.group.name", "orca-dispatcher"},
			[]string{"receive orca.task.succeeded", "cloudevents.event_id", string(p.UID), "messaging.consumer.group.name", "orca-actions"})
	}
	tr := waitTrace(t, o.otlp, traceID, want...)

	root, _ := tr.find("publish orca.ignited")
	assert.Empty(t, root.ParentID, "the scheduler's publish starts the trace")
	assert.Equal(t, "SPAN_KIND_PRODUCER", root.Kind)
	assert.Equal(t, ignition, traceParent(root), "the ignition carries its publish's trace context")
	for _, s := range tr {
		assert.Equal(t, "orca-all", s.Service, "%s", s.Name)
		if s.SpanID != root.SpanID {
			assert.True(t, slices.ContainsFunc(tr, func(p testenv.Span) bool { return p.SpanID == s.ParentID }),
				"the parent of %s %v is in the trace", s.Name, s.Attrs)
		}
	}
	for _, s := range o.otlp.Spans() {
		if s.Attrs["orca.run"] == run {
			assert.Equal(t, traceID, s.TraceID, "span %s of the run is in its trace", s.Name)
		}
	}

	// Hop by hop: receive -> lookup, create pod -> pod ended -> publish -> receive.
	hop, ok := tr.find("receive orca.ignited", "messaging.consumer.group.name", "orca-dispatcher")
	require.True(t, ok, "the dispatcher received the ignition:\n%s", tr)
	assert.Equal(t, root.SpanID, hop.ParentID, "the dispatcher's receive is a child of the ignition's publish")
	assert.Equal(t, "SPAN_KIND_CONSUMER", hop.Kind)
	for i, pod := range pods {
		_, ok := tr.child(hop, "lookup tasks", "orca.tasks", "1")
		assert.True(t, ok, "the Task lookup of %s is a child of the receive", pod.Name)
		create, ok := tr.child(hop, "create pod", "k8s.pod.name", pod.Name)
		require.True(t, ok, "the create of %s is a child of the receive:\n%s", pod.Name, tr)
		assert.Equal(t, traceParent(create), envOf(pod)[orcav1.EnvTraceParent], "TRACEPARENT of %s is its create's", pod.Name)
		ended, ok := tr.child(create, "pod ended", "k8s.pod.name", pod.Name)
		require.True(t, ok, "the end of %s is a child of its create:\n%s", pod.Name, tr)
		published, ok := tr.child(ended, "publish orca.task.succeeded", "cloudevents.event_id", string(pod.UID))
		require.True(t, ok, "the completion of %s is published within its end:\n%s", pod.Name, tr)
		hop, ok = tr.child(published, "receive orca.task.succeeded", "messaging.consumer.group.name", "orca-dispatcher")
		require.True(t, ok, "the dispatcher's receive of %s's completion is a child of its publish:\n%s", pod.Name, tr)
		received, ok := tr.child(published, "receive orca.task.succeeded", "messaging.consumer.group.name", "orca-actions")
		require.True(t, ok, "the actions service's receive of %s's completion is a child of its publish", pod.Name)
		if i == len(pods)-1 {
			action, ok := tr.child(received, "run action", "orca.action", "hook", "orca.action.plugin", "webhook")
			require.True(t, ok, "the Action run is a child of the receive:\n%s", tr)
			assert.Equal(t, traceParent(action), webhook.Get("traceparent"), "the webhook carries the Action run's trace context")
		}
	}
	_, ok = tr.child(hop, "lookup tasks", "orca.tasks", "0")
	assert.True(t, ok, "step3's completion starts no Task, and its lookup says so")
}

// externalRun publishes an ignition as an external system does, with a
// traceparent in the CloudEvents distributed-tracing extension (and, when hop
// is a format with one %s for the trace id, a traceparent NATS header of that
// hop), and checks that the run joins that trace and carries it unchanged.
func externalRun(t *testing.T, o *orca, hop string) {
	ns := env.Namespace(t)
	events := o.taskEvents(t, ns)
	apply(t, ns, task("first", "startOnIgnition: [outside]")+task("second", "startOnSuccess: [first]"))
	traceID := uuidHex()
	external := "00-" + traceID + "-00f067aa0ba902b7-01"
	parent := "00f067aa0ba902b7"
	id := uuid.NewString()
	msg := nats.NewMsg("orca.ignited." + ns + ".outside")
	for k, v := range map[string]string{
		"ce-specversion": "1.0", "ce-id": id, "ce-source": "test/external", "ce-type": "cloud.sirocco.orca.ignited",
		"ce-traceparent": external, "ce-tracestate": "vendor=abc", "content-type": "text/plain",
	} {
		msg.Header.Set(k, v)
	}
	if hop != "" {
		msg.Header.Set("traceparent", fmt.Sprintf(hop, traceID))
		parent = fmt.Sprintf(hop, traceID)[36:52]
	}
	msg.Data = []byte("from outside")
	nc, err := nats.Connect(o.natsURL)
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.PublishMsg(msg))

	for _, name := range []string{"first", "second"} {
		pod := runPod(t, ns, name)
		assert.Equal(t, external, pod.Annotations[orcav1.AnnotationRunTraceParent], "%s carries the run's traceparent", name)
		assert.Equal(t, "vendor=abc", pod.Annotations[orcav1.AnnotationRunTraceState])
		env := envOf(pod)
		assert.Equal(t, traceID, env[orcav1.EnvTraceParent][3:35], "TRACEPARENT of %s is in the external trace", name)
		if hop == "" {
			assert.Equal(t, "vendor=abc", env[orcav1.EnvTraceState], "TRACESTATE of %s is the external one", name)
		} else {
			assert.Empty(t, env[orcav1.EnvTraceState], "TRACESTATE of %s is the hop's, which has none", name)
		}
		succeed(t, pod)
		ev := nextEvent(t, events)
		assert.Equal(t, external, ev.Header.Get("ce-traceparent"), "the task event carries the external traceparent unchanged")
		assert.Equal(t, "vendor=abc", ev.Header.Get("ce-tracestate"))
	}

	tr := waitTrace(t, o.otlp, traceID,
		[]string{"receive orca.ignited", "cloudevents.event_id", id},
		[]string{"pod ended", "orca.task", "second"})
	receive, _ := tr.find("receive orca.ignited", "cloudevents.event_id", id)
	assert.Equal(t, parent, receive.ParentID, "the dispatcher's receive is a child of the external publisher's span")
	for _, s := range o.otlp.Spans() {
		if s.Attrs["orca.run"] == id {
			assert.Equal(t, traceID, s.TraceID, "span %s of the run is in the external trace", s.Name)
		}
	}
}

// uuidHex returns a random trace id.
func uuidHex() string {
	u := uuid.New()
	return fmt.Sprintf("%x", u[:])
}
