package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sirocco-cloud/orca/internal/actions"
	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
)

// The workflow: the ignition starts a chain of three Tasks and, at the same time,
// a fan-out of five, a diamond (dia-a, then dia-b and dia-c, then the join dia-d:
// both succeeded) and the limited Task; the chain's last Task has a webhook
// Action. The limited Task runs at most limitedParallelism Pods at once
// (concurrencyPolicy Allow): the starts of the runs beyond wait, stored in the
// bus, through the kills; the kubelet stand-in holds each of its Pods for
// limitedHold before it ends it, so that they do wait.
const (
	ignitionName       = "go"
	hookAction         = "hook"
	lastTask           = "chain-3"
	limitedTask        = "limited"
	limitedParallelism = 2
	limitedHold        = 300 * time.Millisecond
)

// workflow maps each Task to the Task whose success starts it; "" is the ignition.
var workflow = map[string]string{
	"chain-1": "", "chain-2": "chain-1", "chain-3": "chain-2",
	"fan-1": "", "fan-2": "", "fan-3": "", "fan-4": "", "fan-5": "",
	"dia-a": "", "dia-b": "dia-a", "dia-c": "dia-a",
	limitedTask: "",
}

// joins maps each join of the workflow to the Tasks whose success it waits for.
var joins = map[string][]string{"dia-d": {"dia-b", "dia-c"}}

// allTasks returns the names of the workflow's Tasks, sorted.
func allTasks() []string {
	names := slices.Collect(maps.Keys(workflow))
	for t := range joins {
		names = append(names, t)
	}
	slices.Sort(names)
	return names
}

// keepEveryRun keeps the Pods of every run, so that the checks can count them.
var keepEveryRun = orcav1.TaskHistory{SuccessfulRunsHistoryLimit: ptr.To[int32](math.MaxInt32), FailedRunsHistoryLimit: ptr.To[int32](math.MaxInt32)}

// consumers are the durable consumers of Orca's services.
var consumers = []string{dispatcher.ConsumerName, dispatcher.JoinConsumerName, actions.ConsumerName}

// input returns the ORCA_DATA that task gets in a run fired with data.
func input(task, data string) string {
	prev := workflow[task]
	if prev == "" {
		return data
	}
	return output(prev, input(prev, data))
}

// run is one ignition fired by the suite; its event id is also its run id.
type run struct {
	id    string
	data  string
	acked time.Time // when the stream acknowledged the ignition
}

// newRuns returns n runs with ids and data derived from the seed. The data has
// quotes, a newline, a tab and non-ASCII letters, to catch an encoding slip.
func newRuns(rng *rand.Rand, seed uint64, n int) []*run {
	runs := make([]*run, n)
	for i := range runs {
		runs[i] = &run{
			id:   fmt.Sprintf("chaos-%d-%d", seed, i),
			data: fmt.Sprintf("run %d «chaos» \"%016x\"\n\tend", i, rng.Uint64()),
		}
	}
	return runs
}

