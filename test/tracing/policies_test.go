package tracing_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// retriedRun fires a Task whose first attempt fails and is retried, and checks
// that the retrying event carries the run's trace context and that the next
// attempt continues the trace: its create is a child of the receive of the
// retrying event, published within the end of the attempt before.
func retriedRun(t *testing.T, o *orca) {
	ns := env.Namespace(t)
	events := o.taskEvents(t, ns)
	apply(t, ns, task("flaky", "startOnIgnition: [retried]", "retry: {limit: 1, backoff: {duration: 0s}}")+ignitor("retried"))

	first := attemptPod(t, ns, "flaky", "1")
	require.NoError(t, testenv.Kubelet{Client: env.Client}.End(t.Context(), client.ObjectKeyFromObject(&first), 1, "boom"))
	second := attemptPod(t, ns, "flaky", "2")
	succeed(t, second)

	ignition := first.Annotations[orcav1.AnnotationRunTraceParent]
	require.NotEmpty(t, ignition, "the Pod carries the run's traceparent")
	assert.Equal(t, ignition, second.Annotations[orcav1.AnnotationRunTraceParent], "the next attempt carries the run's traceparent")
	for _, typ := range []string{"cloud.sirocco.orca.task.retrying", "cloud.sirocco.orca.task.succeeded"} {
		ev := nextEvent(t, events)
		assert.Equal(t, typ, ev.Header.Get("ce-type"))
		assert.Equal(t, ignition, ev.Header.Get("ce-traceparent"), "%s carries the run's traceparent unchanged", typ)
	}

	tr := waitTrace(t, o.otlp, ignition[3:35],
		[]string{"create pod", "k8s.pod.name", first.Name, "orca.attempt", "1"},
		[]string{"pod ended", "k8s.pod.name", second.Name},
		[]string{"publish orca.task.succeeded", "cloudevents.event_id", string(second.UID)})
	create, _ := tr.find("create pod", "k8s.pod.name", first.Name)
	ended, ok := tr.child(create, "pod ended", "k8s.pod.name", first.Name, "orca.attempt", "1", "orca.retried", "true", "orca.succeeded", "false")
	require.True(t, ok, "the end of the first attempt is a child of its create and says it is retried:\n%s", tr)
	published, ok := tr.child(ended, "publish orca.task.retrying", "cloudevents.event_id", string(first.UID))
	require.True(t, ok, "the retrying event is published within the first attempt's end:\n%s", tr)
	received, ok := tr.child(published, "receive orca.task.retrying", "messaging.consumer.group.name", "orca-dispatcher", "orca.outcome", "done")
	require.True(t, ok, "the dispatcher's receive of the retrying event is a child of its publish:\n%s", tr)
	create, ok = tr.child(received, "create pod", "k8s.pod.name", second.Name, "orca.attempt", "2")
	require.True(t, ok, "the next attempt's create is a child of that receive:\n%s", tr)
	assert.Equal(t, traceParent(create), envOf(second)[orcav1.EnvTraceParent], "TRACEPARENT of the next attempt is its create's")
	ended, ok = tr.child(create, "pod ended", "k8s.pod.name", second.Name, "orca.attempt", "2", "orca.retried", "false")
	require.True(t, ok, "the end of the next attempt is a child of its create:\n%s", tr)
	_, ok = tr.child(ended, "publish orca.task.succeeded", "cloudevents.event_id", string(second.UID))
	assert.True(t, ok, "the run's outcome is published within the last attempt's end:\n%s", tr)
}

// haltedRun fires a Task that starts itself again, which the loop guard halts
// after one step, and checks that the halted event carries the run's trace
// context and is published within the receive that would have started the Task.
func haltedRun(t *testing.T, o *orca) {
	ns := env.Namespace(t)
	halted := o.subscribe(t, "orca.task.halted."+ns+".>")
	apply(t, ns, task("loop", "startOnIgnition: [halted]", "startOnSuccess: [loop]", "maxRunSteps: 1")+ignitor("halted"))

	pod := attemptPod(t, ns, "loop", "1")
	succeed(t, pod)
	ignition := pod.Annotations[orcav1.AnnotationRunTraceParent]
	require.NotEmpty(t, ignition)
	ev := nextEvent(t, halted)
	assert.Equal(t, ignition, ev.Header.Get("ce-traceparent"), "the halted event carries the run's traceparent unchanged")

	tr := waitTrace(t, o.otlp, ignition[3:35], []string{"publish orca.task.halted"})
	publishedEnd, ok := tr.find("publish orca.task.succeeded", "cloudevents.event_id", string(pod.UID))
	require.True(t, ok, "the completion of %s is in the run's trace:\n%s", pod.Name, tr)
	received, ok := tr.child(publishedEnd, "receive orca.task.succeeded", "messaging.consumer.group.name", "orca-dispatcher")
	require.True(t, ok, "the dispatcher received the completion:\n%s", tr)
	_, ok = tr.child(received, "publish orca.task.halted", "cloudevents.event_subject", "loop")
	assert.True(t, ok, "the halted event is published within the receive that would have started the Task:\n%s", tr)
}

// ignitor returns the manifest of an Ignitor that fires name once, now.
func ignitor(name string) string {
	return `apiVersion: sirocco.cloud/v1alpha1
kind: Ignitor
metadata:
  name: ` + name + `
spec:
  scheduled: NOW
---
`
}

// attemptPod waits for the Pod of an attempt of a Task and returns it.
func attemptPod(t *testing.T, ns, taskName, attempt string) corev1.Pod {
	t.Helper()
	var found corev1.Pod
	err := testenv.Eventually(t.Context(), 20*time.Second, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		err := env.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{orcav1.LabelTask: taskName})
		for _, p := range pods.Items {
			if p.Annotations[orcav1.AnnotationAttempt] == attempt {
				found = p
				return true, nil
			}
		}
		return false, err
	})
	require.NoError(t, err, "no pod of attempt %s of task %s/%s", attempt, ns, taskName)
	return found
}
