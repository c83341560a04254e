package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// refusePods makes the API server refuse every Pod of ns: a ResourceQuota of no
// Pods whose usage is filled in (as kube-controller-manager's resourcequota
// controller would; quota admission lets everything through until then). It
// returns once a dry-run Pod is refused.
func refusePods(t *testing.T, ns string) *corev1.ResourceQuota {
	t.Helper()
	ctx := t.Context()
	q := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "no-pods", Namespace: ns},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}},
	}
	require.NoError(t, env.Client.Create(ctx, q))
	q.Status = corev1.ResourceQuotaStatus{
		Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")},
		Used: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")},
	}
	require.NoError(t, env.Client.Status().Update(ctx, q))
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	err := testenv.Eventually(ctx, 10*time.Second, func(ctx context.Context) (bool, error) {
		err := env.Client.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		return apierrors.IsForbidden(err), nil
	})
	require.NoError(t, err, "the quota does not refuse pods")
	return q
}

// counterValue returns a counter of the registry that the services' /metrics
// serve, by its labels.
func counterValue(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// A Pod create that the API server keeps refusing for a reason a retry may fix
// is retried (far beyond a few deliveries), shows on the Task as Dispatching=False
// with the API server's message and a Warning Event, and once the cause is lifted
// the Pod is created and the condition cleared.
func TestRefusedPodIsRetriedAndShownUntilTheCauseIsLifted(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, oneTask)
	quota := refusePods(t, ns)
	startDispatcher(t, srv.URL(), dispatcher.Options{Consumer: bus.ConsumerOptions{
		RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
	}})
	retried := map[string]string{"consumer": dispatcher.ConsumerName, "outcome": "retried"}
	before := counterValue(t, "orca_bus_messages_total", retried)
	fire(t, srv.URL(), ns, "go", "quota-1", "")

	tk := waitTask(t, ns, "only", func(tk *orcav1.Task) bool {
		return meta.IsStatusConditionFalse(tk.Status.Conditions, dispatcher.ConditionDispatching)
	})
	cond := meta.FindStatusCondition(tk.Status.Conditions, dispatcher.ConditionDispatching)
	assert.Equal(t, string(metav1.StatusReasonForbidden), cond.Reason)
	assert.Contains(t, cond.Message, "exceeded quota: no-pods")
	var events eventsv1.EventList
	err := testenv.Eventually(t.Context(), 10*time.Second, func(ctx context.Context) (bool, error) {
		err := env.Client.List(ctx, &events, client.InNamespace(ns))
		return err == nil && len(events.Items) > 0, err
	})
	require.NoError(t, err)
	assert.Equal(t, corev1.EventTypeWarning, events.Items[0].Type)
	assert.Equal(t, "only", events.Items[0].Regarding.Name)
	assert.Contains(t, events.Items[0].Note, "exceeded quota")

	// More deliveries than the old limit of 10 pass, and the event is still kept.
	err = testenv.Eventually(t.Context(), 20*time.Second, func(context.Context) (bool, error) {
		return counterValue(t, "orca_bus_messages_total", retried)-before >= 15, nil
	})
	require.NoError(t, err, "the create is retried")
	assert.Empty(t, taskPods(t, ns, "only"))

	require.NoError(t, env.Client.Delete(t.Context(), quota))
	waitPods(t, ns, "only", 1)
	tk = waitTask(t, ns, "only", func(tk *orcav1.Task) bool {
		return meta.IsStatusConditionTrue(tk.Status.Conditions, dispatcher.ConditionDispatching)
	})
	assert.Equal(t, "PodCreated", meta.FindStatusCondition(tk.Status.Conditions, dispatcher.ConditionDispatching).Reason)
	consumerSettled(t, srv.URL())
}

