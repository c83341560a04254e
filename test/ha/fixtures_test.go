package ha_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// services are Orca's four services, each a binary of ./cmd.
var services = []string{"scheduler", "dispatcher", "watcher", "actions"}

// workflow is a Task "work" that every ignition named in ignitions starts, and
// whose success POSTs the completion to hookURL through the Action "hook".
func workflow(hookURL string, ignitions ...string) string {
	list := ""
	for _, ig := range ignitions {
		list += fmt.Sprintf("%q,", ig)
	}
	return fmt.Sprintf(`apiVersion: sirocco.cloud/v1alpha1
kind: Action
metadata:
  name: hook
spec:
  webhook:
    url: %s
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: work
spec:
  startOnIgnition: [%s]
  successActions: [hook]
  # The test looks at every run's Pod afterwards.
  successfulRunsHistoryLimit: 1000000
  template:
    spec:
      containers:
      - name: main
        image: busybox
`, hookURL, list[:len(list)-1])
}

// ignitor is an Ignitor firing on schedule.
func ignitor(name, schedule string) string {
	return fmt.Sprintf(`apiVersion: sirocco.cloud/v1alpha1
kind: Ignitor
metadata:
  name: %s
spec:
  scheduled: %q
`, name, schedule)
}

func apply(t *testing.T, ns, manifest string) {
	t.Helper()
	_, err := env.KubectlInput(t.Context(), manifest, "apply", "-n", ns, "-f", "-")
	require.NoError(t, err)
}

// webhook counts the task events POSTed to it (binary CloudEvents), by event id
// and by Pod.
type webhook struct {
	*httptest.Server
	mu       sync.Mutex
	ids, pod map[string]int
}

func newWebhook(t *testing.T) *webhook {
	h := &webhook{ids: map[string]int{}, pod: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res bus.TaskResult
		if err := json.NewDecoder(r.Body).Decode(&res); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.ids[r.Header.Get("Ce-Id")]++
		h.pod[res.Pod]++
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

// received returns how many times each event id was POSTed.
func (h *webhook) received() map[string]int { return h.copy(h.ids) }

// pods returns how many times a task event of each Pod was POSTed.
func (h *webhook) pods() map[string]int { return h.copy(h.pod) }

func (h *webhook) copy(m map[string]int) map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// kubelet ends every Orca Pod of ns that is still pending, successfully, until
// the test ends: it plays the kubelet of a node that runs Pods in no time.
func kubelet(t *testing.T, ns string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	k := testenv.Kubelet{Client: env.Client}
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			var pods corev1.PodList
			if err := env.Client.List(ctx, &pods, client.InNamespace(ns), client.HasLabels{orcav1.LabelTask}); err == nil {
				for _, p := range pods.Items {
					if p.Status.Phase == "" || p.Status.Phase == corev1.PodPending {
						_ = k.Succeed(ctx, client.ObjectKeyFromObject(&p), "done")
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
}

// pods returns the Pods of Task work by the id of the event that started them.
func pods(t *testing.T, ns string) map[string][]corev1.Pod {
	t.Helper()
	var list corev1.PodList
	require.NoError(t, env.Client.List(t.Context(), &list, client.InNamespace(ns), client.MatchingLabels{orcav1.LabelTask: "work"}))
	out := map[string][]corev1.Pod{}
	for _, p := range list.Items {
		id := p.Annotations[orcav1.AnnotationEventID]
		out[id] = append(out[id], p)
	}
	return out
}

// storedMsg is a message of the stream.
type storedMsg struct {
	ID     string // the CloudEvent id (ce-id; Nats-Msg-Id is "<source> <id>")
	Stored time.Time
	Data   []byte
}

// jetStream connects to NATS at natsURL (a list) until the test ends.
func jetStream(t *testing.T, natsURL string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

// stored returns the messages the stream holds on subject (a filter), in order.
func stored(t *testing.T, natsURL, subject string) []storedMsg {
	t.Helper()
	js := jetStream(t, natsURL)
	ctx := t.Context()
	var cons jetstream.Consumer
	// A NATS cluster that just lost a node may take a while to answer.
	err := testenv.Eventually(ctx, 30*time.Second, func(ctx context.Context) (bool, error) {
		var err error
		cons, err = js.OrderedConsumer(ctx, bus.DefaultStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
		return err == nil, err
	})
	require.NoError(t, err)
	var out []storedMsg
	for {
		info, err := cons.Info(ctx)
		require.NoError(t, err)
		if info.NumPending == 0 {
			return out
		}
		batch, err := cons.Fetch(int(min(info.NumPending, 500)), jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		for m := range batch.Messages() {
			sm := storedMsg{ID: m.Headers().Get("ce-id"), Data: m.Data()}
			if md, err := m.Metadata(); err == nil {
				sm.Stored = md.Timestamp
			}
			out = append(out, sm)
		}
		require.NoError(t, batch.Error())
	}
}

// countIDs counts the messages of each event id.
func countIDs(msgs []storedMsg) map[string]int {
	out := map[string]int{}
	for _, m := range msgs {
		out[m.ID]++
	}
	return out
}

// consumersSettled waits until the durable consumers of the stream have nothing
// pending, unacked or waiting for redelivery.
func consumersSettled(t *testing.T, natsURL string, timeout time.Duration) {
	t.Helper()
	js := jetStream(t, natsURL)
	var last string
	err := testenv.Eventually(t.Context(), timeout, func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, bus.DefaultStream)
		if err != nil {
			return false, err
		}
		names := s.ConsumerNames(ctx)
		settled := true
		for name := range names.Name() {
			c, err := s.Consumer(ctx, name)
			if err != nil {
				return false, err
			}
			info := c.CachedInfo()
			if info.Config.Durable == "" {
				continue // a reader of the test's
			}
			if info.NumAckPending > 0 || info.NumPending > 0 {
				settled, last = false, fmt.Sprintf("%s: %d pending, %d unacked", name, info.NumPending, info.NumAckPending)
			}
		}
		return settled, names.Err()
	})
	require.NoError(t, err, "consumers not settled: %s", last)
}
