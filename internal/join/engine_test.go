package join_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/join"
)

// memStore is a Store in memory, for the engine's logic; the real one (a
// JetStream key-value bucket) is tested in internal/bus and end to end.
type memStore struct {
	mu   sync.Mutex
	data map[string][]byte
	revs map[string]uint64
	next uint64
}

func newMemStore() *memStore {
	return &memStore{data: map[string][]byte{}, revs: map[string]uint64{}}
}

func (m *memStore) Get(_ context.Context, key string) ([]byte, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data[key], m.revs[key], nil
}

func (m *memStore) Swap(_ context.Context, key string, v []byte, rev uint64) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.revs[key] != rev {
		return false, nil
	}
	m.next++
	m.data[key], m.revs[key] = v, m.next
	return true, nil
}

func joinTask(when *orcav1.StartWhen) *orcav1.Task {
	return &orcav1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "d", UID: "uid-d"}, Spec: orcav1.TaskSpec{StartWhen: when}}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestObserveDecidesOnceAndTheFirstResultCounts(t *testing.T) {
	ctx := t.Context()
	task := joinTask(cond("b.succeeded && c.succeeded"))
	p, err := join.Compile(task.Spec.StartWhen)
	require.NoError(t, err)
	e := &join.Engine{Store: newMemStore()}

	var timers []join.State
	timer := func(s join.State) error { timers = append(timers, s); return nil }

	step, err := e.Observe(ctx, p, task, "run-1", "b", ok, timer)
	require.NoError(t, err)
	assert.True(t, step.Created)
	assert.Nil(t, step.Act, "c is not known yet")
	assert.Len(t, timers, 1, "the first result publishes the timer")

	// Another run is its own.
	step, err = e.Observe(ctx, p, task, "run-2", "c", ko, timer)
	require.NoError(t, err)
	require.NotNil(t, step.Act)
	assert.Equal(t, join.Skip, step.Act.Action)
	assert.Equal(t, join.ReasonConditionFalse, step.Act.Reason)
	assert.Equal(t, "the condition is false: b not reported, c failed", step.Act.Message)

	// A redelivery of b's result changes nothing, and publishes no second timer.
	step, err = e.Observe(ctx, p, task, "run-1", "b", ko, timer)
	require.NoError(t, err)
	assert.False(t, step.Created)
	assert.Nil(t, step.Act)
	assert.Equal(t, join.Succeeded, step.State.Results["b"].Outcome, "the first result of b counts")
	assert.Len(t, timers, 2)

	step, err = e.Observe(ctx, p, task, "run-1", "c", ok, timer)
	require.NoError(t, err)
	require.NotNil(t, step.Act)
	assert.Equal(t, join.Start, step.Act.Action)
	assert.Equal(t, "c", step.Act.By, "c completed the condition")

	// Until Done, the redelivered event finds the decision to act on; after, nothing.
	step, err = e.Observe(ctx, p, task, "run-1", "c", ok, timer)
	require.NoError(t, err)
	require.NotNil(t, step.Act)
	assert.Equal(t, join.Start, step.Act.Action)
	require.NoError(t, e.Done(ctx, task, "run-1"))
	step, err = e.Observe(ctx, p, task, "run-1", "c", ok, timer)
	require.NoError(t, err)
	assert.Nil(t, step.Act)
	assert.True(t, step.State.Decision.Done)

	// A Task applied again under the same name has runs of its own.
	again := task.DeepCopy()
	again.UID = "uid-d2"
	step, err = e.Observe(ctx, p, again, "run-1", "b", ok, timer)
	require.NoError(t, err)
	assert.True(t, step.Created)
}

func TestConcurrentResultsDecideOnce(t *testing.T) {
	task := joinTask(&orcav1.StartWhen{AllSucceeded: names("a", "b", "c", "d", "e", "f", "g", "h")})
	p, err := join.Compile(task.Spec.StartWhen)
	require.NoError(t, err)
	e := &join.Engine{Store: newMemStore()}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		decided int
		created int
	)
	for _, n := range p.Tasks {
		wg.Go(func() {
			step, err := e.Observe(t.Context(), p, task, "run", n, ok, nil)
			assert.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			if step.Act != nil {
				decided++
			}
			if step.Created {
				created++
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 1, decided, "exactly one result completes the condition")
	assert.Equal(t, 1, created)
}

func TestExpireAppliesThePolicyAfterTheTimeout(t *testing.T) {
	for _, tt := range []struct {
		policy orcav1.TimeoutPolicy
		action join.Action
		by     string
	}{{"", join.Skip, ""}, {orcav1.TimeoutSkip, join.Skip, ""}, {orcav1.TimeoutFail, join.Fail, ""}, {orcav1.TimeoutStart, join.Start, "a"}} {
		t.Run(string(tt.action)+string(tt.policy), func(t *testing.T) {
			ctx := t.Context()
			clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
			task := joinTask(&orcav1.StartWhen{AllSucceeded: names("a", "b"), Timeout: &metav1.Duration{Duration: time.Minute}, OnTimeout: tt.policy})
			p, err := join.Compile(task.Spec.StartWhen)
			require.NoError(t, err)
			e := &join.Engine{Store: newMemStore(), Now: clk.now}

			step, err := e.Expire(ctx, p, task, "run")
			require.NoError(t, err)
			assert.Nil(t, step.Act)
			assert.True(t, step.Due.IsZero(), "no state, nothing to time out")

			_, err = e.Observe(ctx, p, task, "run", "a", ok, nil)
			require.NoError(t, err)
			clk.t = clk.t.Add(59 * time.Second)
			step, err = e.Expire(ctx, p, task, "run")
			require.NoError(t, err)
			assert.Nil(t, step.Act)
			assert.Equal(t, time.Date(2030, 1, 1, 0, 1, 0, 0, time.UTC), step.Due)

			clk.t = clk.t.Add(time.Second)
			step, err = e.Expire(ctx, p, task, "run")
			require.NoError(t, err)
			require.NotNil(t, step.Act)
			assert.Equal(t, tt.action, step.Act.Action)
			assert.Equal(t, join.ReasonTimedOut, step.Act.Reason)
			assert.Equal(t, tt.by, step.Act.By)
			assert.Equal(t, "no decision within 1m0s of the first result: a succeeded, b not reported", step.Act.Message)

			// b arriving after the timeout changes nothing.
			require.NoError(t, e.Done(ctx, task, "run"))
			step, err = e.Observe(ctx, p, task, "run", "b", ok, nil)
			require.NoError(t, err)
			assert.Nil(t, step.Act)
			assert.Equal(t, tt.action, step.State.Decision.Action)
		})
	}
}

func TestWaitKeysNameTheirState(t *testing.T) {
	task := joinTask(nil)
	task.Name = "d.v2"
	first := time.Unix(1_900_000_000, 0)
	key := join.WaitKey(task, "run 1", first)
	since, state, ok := join.ParseWaitKey(key)
	require.True(t, ok, key)
	assert.Equal(t, first, since)
	assert.Equal(t, join.Key(task, "run 1"), state)
	assert.Equal(t, "w.ns.d_v2.*.*", join.WaitPrefix(task))
	assert.NotEqual(t, join.EventID("skip", task, "run 1"), join.EventID("timer", task, "run 1"))
}