// applyWorkflow creates the Tasks and the webhook Action in namespace.
func applyWorkflow(ctx context.Context, c client.Client, namespace, hookURL string) error {
	objs := []client.Object{&orcav1.Action{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: hookAction},
		Spec:       orcav1.ActionSpec{Webhook: &orcav1.WebhookAction{URL: hookURL}},
	}}
	for task, prev := range workflow {
		t := &orcav1.Task{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: task},
			Spec: orcav1.TaskSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"true"}}},
			}}, TaskHistory: keepEveryRun},
		}
		if prev == "" {
			t.Spec.StartOnIgnition = []orcav1.ObjectName{ignitionName}
		} else {
			t.Spec.StartOnSuccess = []orcav1.ObjectName{orcav1.ObjectName(prev)}
		}
		switch task {
		case lastTask:
			t.Spec.SuccessActions = []orcav1.ObjectName{hookAction}
		case limitedTask:
			t.Spec.Parallelism = ptr.To[int32](limitedParallelism)
		}
		objs = append(objs, t)
	}
	for task, upstream := range joins {
		t := &orcav1.Task{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: task},
			Spec: orcav1.TaskSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"true"}}},
			}}},
		}
		all := &orcav1.StartWhen{}
		for _, u := range upstream {
			all.AllSucceeded = append(all.AllSucceeded, orcav1.ObjectName(u))
		}
		t.Spec.StartWhen = all
		t.Spec.TaskHistory = keepEveryRun
		objs = append(objs, t)
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("create %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// publisher fires ignitions as an external system would: binary-mode CloudEvents
// published to the stream, retried until the stream acknowledges them, with
// Nats-Msg-Id set so that a retry is stored once.
type publisher struct {
	nc        *nats.Conn
	js        jetstream.JetStream
	namespace string
}

func newPublisher(urls, namespace string) (*publisher, error) {
	nc, err := nats.Connect(urls, nats.Name("orca-chaos-publisher"), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		return nil, fmt.Errorf("connect publisher: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &publisher{nc: nc, js: js, namespace: namespace}, nil
}

// fire publishes the run's ignition and records when it was stored.
func (p *publisher) fire(ctx context.Context, r *run) error {
	msg := nats.NewMsg(bus.IgnitionSubject(p.namespace, ignitionName))
	msg.Header.Set("ce-specversion", "1.0")
	msg.Header.Set("ce-id", r.id)
	msg.Header.Set("ce-source", "orca-chaos/publisher")
	msg.Header.Set("ce-type", bus.TypeIgnited)
	msg.Header.Set("ce-time", time.Now().UTC().Format(time.RFC3339Nano))
	msg.Header.Set("content-type", "text/plain; charset=utf-8")
	msg.Data = []byte(r.data)
	if _, err := p.publish(ctx, msg, r.id); err != nil {
		return err
	}
	r.acked = time.Now()
	return nil
}

// publish stores msg on the stream, retrying through a NATS restart.
func (p *publisher) publish(ctx context.Context, msg *nats.Msg, id string) (*jetstream.PubAck, error) {
	for {
		attempt, cancel := context.WithTimeout(ctx, 3*time.Second)
		ack, err := p.js.PublishMsg(attempt, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(bus.DefaultStream))
		cancel()
		if err == nil {
			return ack, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("publish %s: %w (last: %v)", id, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// injected is a malformed message the suite publishes on purpose, with the
// consumers that must dead-letter it.
type injected struct {
	what      string
	sequence  uint64
	consumers []string
}

// inject publishes two malformed messages: a non-CloudEvent ignition (only the
// dispatcher reads ignitions) and a task event whose data is not JSON (both the
// dispatcher and the actions service read it).
func (p *publisher) inject(ctx context.Context) ([]injected, error) {
	notCE := nats.NewMsg(bus.IgnitionSubject(p.namespace, ignitionName))
	notCE.Data = []byte("chaos: not a CloudEvent")
	badData := nats.NewMsg(bus.TaskSubject(true, p.namespace, lastTask))
	badData.Header.Set("ce-specversion", "1.0")
	badData.Header.Set("ce-id", "chaos-malformed-task-event")
	badData.Header.Set("ce-source", "orca-chaos/publisher")
	badData.Header.Set("ce-type", bus.TypeTaskSucceeded)
	badData.Header.Set("content-type", "application/json")
	badData.Data = []byte(`{"task": "chain-3", "message": `)
	var out []injected
	for _, m := range []struct {
		msg       *nats.Msg
		id, what  string
		consumers []string
	}{
		{notCE, "chaos-malformed-ignition", "an ignition that is not a CloudEvent", []string{dispatcher.ConsumerName}},
		{badData, "chaos-malformed-task-event", "a task event whose data is not JSON", []string{dispatcher.ConsumerName, actions.ConsumerName}},
	} {
		ack, err := p.publish(ctx, m.msg, m.id)
		if err != nil {
			return out, err
		}
		out = append(out, injected{what: m.what, sequence: ack.Sequence, consumers: m.consumers})
	}
	return out, nil
}

func (p *publisher) close() { p.nc.Close() }

// receiver is the webhook Action's target: it counts the CloudEvents it gets by
// id, and keeps each one's run and message.
type receiver struct {
	srv *httptest.Server

	mu  sync.Mutex
	got map[string]*receipt // by CloudEvent id
}

type receipt struct {
	count   int
	run     string
	message string
}

func newReceiver() *receiver {
	r := &receiver{got: map[string]*receipt{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	id := req.Header.Get("Ce-Id")
	var res bus.TaskResult
	if id == "" || json.NewDecoder(req.Body).Decode(&res) != nil {
		http.Error(w, "not a task event", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	rc, ok := r.got[id]
	if !ok {
		rc = &receipt{run: req.Header.Get("Ce-" + bus.ExtensionRun), message: res.Message}
		r.got[id] = rc
	}
	rc.count++
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// byRun returns the receipts of each run.
func (r *receiver) byRun() map[string][]receipt {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]receipt{}
	for _, rc := range r.got {
		out[rc.run] = append(out[rc.run], *rc)
	}
	return out
}

func (r *receiver) url() string { return r.srv.URL + "/hook" }

func (r *receiver) close() { r.srv.Close() }
