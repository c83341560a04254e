package bus_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/bus"
)

func TestRecordsUpdateIsACompareAndSet(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	ctx := t.Context()
	// Writers on connections of their own, as replicas would be.
	const writers, each = 6, 25
	var wg sync.WaitGroup
	for w := range writers {
		b := connect(t, srv.URL())
		wg.Go(func() {
			r := b.Records("test")
			for range each {
				err := r.Update(ctx, "counter", func(cur []byte) ([]byte, error) {
					n, _ := strconv.Atoi(string(cur))
					return []byte(strconv.Itoa(n + 1)), nil
				})
				assert.NoError(t, err, "writer %d", w)
			}
		})
	}
	wg.Wait()
	r := connect(t, srv.URL()).Records("test")
	v, err := r.Get(ctx, "counter")
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(writers*each), string(v), "no increment was lost")

	// Unchanged writes nothing; nil deletes; a deleted key starts again.
	require.NoError(t, r.Update(ctx, "counter", func(cur []byte) ([]byte, error) { return cur, nil }))
	require.NoError(t, r.Update(ctx, "counter", func([]byte) ([]byte, error) { return nil, nil }))
	v, err = r.Get(ctx, "counter")
	require.NoError(t, err)
	assert.Nil(t, v)
	require.NoError(t, r.Update(ctx, "counter", func(cur []byte) ([]byte, error) {
		assert.Nil(t, cur)
		return []byte("1"), nil
	}))
	v, err = r.Get(ctx, "counter")
	require.NoError(t, err)
	assert.Equal(t, "1", string(v))

	// Put, Get and Delete of a plain value; records of another name are apart.
	require.NoError(t, r.Put(ctx, "a.b-c_d", []byte("x")))
	other, err := connect(t, srv.URL()).Records("other").Get(ctx, "a.b-c_d")
	require.NoError(t, err)
	assert.Nil(t, other)
	require.NoError(t, r.Delete(ctx, "a.b-c_d"))
	require.NoError(t, r.Delete(ctx, "never-set"))
	v, err = r.Get(ctx, "a.b-c_d")
	require.NoError(t, err)
	assert.Nil(t, v)
}

func TestForbiddenEventRoundTrips(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	b := connect(t, srv.URL())
	ch, _ := collect(t, b, "forbidden", []string{bus.SubjectTaskForbidden + ".>"}, nil)
	f := bus.ForbiddenStart{
		Task: "nightly.v2", Namespace: "ns1", TaskUID: "uid-1", Pod: "nightly.v2-abcdefghij", Run: "run-1",
		Initiator: "ignitor1", TriggerSource: "orca/scheduler", TriggerID: "uid-9-1764064800",
		Parallelism: 1, Running: []string{"nightly.v2-zzzzzzzzzz"}, Time: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
	}
	require.NoError(t, b.PublishForbidden(t.Context(), "orca/dispatcher", f))
	require.NoError(t, b.PublishForbidden(context.Background(), "orca/dispatcher", f), "a republish is no error")
	d := receive(t, ch)
	assert.Equal(t, "orca.task.forbidden.ns1.nightly.v2", d.Subject)
	assert.Equal(t, bus.TypeTaskForbidden, d.Event.Type())
	assert.Equal(t, "nightly.v2-abcdefghij", d.Event.ID())
	assert.Equal(t, "run-1", d.Run())
	require.NotNil(t, d.Forbidden)
	assert.Nil(t, d.Task)
	assert.Equal(t, f, *d.Forbidden)
	assert.NotZero(t, d.Sequence)
	select {
	case again := <-ch:
		t.Fatalf("the republish was stored too: %+v", again.Forbidden)
	case <-time.After(300 * time.Millisecond):
	}
}
