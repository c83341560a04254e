package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// cycle doubles its Pods each round: a starts b and c, and each of them starts a.
const cycle = `apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: a
spec:
  startOnIgnition: [go]
  startOnSuccess: [b, c]
  template:
    spec:
      containers: [{name: main, image: busybox}]
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: b
spec:
  startOnSuccess: [a]
  template:
    spec:
      containers: [{name: main, image: busybox}]
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: c
spec:
  startOnSuccess: [a]
  template:
    spec:
      containers: [{name: main, image: busybox}]
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: again
spec:
  startOnIgnition: [again]
  startOnFailure: [again]
  maxRunSteps: 3
  template:
    spec:
      containers: [{name: main, image: busybox}]
`

// autoEnd plays a kubelet that ends every Pod of the namespace as soon as it
// sees it, with the exit code code gives it, until the test ends.
func autoEnd(t *testing.T, ns string, code func(corev1.Pod) int32) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			var pods corev1.PodList
			if env.Client.List(ctx, &pods, client.InNamespace(ns)) != nil {
				continue
			}
			for _, p := range pods.Items {
				if p.Status.Phase == "" || p.Status.Phase == corev1.PodPending {
					_ = kubelet().End(ctx, key(p), code(p), "ok")
				}
			}
		}
	}()
}

func TestLoopGuardHaltsACycleThatDoublesEachRound(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	const limit = 10
	startDispatcher(t, srv.URL(), dispatcher.Options{MaxRunSteps: limit})
	startWatcher(t, srv.URL())
	apply(t, ns, cycle)
	halted := subscribe(t, srv.URL(), bus.SubjectTaskHalted+"."+ns+".>")
	autoEnd(t, ns, func(p corev1.Pod) int32 {
		if p.Annotations[orcav1.AnnotationTask] == "again" {
			return 1
		}
		return 0
	})
	haltedBefore := counter(t, "orca_dispatcher_halted_total")

	fire(t, srv.URL(), ns, "go", "cycle-1", "")
	var h bus.TaskHalt
	msg := nextEvent(t, halted, &h)
	assert.Equal(t, bus.TypeTaskHalted, msg.Header.Get("ce-type"))
	assert.Equal(t, "orca/dispatcher", msg.Header.Get("ce-source"))
	assert.Equal(t, "cycle-1", msg.Header.Get("ce-"+bus.ExtensionRun))
	assert.Equal(t, "cycle-1", h.Run)
	assert.Equal(t, int64(limit), h.Steps)
	assert.Equal(t, int64(limit), h.Limit)
	assert.Equal(t, dispatcher.ReasonRunHalted, h.Reason)
	assert.Contains(t, []string{"a", "b", "c"}, h.Task)

	settled(t, srv.URL(), dispatcher.ConsumerName)
	err := testenv.Eventually(t.Context(), 20*time.Second, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := env.Client.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodSucceeded {
				return false, nil
			}
		}
		return true, nil
	})
	require.NoError(t, err)
	settled(t, srv.URL(), dispatcher.ConsumerName)
	total := 0
	for _, task := range []string{"a", "b", "c"} {
		total += len(taskPods(t, ns, task))
	}
	assert.Equal(t, limit, total, "the run started exactly its limit of Pods")
	n := 1
	for {
		if _, err := halted.NextMsg(100 * time.Millisecond); err != nil {
			break
		}
		n++
	}
	assert.GreaterOrEqual(t, n, 2, "every start past the limit is halted and said so")
	assert.Equal(t, float64(n), counter(t, "orca_dispatcher_halted_total")-haltedBefore)
	assertEvent(t, ns, h.Task, dispatcher.ReasonRunHalted, "run cycle-1 has started 10 Pods")

	// A self-retry loop (the seed's startOnFailure: [task1]), bounded by the
	// Task's own maxRunSteps.
	fire(t, srv.URL(), ns, "again", "again-1", "")
	nextEvent(t, halted, &h)
	assert.Equal(t, "again", h.Task)
	assert.Equal(t, int64(3), h.Limit)
	settled(t, srv.URL(), dispatcher.ConsumerName)
	assert.Len(t, taskPods(t, ns, "again"), 3)
}

// assertEvent checks that the Task has a Kubernetes Event with reason and a note
// that contains note.
func assertEvent(t *testing.T, ns, task, reason, note string) {
	t.Helper()
	err := testenv.Eventually(t.Context(), 10*time.Second, func(ctx context.Context) (bool, error) {
		var events eventsv1.EventList
		if err := env.Client.List(ctx, &events, client.InNamespace(ns)); err != nil {
			return false, err
		}
		for _, e := range events.Items {
			if e.Regarding.Name == task && e.Reason == reason && e.Type == corev1.EventTypeWarning {
				assert.Contains(t, e.Note, note)
				return true, nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "no %s Event on task %s", reason, task)
}
