package scheduler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/scheme"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *testenv.Env) { env = e }))
}

// attempt is one call of the scheduler's publish.
type attempt struct {
	ig bus.Ignition
	at time.Time // wall clock of the call
}

// harness is a namespace, a real nats-server with Orca's stream, a consumer of
// ignitions and a record of the scheduler's publish calls.
type harness struct {
	t  *testing.T
	ns string
	b  *bus.Bus

	mu        sync.Mutex
	attempts  []attempt
	delivered []bus.Ignition
	failNext  int // publish calls that store the event but report an error
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	_, b := testenv.NATS(t)
	h := &harness{t: t, ns: env.Namespace(t), b: b}

	// One handler at a time keeps the stream's order, so that a marker published
	// last is delivered last.
	c, err := b.Consume(t.Context(), bus.ConsumerOptions{Name: "test-x", Subjects: []string{bus.FilterIgnitions}, Concurrency: 1},
		func(_ context.Context, d *bus.Delivery) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.delivered = append(h.delivered, *d.Ignition)
			return nil
		})
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	return h
}

// publish is the scheduler's publish: it records each call, then publishes.
func (h *harness) publish(ctx context.Context, ig bus.Ignition) error {
	h.mu.Lock()
	h.attempts = append(h.attempts, attempt{ig: ig, at: time.Now()})
	fail := h.failNext > 0
	if fail {
		h.failNext--
	}
	h.mu.Unlock()
	if err := h.b.PublishIgnition(ctx, ig); err != nil {
		return err
	}
	if fail {
		return errors.New("injected failure after the publish")
	}
	return nil
}

// startScheduler runs a manager with the scheduler on the harness's namespace
// until the returned stop is called (or the test ends).
func (h *harness) startScheduler(now func() time.Time) (stop func()) {
	h.t.Helper()
	return h.startSchedulerWith(Options{Now: now})
}

// startSchedulerWith is startScheduler with options (publish is the harness's).
func (h *harness) startSchedulerWith(o Options) (stop func()) {
	t := h.t
	t.Helper()
	mgr, err := manager.New(env.Config, manager.Options{
		Scheme:                 scheme.New(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{h.ns: {}}},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	o.publish = h.publish
	require.NoError(t, Setup(ctx, mgr, h.b, o))
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err, "manager")
			case <-time.After(30 * time.Second):
				t.Error("manager did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (h *harness) createIgnitor(name, scheduled, tz, data string) *orcav1.Ignitor {
	h.t.Helper()
	return h.create(name, orcav1.IgnitorSpec{Scheduled: scheduled, TimeZone: tz, Data: data})
}

// create creates an Ignitor; the API server fills in the defaults.
func (h *harness) create(name string, spec orcav1.IgnitorSpec) *orcav1.Ignitor {
	h.t.Helper()
	ign := &orcav1.Ignitor{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name}, Spec: spec}
	require.NoError(h.t, env.Client.Create(h.t.Context(), ign))
	return ign
}

// edit changes the Ignitor's spec and waits until the scheduler has seen the
// new generation: an edit is also how a test makes the scheduler look again
// after moving its clock.
func (h *harness) edit(name string, change func(*orcav1.IgnitorSpec)) *orcav1.Ignitor {
	h.t.Helper()
	var gen int64
	require.NoError(h.t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ign := h.get(name)
		change(&ign.Spec)
		ign.Spec.Description = fmt.Sprintf("edit %d", ign.Generation+1)
		err := env.Client.Update(h.t.Context(), ign)
		gen = ign.Generation
		return err
	}))
	return h.waitIgnitor(name, 10*time.Second, fmt.Sprintf("observedGeneration %d", gen),
		func(i *orcav1.Ignitor) bool { return i.Status.ObservedGeneration >= gen })
}

// clock is a fake clock that a test sets.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (h *harness) get(name string) *orcav1.Ignitor {
	h.t.Helper()
	var ign orcav1.Ignitor
	require.NoError(h.t, env.Client.Get(h.t.Context(), client.ObjectKey{Namespace: h.ns, Name: name}, &ign))
	return &ign
}

// waitIgnitor polls the Ignitor until cond holds.
func (h *harness) waitIgnitor(name string, timeout time.Duration, what string, cond func(*orcav1.Ignitor) bool) *orcav1.Ignitor {
	h.t.Helper()
	var last *orcav1.Ignitor
	require.Eventually(h.t, func() bool {
		last = h.get(name)
		return cond(last)
	}, timeout, 20*time.Millisecond, "ignitor %s: %s; last status %+v", name, what, statusOf(last))
	return last
}

func statusOf(ign *orcav1.Ignitor) any {
	if ign == nil {
		return nil
	}
	return ign.Status
}

// attemptsFor returns the publish calls for the Ignitor name.
func (h *harness) attemptsFor(name string) []attempt {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []attempt
	for _, a := range h.attempts {
		if a.ig.Name == name {
			out = append(out, a)
		}
	}
	return out
}

// deliveredFor returns the ignitions the consumer received for name.
func (h *harness) deliveredFor(name string) []bus.Ignition {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []bus.Ignition
	for _, ig := range h.delivered {
		if ig.Name == name {
			out = append(out, ig)
		}
	}
	return out
}

// drain publishes a marker and waits until the consumer received it: everything
// stored before it has been delivered by then.
func (h *harness) drain() {
	h.t.Helper()
	id := "marker-" + time.Now().Format("150405.000000000")
	require.NoError(h.t, h.b.PublishIgnition(h.t.Context(), bus.Ignition{ID: id, Source: "test", Namespace: h.ns, Name: "marker"}))
	require.Eventually(h.t, func() bool {
		for _, ig := range h.deliveredFor("marker") {
			if ig.ID == id {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "marker %s not delivered", id)
}

// waitEvent waits for an Event on the Ignitor name with the given type and reason
// and returns its note.
func (h *harness) waitEvent(name, eventType, reason string) string {
	h.t.Helper()
	var note string
	require.Eventually(h.t, func() bool {
		notes := h.events(name, eventType, reason)
		if len(notes) > 0 {
			note = notes[0]
		}
		return len(notes) > 0
	}, 10*time.Second, 50*time.Millisecond, "no %s Event %s on ignitor %s", eventType, reason, name)
	return note
}

// events returns the notes of the Events on the Ignitor name with the given
// type and reason.
func (h *harness) events(name, eventType, reason string) []string {
	h.t.Helper()
	var list eventsv1.EventList
	require.NoError(h.t, env.Client.List(h.t.Context(), &list, client.InNamespace(h.ns)))
	var notes []string
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Type == eventType && e.Reason == reason {
			notes = append(notes, e.Note)
		}
	}
	return notes
}

func validCondition(ign *orcav1.Ignitor) *metav1.Condition {
	return meta.FindStatusCondition(ign.Status.Conditions, ConditionScheduleValid)
}

func timeEqual(mt *metav1.Time, t time.Time) bool { return mt != nil && mt.Time.Equal(t) }
