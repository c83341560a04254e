package admission

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func admit(t *testing.T, s *State, pod string, seq uint64, l Limits, at time.Duration) Decision {
	t.Helper()
	d, err := s.Admit(pod, seq, l, t0.Add(at), true)
	require.NoError(t, err)
	return d
}

func holders(s *State) []string { return s.pods() }

func waiting(s *State) []string {
	var out []string
	for _, w := range s.Waiting {
		out = append(out, w.Pod)
	}
	return out
}

func TestAllowWaitsInTriggerOrderAndPromotesAsSlotsFree(t *testing.T) {
	l := Limits{Slots: 2, Policy: orcav1.ConcurrencyAllow}
	var s State
	assert.Equal(t, Decision{Outcome: Run, Fresh: true}, admit(t, &s, "a", 10, l, 0))
	assert.Equal(t, Decision{Outcome: Run, Fresh: true}, admit(t, &s, "b", 11, l, 1))
	// Full: c, e and d wait, in the order of their triggers, not of arrival.
	_, err := s.Admit("c", 12, l, t0, false)
	assert.ErrorIs(t, err, ErrStartNotStored, "a start is stored before it waits")
	assert.Equal(t, Decision{Outcome: Wait, Fresh: true}, admit(t, &s, "c", 12, l, 2))
	assert.Equal(t, Outcome(Wait), admit(t, &s, "e", 14, l, 3).Outcome)
	assert.Equal(t, Outcome(Wait), admit(t, &s, "d", 13, l, 4).Outcome)
	assert.Equal(t, []string{"c", "d", "e"}, waiting(&s))

	// A redelivered trigger changes nothing: it holds or waits already.
	assert.Equal(t, Decision{Outcome: Run}, admit(t, &s, "a", 10, l, 5))
	assert.Equal(t, Decision{Outcome: Wait}, admit(t, &s, "d", 13, l, 5))

	// A Pod ends: the oldest waiting start gets its slot, Queued until created.
	assert.True(t, s.Release("a"))
	assert.False(t, s.Release("a"), "a second release is a no-op")
	assert.Equal(t, []string{"c"}, s.Promote(l, t0.Add(6)))
	assert.Equal(t, []string{"b", "c"}, holders(&s))
	assert.Equal(t, []Holder{{Pod: "c", Since: t0.Add(6), Queued: true}}, s.Queued())
	assert.True(t, s.Created("c"))
	assert.False(t, s.Created("c"))
	assert.Empty(t, s.Queued())

	// A new start does not overtake the waiting ones even when it finds a slot:
	// the promotion comes first.
	s.Release("b")
	assert.Equal(t, Outcome(Wait), admit(t, &s, "f", 15, l, 7).Outcome)
	assert.Equal(t, []string{"c", "d"}, holders(&s))
	assert.Equal(t, []string{"e", "f"}, waiting(&s))

	// Parallelism raised: the next change promotes as many as fit; removed: all.
	assert.Equal(t, []string{"e"}, s.Promote(Limits{Slots: 3}, t0))
	assert.Equal(t, []string{"f"}, s.Promote(Limits{}, t0))
	assert.Nil(t, s.Waiting)
	for _, p := range []string{"c", "d", "e", "f"} {
		s.Release(p)
	}
	assert.True(t, s.Empty())
}

func TestForbidSkipsWhenEverySlotIsTaken(t *testing.T) {
	l := Limits{Slots: 1, Policy: orcav1.ConcurrencyForbid}
	var s State
	assert.Equal(t, Outcome(Run), admit(t, &s, "a", 1, l, 0).Outcome)
	d, err := s.Admit("b", 2, l, t0, false)
	require.NoError(t, err, "a forbidden start needs no storing")
	assert.Equal(t, Decision{Outcome: Forbid, Running: []string{"a"}}, d)
	assert.Equal(t, []string{"a"}, holders(&s))
	assert.Empty(t, s.Waiting)
	s.Release("a")
	assert.Equal(t, Decision{Outcome: Run, Fresh: true}, admit(t, &s, "c", 3, l, 1))
}

