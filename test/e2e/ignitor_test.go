package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/scheduler"
)

func startScheduler(t *testing.T, natsURL string, now func() time.Time) *service {
	return startService(t, natsURL, "scheduler", func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
		return scheduler.Setup(ctx, mgr, b, scheduler.Options{Now: now})
	})
}

// TestIgnitorCatchUpStartsOnePodPerMissedTime: the scheduler comes back (its
// clock set 3.5 minutes after the Ignitor's creation) and catches up a
// suspended-then-resumed "@every 1m" Ignitor with catchUp All: the dispatcher
// starts the Task once per missed time, each under the firing's own run id, and
// a restarted scheduler starts nothing more.
func TestIgnitorCatchUpStartsOnePodPerMissedTime(t *testing.T) {
	srv := startNATS(t)
	ns := namespace(t)
	startDispatcher(t, srv.URL(), dispatcher.Options{})
	apply(t, ns, `apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata:
  name: tick
spec:
  startOnIgnition: [ticker]
  template:
    spec:
      containers:
      - name: main
        image: busybox
`)
	apply(t, ns, `apiVersion: sirocco.cloud/v1alpha1
kind: Ignitor
metadata:
  name: ticker
spec:
  scheduled: "@every 1m"
  data: tock
  suspend: true
  catchUp: All
  maxCatchUpRuns: 5
`)
	var ign orcav1.Ignitor
	require.NoError(t, env.Client.Get(t.Context(), ignitorKey(ns, "ticker"), &ign))
	c := ign.CreationTimestamp.Time
	now := func() time.Time { return c.Add(3*time.Minute + 30*time.Second) }
	sched := startScheduler(t, srv.URL(), now)

	// Suspended: nothing starts.
	require.Eventually(t, func() bool {
		require.NoError(t, env.Client.Get(t.Context(), ignitorKey(ns, "ticker"), &ign))
		return ign.Status.ObservedGeneration == ign.Generation
	}, 10*time.Second, 20*time.Millisecond)
	assert.Empty(t, taskPods(t, ns, "tick"))

	_, err := env.KubectlInput(t.Context(), `{"spec":{"suspend":false}}`, "patch", "-n", ns, "ignitor", "ticker", "--type=merge", "--patch-file=/dev/stdin")
	require.NoError(t, err)
	pods := waitPods(t, ns, "tick", 3)
	var runs, want []string
	for _, p := range pods {
		e := envOf(p.Spec.Containers[0])
		assert.Equal(t, "ticker", e[orcav1.EnvInitiator])
		assert.Equal(t, "tock", e[orcav1.EnvData])
		runs = append(runs, e[orcav1.EnvRun])
	}
	for m := 1; m <= 3; m++ {
		want = append(want, fmt.Sprintf("%s-%d", ign.UID, c.Add(time.Duration(m)*time.Minute).Unix()))
	}
	slices.Sort(runs)
	assert.Equal(t, want, runs, "one run per missed time, under the firing's id")

	sched.stop()
	startScheduler(t, srv.URL(), now)
	_, err = env.KubectlInput(t.Context(), `{"spec":{"description":"restarted"}}`, "patch", "-n", ns, "ignitor", "ticker", "--type=merge", "--patch-file=/dev/stdin")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		require.NoError(t, env.Client.Get(t.Context(), ignitorKey(ns, "ticker"), &ign))
		return ign.Status.ObservedGeneration == ign.Generation
	}, 10*time.Second, 20*time.Millisecond)
	assert.Len(t, taskPods(t, ns, "tick"), 3, "the restarted scheduler started nothing more")
	assert.Len(t, ign.Status.History, 3)
}

func ignitorKey(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }
