package e2e_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

const oneTask = `apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: only
spec:
  startOnIgnition: [go]
  template:
    spec:
      containers:
      - name: main
        image: busybox
`

// consumerSettled waits until the dispatcher's consumer has nothing pending.
func consumerSettled(t *testing.T, natsURL string) {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	err = testenv.Eventually(t.Context(), 20*time.Second, func(ctx context.Context) (bool, error) {
		c, err := js.Consumer(ctx, bus.DefaultStream, dispatcher.ConsumerName)
		if err != nil {
			return false, err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return false, err
		}
		return info.NumAckPending == 0 && info.NumPending == 0 && info.NumRedelivered == 0, nil
	})
	require.NoError(t, err, "dispatcher consumer did not settle")
}

func TestDispatcherKilledBeforeAckCreatesOnePod(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, oneTask)

	var once sync.Once
	var first *service
	killed := make(chan struct{})
	first = startDispatcher(t, srv.URL(), dispatcher.Options{
		Consumer: bus.ConsumerOptions{AckWait: time.Second},
		AfterCreate: func(*corev1.Pod) {
			// The process dies between the create and the ack.
			once.Do(func() { first.bus.Conn().Close(); close(killed) })
		},
	})
	fire(t, srv.URL(), ns, "go", "kill-1", "payload")
	<-killed
	first.stop()
	require.Len(t, taskPods(t, ns, "only"), 1)

	startDispatcher(t, srv.URL(), dispatcher.Options{Consumer: bus.ConsumerOptions{AckWait: time.Second}})
	// The event comes back to the new dispatcher, which finds the Pod and acks.
	err := testenv.Eventually(t.Context(), 20*time.Second, func(ctx context.Context) (bool, error) {
		c, err := jsConsumer(ctx, srv.URL())
		if err != nil {
			return false, err
		}
		return c.AckFloor.Stream >= 1 && c.NumAckPending == 0 && c.NumRedelivered == 0, nil
	})
	require.NoError(t, err)
	assert.Len(t, taskPods(t, ns, "only"), 1, "a redelivered event creates no second pod")
}

func jsConsumer(ctx context.Context, url string) (*jetstream.ConsumerInfo, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	c, err := js.Consumer(ctx, bus.DefaultStream, dispatcher.ConsumerName)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}

func TestMalformedIgnitionIsDeadLetteredAndTheNextOneWorks(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, oneTask)
	startDispatcher(t, srv.URL(), dispatcher.Options{})

	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	dead, err := nc.SubscribeSync("orca.deadletter.>")
	require.NoError(t, err)
	require.NoError(t, nc.Publish("orca.ignited."+ns+".go", []byte("not a cloudevent")))
	dl, err := dead.NextMsg(10 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, "orca.deadletter.orca.ignited."+ns+".go", dl.Subject)
	assert.Contains(t, dl.Header.Get(bus.HeaderDeadLetterReason), "not a CloudEvent")
	assert.Equal(t, "not a cloudevent", string(dl.Data))
	assert.Empty(t, taskPods(t, ns, "only"))

	fire(t, srv.URL(), ns, "go", "good-1", "")
	waitPods(t, ns, "only", 1)
}

func TestEventsStayInTheirNamespace(t *testing.T) {
	srv := startNATS(t)
	a := namespace(t)
	b := a + "-b"
	_, err := env.Kubectl(t.Context(), "create", "namespace", b)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = env.Kubectl(context.Background(), "delete", "namespace", b, "--wait=false") })
	apply(t, a, oneTask)
	apply(t, b, oneTask)
	startDispatcher(t, srv.URL(), dispatcher.Options{})

	fire(t, srv.URL(), a, "go", "ns-1", "")
	waitPods(t, a, "only", 1)
	consumerSettled(t, srv.URL())
	assert.Empty(t, taskPods(t, b, "only"), "an ignition in %s started a task in %s", a, b)
}

func TestInvalidPodIsReportedOnceOnTheTask(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	// Valid for the CRD, refused for a Pod: the volume mount names no volume.
	apply(t, ns, `apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: broken
spec:
  startOnIgnition: [go]
  template:
    spec:
      containers:
      - name: main
        image: busybox
        volumeMounts:
        - name: missing
          mountPath: /data
`)
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	fire(t, srv.URL(), ns, "go", "bad-1", "")

	tk := waitTask(t, ns, "broken", func(tk *orcav1.Task) bool {
		return meta.IsStatusConditionFalse(tk.Status.Conditions, dispatcher.ConditionDispatching)
	})
	cond := meta.FindStatusCondition(tk.Status.Conditions, dispatcher.ConditionDispatching)
	assert.Equal(t, "InvalidPod", cond.Reason)
	assert.Contains(t, cond.Message, "volumeMounts[0].name")

	var events eventsv1.EventList
	err := testenv.Eventually(t.Context(), 10*time.Second, func(ctx context.Context) (bool, error) {
		err := env.Client.List(ctx, &events, client.InNamespace(ns))
		return err == nil && len(events.Items) > 0, err
	})
	require.NoError(t, err)
	assert.Equal(t, corev1.EventTypeWarning, events.Items[0].Type)
	assert.Equal(t, "InvalidPod", events.Items[0].Reason)
	assert.Equal(t, "broken", events.Items[0].Regarding.Name)
	// Not retried: the event is acked, not looping.
	consumerSettled(t, srv.URL())
	assert.Empty(t, taskPods(t, ns, "broken"))
}