// /readyz of a consuming service fails while its consumer cannot consume (here:
// the stream was deleted) and passes again once it consumes.
func TestReadinessFollowsTheConsumer(t *testing.T) {
	srv, b := testenv.NATS(t)
	ns := namespace(t)
	apply(t, ns, oneTask)
	probe := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	o := app.Options{
		Kubeconfig: env.KubeconfigPath, NATS: bus.Options{URLs: []string{srv.URL()}},
		ProbeAddr: probe, MetricsAddr: "0", LogFormat: "text",
	}
	go func() {
		done <- app.Run(ctx, "dispatcher", o, func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
			return dispatcher.Setup(ctx, mgr, b, dispatcher.Options{})
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	readyz := func(want int) string {
		t.Helper()
		var body string
		err := testenv.Eventually(t.Context(), 20*time.Second, func(ctx context.Context) (bool, error) {
			code, b, err := get(ctx, "http://"+probe+"/readyz?verbose")
			body = b
			return err == nil && code == want, nil
		})
		require.NoError(t, err, "/readyz never answered %d: %s", want, body)
		return body
	}
	readyz(http.StatusOK)

	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.NoError(t, js.DeleteStream(t.Context(), bus.DefaultStream))
	body := readyz(http.StatusInternalServerError)
	assert.Contains(t, body, "consumer-"+dispatcher.ConsumerName)

	require.NoError(t, b.EnsureStream(t.Context(), bus.StreamOptions{}))
	readyz(http.StatusOK)
	fire(t, srv.URL(), ns, "go", "after-restore", "")
	waitPods(t, ns, "only", 1)
}

// savedPosition returns the position the dispatcher's consumer saved in the
// state bucket.
func savedPosition(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	kv, err := js.KeyValue(t.Context(), bus.StateBucket(bus.DefaultStream))
	if err != nil {
		return 0
	}
	e, err := kv.Get(t.Context(), "position."+dispatcher.ConsumerName)
	if err != nil {
		return 0
	}
	var p bus.ConsumerPosition
	require.NoError(t, json.Unmarshal(e.Value(), &p))
	return p.Sequence
}

// deletePod deletes a Pod and lets it go, as a user cleaning up would.
func deletePod(t *testing.T, p corev1.Pod) {
	t.Helper()
	require.NoError(t, env.Client.Delete(t.Context(), &p))
	var cur corev1.Pod
	require.NoError(t, env.Client.Get(t.Context(), key(p), &cur))
	controllerutil.RemoveFinalizer(&cur, orcav1.FinalizerCompletion)
	require.NoError(t, env.Client.Update(t.Context(), &cur))
}

// A durable consumer created again, after it was deleted while the dispatcher ran
// or while it was down, goes on where the deleted one stood: it does not replay
// the stream and re-run a Task whose Pod was deleted since.
func TestRecreatedConsumerDoesNotRerunTasks(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	apply(t, ns, oneTask)
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	d := startDispatcher(t, srv.URL(), dispatcher.Options{})

	fire(t, srv.URL(), ns, "go", "first", "")
	first := waitPods(t, ns, "only", 1)[0]
	deletePod(t, first)
	err = testenv.Eventually(t.Context(), 10*time.Second, func(context.Context) (bool, error) {
		return savedPosition(t, js) >= 1, nil
	})
	require.NoError(t, err, "the position is saved")

	// Deleted while the dispatcher runs.
	require.NoError(t, js.DeleteConsumer(t.Context(), bus.DefaultStream, dispatcher.ConsumerName))
	fire(t, srv.URL(), ns, "go", "second", "")
	second := waitNewPod(t, ns, "only", first)
	consumerSettled(t, srv.URL())

	// Deleted while the dispatcher is down.
	d.stop()
	require.NoError(t, js.DeleteConsumer(t.Context(), bus.DefaultStream, dispatcher.ConsumerName))
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	fire(t, srv.URL(), ns, "go", "third", "")
	third := waitNewPod(t, ns, "only", second)
	consumerSettled(t, srv.URL())

	var names []string
	for _, p := range taskPods(t, ns, "only") {
		names = append(names, p.Name)
	}
	assert.ElementsMatch(t, []string{second.Name, third.Name}, names, "the first ignition did not start its Task again")
}
