package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// maxExamples bounds the examples an assertion message lists.
const maxExamples = 5

// outcome is what the checks found: the figures and, per assertion, what broke it.
type outcome struct {
	fired, complete, lost     int
	duplicatePods             int
	duplicateWebhooks         int
	latencies                 []time.Duration // ignition stored -> last Pod seen, per complete run
	reachedLast               map[string]bool // runs whose last Task ran, which must send a webhook
	deadLetters, expectedDead int
	limitedMost               int                 // most Pods of the limited Task seen running at once
	cleanedDeleted            int                 // Pods of the cleaned Task deleted by the check
	taskEvents                int                 // succeeded task events stored
	duplicateTaskEvents       int                 // of them, stored again under an id already stored
	ticks                     int                 // scheduled times of the ticking Ignitor fired
	tickLate                  time.Duration       // the longest from a scheduled time to its ignition stored
	failures                  map[string][]string // assertion -> examples (all counted, some kept)
	failureCounts             map[string]int
}

func (o *outcome) fail(assertion, format string, args ...any) {
	if o.failures == nil {
		o.failures, o.failureCounts = map[string][]string{}, map[string]int{}
	}
	o.failureCounts[assertion]++
	if len(o.failures[assertion]) < maxExamples {
		o.failures[assertion] = append(o.failures[assertion], fmt.Sprintf(format, args...))
	}
}

// Assertions, in the order they are reported.
const (
	assertOnce       = "every run reached every Task exactly once"
	assertData       = "the data arrived intact"
	assertFinalizer  = "no Pod keeps Orca's finalizer"
	assertWebhook    = "every webhook id was received exactly once"
	assertDeadLetter = "no dead letter but the injected ones"
	assertConsumer   = "a deleted consumer is made again by its running service"
	assertParallel   = "the limited Task never ran more Pods at once than its parallelism"
)

var assertions = []string{assertOnce, assertAttempts, assertParallel, assertCleaned, assertTicks, assertData, assertFinalizer, assertWebhook, assertDeadLetter, assertConsumer}

// checkPods checks every run's Pods: one per Task, with the right data, ended
// and without Orca's finalizer; it fills the run figures and latencies.
func (o *outcome) checkPods(pods []corev1.Pod, runs []*run, k *kubelet) {
	byRun := map[string]map[string][]*corev1.Pod{}
	for i := range pods {
		p := &pods[i]
		if controllerutil.ContainsFinalizer(p, orcav1.FinalizerCompletion) {
			o.fail(assertFinalizer, "Pod %s (%s) still has %s", p.Name, p.Status.Phase, orcav1.FinalizerCompletion)
		}
		r, task := p.Annotations[orcav1.AnnotationRun], p.Annotations[orcav1.AnnotationTask]
		if byRun[r] == nil {
			byRun[r] = map[string][]*corev1.Pod{}
		}
		byRun[r][task] = append(byRun[r][task], p)
	}
	o.fired = len(runs)
	o.reachedLast = map[string]bool{}
	for _, r := range runs {
		tasks := byRun[r.id]
		delete(byRun, r.id)
		var missing []string
		var last time.Time
		for _, task := range allTasks() {
			ps := tasks[task]
			switch {
			case len(ps) == 0:
				missing = append(missing, task)
				continue
			case len(ps) > 1:
				o.duplicatePods += len(ps) - 1
				o.fail(assertOnce, "run %s started %s %d times: %s", r.id, task, len(ps), podNames(ps))
			}
			for _, p := range ps {
				o.checkData(r, task, p)
				if got := envValue(p, orcav1.EnvRun); got != r.id {
					o.fail(assertData, "run %s: Pod %s of %s got ORCA_RUN %q", r.id, p.Name, task, got)
				}
				if seen, ok := k.seen(p.Name); ok && seen.After(last) {
					last = seen
				}
			}
		}
		if len(tasks[lastTask]) > 0 {
			o.reachedLast[r.id] = true
		}
		if len(missing) > 0 {
			o.lost++
			o.fail(assertOnce, "run %s never started %s", r.id, strings.Join(missing, ", "))
			continue
		}
		o.complete++
		if !last.IsZero() && !r.acked.IsZero() {
			o.latencies = append(o.latencies, last.Sub(r.acked))
		}
	}
	for r, tasks := range byRun {
		for task, ps := range tasks {
			o.duplicatePods += len(ps)
			o.fail(assertOnce, "Pods %s of %s belong to run %q that the suite never fired", podNames(ps), task, r)
		}
	}
}

