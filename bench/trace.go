package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/sirocco-cloud/orca/internal/bus"
)

// step is a moment of a hop after the bench's status write started.
type step int

const (
	patched   step = iota // the status write returned
	informed              // the observer's informer saw the Pod Succeeded
	published             // the task event reached a consumer of the bench (-trace)
	posted                // the dispatcher sent its Pod create (in-process dispatcher only)
	created               // the dispatcher's Pod create returned (in-process dispatcher only)
	steps
)

var stepNames = [steps]string{"status write returned", "informer saw Succeeded", "task event consumed",
	"dispatcher's create sent", "dispatcher's create returned"}

// marks records, per Pod uid, when each step happened.
type marks struct {
	mu    sync.Mutex
	at    map[types.UID]*[steps]time.Time
	posts [][2]time.Time // the in-process dispatcher's Pod creates: sent, returned
}

// post records one Pod create of the in-process dispatcher.
func (m *marks) post(sent, returned time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.posts = append(m.posts, [2]time.Time{sent, returned})
	if len(m.posts) > 4096 {
		m.posts = append(m.posts[:0], m.posts[2048:]...)
	}
}

// postAfter marks, for the ended Pod uid, the first dispatcher create sent after t0.
func (m *marks) postAfter(uid types.UID, t0 time.Time) {
	m.mu.Lock()
	var found [2]time.Time
	for _, p := range m.posts {
		if p[0].After(t0) {
			found = p
			break
		}
	}
	m.mu.Unlock()
	if !found[0].IsZero() {
		m.mark(posted, uid, found[0])
		m.mark(created, uid, found[1])
	}
}

// timedCreates is an HTTP transport that records the Pod creates through it.
type timedCreates struct {
	rt    http.RoundTripper
	marks *marks
}

func (t timedCreates) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/pods") {
		return t.rt.RoundTrip(req)
	}
	sent := time.Now()
	resp, err := t.rt.RoundTrip(req)
	t.marks.post(sent, time.Now())
	return resp, err
}

func newMarks() *marks { return &marks{at: map[types.UID]*[steps]time.Time{}} }

func (m *marks) mark(s step, uid types.UID, t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.at[uid]
	if a == nil {
		a = new([steps]time.Time)
		m.at[uid] = a
	}
	if a[s].IsZero() {
		a[s] = t
	}
}

func (m *marks) get(uid types.UID) [steps]time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.at[uid]; a != nil {
		return *a
	}
	return [steps]time.Time{}
}

// breakdown collects, per step, the time from a hop's start.
type breakdown struct {
	steps [steps][]float64
	total []float64
}

func (b *breakdown) add(m [steps]time.Time, t0, end time.Time) {
	for s, at := range m {
		if !at.IsZero() {
			b.steps[s] = append(b.steps[s], ms(at.Sub(t0)))
		}
	}
	b.total = append(b.total, ms(end.Sub(t0)))
}

// String gives the p50 of each step, as "step p50 ms".
func (b *breakdown) String() string {
	var parts []string
	for s, v := range b.steps {
		if len(v) > 0 {
			parts = append(parts, fmt.Sprintf("%s %.1f", stepNames[s], summarize(v).P50))
		}
	}
	parts = append(parts, fmt.Sprintf("next Pod seen %.1f", summarize(b.total).P50))
	return strings.Join(parts, ", ") + " (ms after the status write started, p50)"
}

// traceEvents consumes Orca's task events with a durable consumer of the bench's
// own and marks when each arrived (the event id is the ended Pod's uid).
func traceEvents(ctx context.Context, b *bus.Bus, m *marks) error {
	_, err := b.Consume(ctx, bus.ConsumerOptions{Name: "bench-trace", Subjects: bus.FilterTaskEvents},
		func(_ context.Context, d *bus.Delivery) error {
			m.mark(published, types.UID(d.Event.ID()), time.Now())
			return nil
		})
	return err
}
