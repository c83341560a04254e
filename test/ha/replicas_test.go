package ha_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/sirocco-cloud/orca/internal/actions"
	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/scheduler"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// leaderOf waits until exactly one of procs says it leads the election lease, and
// returns it with the Lease's holder.
func leaderOf(t *testing.T, ns, lease string, procs ...*proc) (*proc, string) {
	t.Helper()
	var leader *proc
	err := testenv.Eventually(t.Context(), 30*time.Second, func(ctx context.Context) (bool, error) {
		leader = nil
		for _, p := range procs {
			if !p.running() {
				continue
			}
			v, err := p.metric(ctx, "leader_election_master_status", "name", lease)
			if err != nil {
				return false, err
			}
			if v == 1 {
				if leader != nil {
					return false, fmt.Errorf("%s and %s both lead %s", leader.name, p.name, lease)
				}
				leader = p
			}
		}
		return leader != nil, nil
	})
	require.NoError(t, err, "no single leader of %s", lease)
	return leader, holder(t, ns, lease)
}

func holder(t *testing.T, ns, lease string) string {
	t.Helper()
	var l coordinationv1.Lease
	require.NoError(t, env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: lease}, &l))
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// takeover waits until the Lease has a holder other than old, and returns how
// long after since that was seen.
func takeover(t *testing.T, ns, lease, old string, since time.Time) time.Duration {
	t.Helper()
	var now string
	err := testenv.Eventually(t.Context(), 60*time.Second, func(context.Context) (bool, error) {
		now = holder(t, ns, lease)
		return now != "" && now != old, nil
	})
	require.NoError(t, err, "nobody took over %s from %s", lease, old)
	return time.Since(since)
}

// acked returns how many events a dispatcher or actions process acked.
func acked(t *testing.T, p *proc) float64 {
	t.Helper()
	v, err := p.metric(t.Context(), "orca_bus_messages_total", "outcome", "acked")
	require.NoError(t, err)
	return v
}

// burst publishes n ignitions of "burst" with ids prefix-0..n-1, as an external
// system would, and returns their ids.
func burst(t *testing.T, b *bus.Bus, ns, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = prefix + "-" + strconv.Itoa(i)
		require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{ID: ids[i], Source: "test", Namespace: ns, Name: "burst"}))
	}
	return ids
}