// checkData checks the ORCA_DATA of a Task's Pod and, for a join, ORCA_INPUTS:
// the message of each Task it joins, and as ORCA_DATA one of them.
func (o *outcome) checkData(r *run, task string, p *corev1.Pod) {
	upstream, join := joins[task]
	if !join {
		if got, want := envValue(p, orcav1.EnvData), input(task, r.data); got != want {
			o.fail(assertData, "run %s: Pod %s of %s got ORCA_DATA %q, want %q", r.id, p.Name, task, got, want)
		}
		return
	}
	want := map[string]map[string]string{}
	var messages []string
	for _, u := range upstream {
		m := output(u, input(u, r.data))
		want[u] = map[string]string{"result": "succeeded", "message": m}
		messages = append(messages, m)
	}
	var got map[string]map[string]string
	if err := json.Unmarshal([]byte(envValue(p, orcav1.EnvInputs)), &got); err != nil || !maps.EqualFunc(got, want, maps.Equal) {
		o.fail(assertData, "run %s: Pod %s of %s got ORCA_INPUTS %q, want %v", r.id, p.Name, task, envValue(p, orcav1.EnvInputs), want)
	}
	if d := envValue(p, orcav1.EnvData); !slices.Contains(messages, d) {
		o.fail(assertData, "run %s: Pod %s of %s got ORCA_DATA %q, want one of %q", r.id, p.Name, task, d, messages)
	}
}

// checkParallelism checks that at most limitedParallelism Pods of the limited
// Task ran at once (checkPods checks that each run ran it once). Each Pod ran at
// least from when the kubelet stand-in first saw it to when it began to end it:
// a part of the time it existed and had not ended, so an overlap of these times
// is one of the Pods.
func (o *outcome) checkParallelism(pods []corev1.Pod, k *kubelet) {
	type edge struct {
		at    time.Time
		pod   string
		start bool
	}
	var edges []edge
	for i := range pods {
		p := &pods[i]
		if p.Annotations[orcav1.AnnotationTask] != limitedTask {
			continue
		}
		from, to, ok := k.ran(p.Name)
		if !ok {
			o.fail(assertParallel, "Pod %s of %s was not run by the kubelet stand-in", p.Name, limitedTask)
			continue
		}
		edges = append(edges, edge{from, p.Name, true}, edge{to, p.Name, false})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		if a.start == b.start {
			return 0
		}
		if a.start {
			return 1 // an end at the same time comes first
		}
		return -1
	})
	running := map[string]bool{}
	for _, e := range edges {
		if !e.start {
			delete(running, e.pod)
			continue
		}
		running[e.pod] = true
		o.limitedMost = max(o.limitedMost, len(running))
		if len(running) > limitedParallelism {
			o.fail(assertParallel, "at %s, %d Pods of %s ran at once (parallelism %d): %s", e.at.Format(time.RFC3339Nano),
				len(running), limitedTask, limitedParallelism, strings.Join(slices.Sorted(maps.Keys(running)), ", "))
		}
	}
}

// checkWebhooks checks that each run that reached the last Task sent one webhook,
// once, with the run's data.
func (o *outcome) checkWebhooks(byRun map[string][]receipt, runs []*run) {
	for _, r := range runs {
		got := byRun[r.id]
		delete(byRun, r.id)
		if len(got) == 0 {
			if o.reachedLast[r.id] {
				o.fail(assertWebhook, "run %s sent no webhook", r.id)
			}
			continue
		}
		calls := 0
		for _, rc := range got {
			calls += rc.count
			if want := output(lastTask, input(lastTask, r.data)); rc.message != want {
				o.fail(assertData, "run %s: webhook message %q, want %q", r.id, rc.message, want)
			}
		}
		if calls > 1 {
			o.duplicateWebhooks += calls - 1
			o.fail(assertWebhook, "run %s: %d webhook calls with %d distinct ids", r.id, calls, len(got))
		}
	}
	for r, got := range byRun {
		o.duplicateWebhooks += len(got)
		o.fail(assertWebhook, "%d webhooks of run %q that the suite never fired", len(got), r)
	}
}

// deadLetter is a message of orca.deadletter.>.
type deadLetter struct {
	consumer string
	sequence uint64
	subject  string
	reason   string
}

// readStream calls f with each message of the stream on filter, oldest first.
// A read that fails (in a NATS cluster a fresh reader may find no responder for
// a moment) is started again from the first message.
func readStream(ctx context.Context, js jetstream.JetStream, filter string, f func(jetstream.Msg)) error {
	var msgs []jetstream.Msg
	err := every(ctx, 2*time.Minute, time.Second, func(ctx context.Context) error {
		var err error
		msgs, err = readAll(ctx, js, filter)
		return err
	})
	for _, m := range msgs {
		f(m)
	}
	return err
}

// readAll returns the messages of the stream on filter, oldest first.
func readAll(ctx context.Context, js jetstream.JetStream, filter string) ([]jetstream.Msg, error) {
	cons, err := js.OrderedConsumer(ctx, bus.DefaultStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filter, err)
	}
	var out []jetstream.Msg
	for {
		batch, err := cons.Fetch(1024, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", filter, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			out = append(out, msg)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("fetch %s: %w", filter, err)
		}
		if n == 0 {
			return out, nil
		}
	}
}

// readDeadLetters reads every dead letter of the stream.
func readDeadLetters(ctx context.Context, js jetstream.JetStream) ([]deadLetter, error) {
	var out []deadLetter
	err := readStream(ctx, js, bus.FilterDeadLetter, func(msg jetstream.Msg) {
		h := msg.Headers()
		seq, _ := strconv.ParseUint(h.Get(bus.HeaderDeadLetterSequence), 10, 64)
		out = append(out, deadLetter{
			consumer: h.Get(bus.HeaderDeadLetterConsumer), sequence: seq,
			subject: h.Get(bus.HeaderDeadLetterSubject), reason: h.Get(bus.HeaderDeadLetterReason),
		})
	})
	return out, err
}

// countTaskEvents counts the task events stored more than once: the same
// CloudEvent id in two messages, which the duplicate window did not catch. Not
// an assertion of its own (consumers must bear it), but the cause of a
// duplicate webhook with a single id.
func (o *outcome) countTaskEvents(ctx context.Context, js jetstream.JetStream) error {
	ids := map[string]int{}
	err := readStream(ctx, js, bus.SubjectTaskSucceeded+".>", func(msg jetstream.Msg) {
		ids[msg.Headers().Get("ce-id")]++
	})
	for _, n := range ids {
		o.duplicateTaskEvents += n - 1
	}
	return err
}

// checkDeadLetters checks that the dead letters are exactly the injected
// messages, once per consumer that reads them.
func (o *outcome) checkDeadLetters(got []deadLetter, injected []injected) {
	type key struct {
		consumer string
		sequence uint64
	}
	want := map[key]string{}
	for _, in := range injected {
		for _, c := range in.consumers {
			want[key{c, in.sequence}] = in.what
		}
	}
	o.expectedDead, o.deadLetters = len(want), len(got)
	found := map[key]int{}
	for _, dl := range got {
		k := key{dl.consumer, dl.sequence}
		found[k]++
		switch {
		case want[k] == "":
			o.fail(assertDeadLetter, "consumer %s dead-lettered message %d of %s: %s", dl.consumer, dl.sequence, dl.subject, dl.reason)
		case found[k] > 1:
			o.fail(assertDeadLetter, "consumer %s dead-lettered the injected message %d again", dl.consumer, dl.sequence)
		}
	}
	for k, what := range want {
		if found[k] == 0 {
			o.fail(assertDeadLetter, "consumer %s did not dead-letter %s (message %d)", k.consumer, what, k.sequence)
		}
	}
}

// checkConsumers checks that each deleted consumer came back without a restart.
func (o *outcome) checkConsumers(deletions []consumerDeletion, grace time.Duration) {
	for _, d := range deletions {
		if d.recreated == 0 {
			o.fail(assertConsumer, "consumer %s was still missing %s after its deletion: its service had to be restarted", d.name, grace)
		}
	}
}

// listPods lists the Pods of the namespace, retrying while the API server is away.
func listPods(ctx context.Context, c client.Client, namespace string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	err := eventually(ctx, time.Minute, func(ctx context.Context) error {
		return c.List(ctx, &pods, client.InNamespace(namespace))
	})
	return pods.Items, err
}

// percentile returns the p-th percentile (0-100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func podNames(ps []*corev1.Pod) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}