func TestReplaceTakesTheSlotsOfTheOldest(t *testing.T) {
	l := Limits{Slots: 2, Policy: orcav1.ConcurrencyReplace}
	var s State
	admit(t, &s, "a", 1, l, 2)
	admit(t, &s, "b", 2, l, 1) // older than a
	d := admit(t, &s, "c", 3, l, 3)
	assert.Equal(t, Decision{Outcome: Run, Fresh: true, Replaces: []string{"b"}}, d)
	assert.Equal(t, []string{"a", "c"}, holders(&s))
	// Redelivered, it still names the Pod it replaced.
	assert.Equal(t, Decision{Outcome: Run, Replaces: []string{"b"}}, admit(t, &s, "c", 3, l, 4))
	// The replaced Pod's end releases nothing.
	assert.False(t, s.Release("b"))

	// Parallelism lowered to 1: the next start replaces both.
	d = admit(t, &s, "d", 4, Limits{Slots: 1, Policy: orcav1.ConcurrencyReplace}, 5)
	assert.ElementsMatch(t, []string{"a", "c"}, d.Replaces)
	assert.Equal(t, []string{"d"}, holders(&s))
}

func TestAQueueOfMaxWaitingIsFull(t *testing.T) {
	l := Limits{Slots: 1}
	var s State
	admit(t, &s, "running", 0, l, 0)
	for i := range MaxWaiting {
		admit(t, &s, "w"+strconv.Itoa(i), uint64(i+1), l, 0)
	}
	d, err := s.Admit("late", MaxWaiting+1, l, t0, false)
	require.NoError(t, err)
	assert.Equal(t, Outcome(Full), d.Outcome)
}

func TestHeldSince(t *testing.T) {
	var s State
	l := Limits{Slots: 3}
	admit(t, &s, "old", 1, l, 0)
	admit(t, &s, "new", 2, l, time.Minute)
	assert.Equal(t, []Holder{{Pod: "old", Since: t0}}, s.HeldSince(t0.Add(time.Second)))
	assert.Equal(t, &Holder{Pod: "new", Since: t0.Add(time.Minute)}, s.Holding("new"))
	assert.Nil(t, s.Holding("none"))
}

func TestHandoverKeepsARunsSlotForItsNextAttempt(t *testing.T) {
	l := Limits{Slots: 1, Policy: orcav1.ConcurrencyAllow}
	var s State
	admit(t, &s, "run1-a1", 10, l, 0)
	assert.Equal(t, Outcome(Wait), admit(t, &s, "run2", 11, l, 1).Outcome)

	// The first attempt failed and is retried: its next attempt takes its slot,
	// ahead of the start that waits.
	assert.True(t, s.Handover("run1-a1", "run1-a2", t0.Add(2)))
	assert.False(t, s.Handover("run1-a1", "run1-a2", t0.Add(3)), "a second handover is a no-op")
	assert.Equal(t, []Holder{{Pod: "run1-a2", Since: t0.Add(2)}}, s.Holders)
	assert.Equal(t, Decision{Outcome: Run}, admit(t, &s, "run1-a2", 0, l, 3))
	assert.Equal(t, []string{"run2"}, waiting(&s))

	// A slot already freed (slot repair) is not handed over: the attempt is
	// admitted as any start.
	assert.True(t, s.Release("run1-a2"))
	assert.Equal(t, []string{"run2"}, s.Promote(l, t0.Add(4)))
	assert.False(t, s.Handover("run1-a2", "run1-a3", t0.Add(5)))
	assert.Equal(t, []string{"run2"}, holders(&s))

	// A Replace holder's next attempt replaces nothing again.
	r := Limits{Slots: 1, Policy: orcav1.ConcurrencyReplace}
	var rs State
	admit(t, &rs, "old", 1, r, 0)
	assert.Equal(t, []string{"old"}, admit(t, &rs, "new-a1", 2, r, 1).Replaces)
	assert.True(t, rs.Handover("new-a1", "new-a2", t0.Add(2)))
	assert.Equal(t, Decision{Outcome: Run}, admit(t, &rs, "new-a2", 0, r, 3))
}