// TestTwoReplicasOfEachService runs two processes of each service against the
// real control plane and one NATS server. Both dispatchers and both actions
// services work; killing one of each, and the leaders of the scheduler and the
// watcher (SIGKILL), loses no event and doubles none; a standby takes over
// within the documented bound, and at once from a leader that stops (SIGTERM).
func TestTwoReplicasOfEachService(t *testing.T) {
	t.Parallel()
	ns := env.Namespace(t)
	srv, b := testenv.NATS(t)
	hook := newWebhook(t)
	apply(t, ns, workflow(hook.URL, "tick", "burst")+"---\n"+ignitor("tick", "@every 1s"))
	kubelet(t, ns)

	common := []string{"--kubeconfig", env.KubeconfigPath, "--nats-url", srv.URL(), "--namespaces", ns,
		"--leader-election-namespace", ns}
	start := func(svc, replica string) *proc {
		args := slices.Clone(common)
		if svc == "scheduler" || svc == "watcher" {
			args = append(args, "--leader-elect")
		}
		return startService(t, svc+"-"+replica, svc, args...)
	}
	procs := map[string][]*proc{}
	for _, svc := range services {
		procs[svc] = []*proc{start(svc, "a"), start(svc, "b")}
	}
	for _, svc := range services {
		for _, p := range procs[svc] {
			p.waitReady(t, 60*time.Second)
		}
	}

	// Steady flow, then a burst that both dispatchers and both actions share. The
	// server hands each message to the oldest pull request waiting, so a burst
	// smaller than the pulls one replica keeps waiting (one per free worker: 32
	// for a dispatcher, 64 for an actions service) could all go to one replica.
	first := burst(t, b, ns, "first", actions.DefaultConcurrency+16)
	waitDelivered(t, ns, hook, first)
	split := func(svc string) (float64, float64) { return acked(t, procs[svc][0]), acked(t, procs[svc][1]) }
	da, db := split("dispatcher")
	aa, ab := split("actions")
	t.Logf("split of the work: dispatcher-a %v, dispatcher-b %v; actions-a %v, actions-b %v", da, db, aa, ab)
	assert.Positive(t, da, "dispatcher-a did work")
	assert.Positive(t, db, "dispatcher-b did work")
	assert.Positive(t, aa, "actions-a did work")
	assert.Positive(t, ab, "actions-b did work")

	// Faults: a second burst, and at once SIGKILL of one dispatcher, one actions
	// service and the leaders of the scheduler and the watcher.
	sched, schedHolder := leaderOf(t, ns, "orca-scheduler", procs["scheduler"]...)
	watch, watchHolder := leaderOf(t, ns, "orca-watcher", procs["watcher"]...)
	second := burst(t, b, ns, "second", 40)
	killed := time.Now()
	for _, p := range []*proc{procs["dispatcher"][0], procs["actions"][0], sched, watch} {
		p.kill()
	}
	schedTakeover := takeover(t, ns, "orca-scheduler", schedHolder, killed)
	watchTakeover := takeover(t, ns, "orca-watcher", watchHolder, killed)
	worst := (&app.Options{}).WorstTakeover()
	t.Logf("takeover after SIGKILL of the leader: scheduler %v, watcher %v (bound %v)", schedTakeover.Round(10*time.Millisecond), watchTakeover.Round(10*time.Millisecond), worst)
	// A loaded test machine may add a few seconds of scheduling delay.
	assert.Less(t, schedTakeover, worst+3*time.Second)
	assert.Less(t, watchTakeover, worst+3*time.Second)
	waitDelivered(t, ns, hook, second)
	consumersSettled(t, srv.URL(), 60*time.Second)
	t.Logf("events of the killed replicas settled %v after the kill", time.Since(killed).Round(100*time.Millisecond))

	// A rolling update: new standbys, then SIGTERM of the leaders, which release
	// their lease.
	for _, svc := range []string{"scheduler", "watcher"} {
		p := start(svc, "c")
		p.waitReady(t, 60*time.Second)
		procs[svc] = append(procs[svc], p)
	}
	sched, schedHolder = leaderOf(t, ns, "orca-scheduler", procs["scheduler"]...)
	watch, watchHolder = leaderOf(t, ns, "orca-watcher", procs["watcher"]...)
	stopped := time.Now()
	stop(t, sched, watch)
	schedTakeover = takeover(t, ns, "orca-scheduler", schedHolder, stopped)
	watchTakeover = takeover(t, ns, "orca-watcher", watchHolder, stopped)
	t.Logf("takeover after SIGTERM of the leader: scheduler %v, watcher %v", schedTakeover.Round(10*time.Millisecond), watchTakeover.Round(10*time.Millisecond))
	assert.Less(t, schedTakeover, 5*time.Second)
	assert.Less(t, watchTakeover, 5*time.Second)
	third := burst(t, b, ns, "third", 5)
	waitDelivered(t, ns, hook, third)

	// The ticks stop, and the last ones finish, before everything is counted.
	_, err := env.Kubectl(t.Context(), "patch", "ignitor", "tick", "-n", ns, "--type=merge", "-p", `{"spec":{"suspend":true}}`)
	require.NoError(t, err)
	err = testenv.Eventually(t.Context(), 30*time.Second, func(ctx context.Context) (bool, error) {
		var ig orcav1.Ignitor
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "tick"}, &ig)
		return err == nil && meta.IsStatusConditionTrue(ig.Status.Conditions, scheduler.ConditionSuspended), err
	})
	require.NoError(t, err, "the tick Ignitor is suspended")
	var ticks []string
	for _, m := range stored(t, srv.URL(), bus.IgnitionSubject(ns, "tick")) {
		ticks = append(ticks, m.ID)
	}
	waitDelivered(t, ns, hook, ticks)

	checkOnce(t, srv.URL(), ns, hook)
	// The scheduler skips the times it missed while nobody led: the longest pause
	// between two ticks is what a takeover costs.
	n, pause := longestPause(t, srv.URL(), ns, "tick")
	t.Logf("%d ticks of the @every 1s Ignitor; longest pause between two: %v", n, pause.Round(10*time.Millisecond))
	for _, ps := range procs {
		for _, p := range ps {
			if p.running() {
				dup, err := p.metric(t.Context(), "orca_bus_published_total", "outcome", "duplicate")
				require.NoError(t, err)
				if dup > 0 {
					t.Logf("%s: %v publishes dropped by the stream's duplicate window", p.name, dup)
				}
			}
		}
	}
}

// waitDelivered waits until every ignition of ids started one Pod, the Pod's
// completion was reported, and its success Action ran.
func waitDelivered(t *testing.T, ns string, hook *webhook, ids []string) {
	t.Helper()
	var missing []string
	err := testenv.Eventually(t.Context(), 90*time.Second, func(context.Context) (bool, error) {
		byID := pods(t, ns)
		got := hook.pods()
		missing = missing[:0]
		for _, id := range ids {
			ps := byID[id]
			if len(ps) != 1 || controllerutil.ContainsFinalizer(&ps[0], orcav1.FinalizerCompletion) {
				missing = append(missing, id+": pod not reported")
				continue
			}
			if got[ps[0].Name] == 0 {
				missing = append(missing, id+": action not run")
			}
		}
		return len(missing) == 0, nil
	})
	require.NoError(t, err, "%d of %d ignitions not delivered, e.g. %v", len(missing), len(ids), missing[:min(len(missing), 5)])
}

// checkOnce checks the stream and the Pods of ns once everything settled: each
// ignition started one Pod, each Pod has one completion stored, each completion
// ran its Action (at least once: a replica killed after the webhook and before
// the ack runs it again).
func checkOnce(t *testing.T, natsURL, ns string, hook *webhook) {
	t.Helper()
	ignitions := stored(t, natsURL, bus.IgnitionSubject(ns, "*"))
	for id, n := range countIDs(ignitions) {
		assert.Equal(t, 1, n, "ignition %s stored %d times", id, n)
	}
	byID := pods(t, ns)
	for _, ig := range ignitions {
		assert.Len(t, byID[ig.ID], 1, "pods of ignition %s", ig.ID)
	}
	assert.Len(t, byID, len(countIDs(ignitions)), "a pod for each ignition, no other")

	completions := stored(t, natsURL, bus.TaskSubject(true, ns, "work"))
	byPod := map[string]int{}
	for _, m := range completions {
		var res bus.TaskResult
		require.NoError(t, json.Unmarshal(m.Data, &res))
		byPod[res.Pod]++
	}
	for _, ps := range byID {
		assert.Equal(t, 1, byPod[ps[0].Name], "completions of pod %s", ps[0].Name)
	}
	assert.Len(t, completions, len(byID), "one completion per pod")
	got := hook.received()
	twice := 0
	for _, m := range completions {
		assert.Positive(t, got[m.ID], "action of completion %s ran", m.ID)
		if got[m.ID] > 1 {
			twice++
		}
	}
	t.Logf("%d ignitions, %d pods, %d completions, %d actions run twice (at-least-once)", len(ignitions), len(byID), len(completions), twice)
}

// longestPause returns the longest time between two ignitions of name stored
// in the stream.
func longestPause(t *testing.T, natsURL, ns, name string) (int, time.Duration) {
	t.Helper()
	msgs := stored(t, natsURL, bus.IgnitionSubject(ns, name))
	gap := time.Duration(0)
	for i := 1; i < len(msgs); i++ {
		gap = max(gap, msgs[i].Stored.Sub(msgs[i-1].Stored))
	}
	return len(msgs), gap
}

// TestLeaderElectedServiceRefusesAShortDuplicateWindow: a stream that forgets
// event ids before a standby can take over could store an event of the old
// leader twice, so a leader-elected service does not start on it.
func TestLeaderElectedServiceRefusesAShortDuplicateWindow(t *testing.T) {
	t.Parallel()
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	b, err := bus.Connect(t.Context(), bus.Options{URLs: []string{srv.URL()}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.EnsureStream(t.Context(), bus.StreamOptions{DuplicateWindow: 10 * time.Second}))

	p := startService(t, "scheduler", "scheduler", "--kubeconfig", env.KubeconfigPath, "--nats-url", srv.URL(),
		"--leader-elect", "--leader-election-namespace", "default")
	p.waitExit(t)
	assert.Equal(t, 1, p.cmd.ProcessState.ExitCode())
	assert.Contains(t, p.out.String(), "stream ORCA drops duplicate events for 10s only, less than 28.8s (twice the worst leader takeover, 14.4s)")
}
