package admission

import (
	"cmp"
	"errors"
	"slices"
	"time"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// MaxWaiting is how many starts of one Task wait in its State. More wait as their
// trigger messages in the stream (Full), and join the queue when there is room.
const MaxWaiting = 1000

// Limits are a Task's concurrency settings.
type Limits struct {
	// Slots is how many Pods may run at once; 0 means no limit.
	Slots  int
	Policy orcav1.ConcurrencyPolicy
}

// LimitsOf returns the limits of a Task's spec.
func LimitsOf(spec *orcav1.TaskSpec) Limits {
	return Limits{Slots: spec.Slots(), Policy: spec.Policy()}
}

// State is the admission state of one Task object.
type State struct {
	// Task is "<namespace>/<name>", for logs and repairs.
	Task    string   `json:"task"`
	Holders []Holder `json:"holders,omitempty"`
	Waiting []Waiter `json:"waiting,omitempty"`
}

// Holder is a Pod that holds a slot.
type Holder struct {
	Pod   string    `json:"pod"`
	Since time.Time `json:"since"`
	// Queued is set when the holder was promoted from the queue and its Pod may
	// not be created yet: it is created from the start stored for it.
	Queued bool `json:"queued,omitempty"`
	// Replaces lists the Pods whose slots this one took (Replace).
	Replaces []string `json:"replaces,omitempty"`
}

// Waiter is a start that waits for a slot.
type Waiter struct {
	Pod string `json:"pod"`
	// Seq is the stream sequence of its trigger: the queue's order.
	Seq   uint64    `json:"seq"`
	Since time.Time `json:"since"`
}

// Outcome is what a start does.
type Outcome int

const (
	// Run creates the start's Pod.
	Run Outcome = iota
	// Wait leaves the start in the queue: it runs when promoted.
	Wait
	// Forbid skips the start.
	Forbid
	// Full says the queue is full: the start waits as its trigger message.
	Full
)

// Decision is what Admit decided for a start.
type Decision struct {
	Outcome Outcome
	// Fresh is true when the start took its slot, or its place in the queue, in
	// this decision (not in an earlier delivery of the same trigger).
	Fresh bool
	// Replaces lists the Pods whose slots the start took: they are to be deleted.
	Replaces []string
	// Running lists the holders that left no slot (Forbid).
	Running []string
}

// ErrStartNotStored says that the start must wait, and must be stored before it
// can: store it, then Admit again.
var ErrStartNotStored = errors.New("the start must be stored before it waits")

// Admit decides for the start of pod, whose trigger has stream sequence seq;
// stored says that the start is stored for a later promotion. It promotes
// waiting starts into free slots first.
func (s *State) Admit(pod string, seq uint64, l Limits, now time.Time, stored bool) (Decision, error) {
	s.Promote(l, now)
	if h := s.holder(pod); h != nil {
		return Decision{Outcome: Run, Replaces: h.Replaces}, nil
	}
	if slices.ContainsFunc(s.Waiting, func(w Waiter) bool { return w.Pod == pod }) {
		return Decision{Outcome: Wait}, nil
	}
	if s.free(l) {
		// Promote left no start waiting: none is older than this one.
		s.Holders = append(s.Holders, Holder{Pod: pod, Since: now})
		return Decision{Outcome: Run, Fresh: true}, nil
	}
	switch l.Policy {
	case orcav1.ConcurrencyForbid:
		return Decision{Outcome: Forbid, Running: s.pods()}, nil
	case orcav1.ConcurrencyReplace:
		victims := s.oldest(len(s.Holders) - l.Slots + 1)
		s.Holders = slices.DeleteFunc(s.Holders, func(h Holder) bool { return slices.Contains(victims, h.Pod) })
		s.Holders = append(s.Holders, Holder{Pod: pod, Since: now, Replaces: victims})
		return Decision{Outcome: Run, Fresh: true, Replaces: victims}, nil
	}
	if len(s.Waiting) >= MaxWaiting {
		return Decision{Outcome: Full}, nil
	}
	if !stored {
		return Decision{}, ErrStartNotStored
	}
	// In the order the stream stored the triggers: a redelivered older trigger
	// goes before the starts that came after it.
	i, _ := slices.BinarySearchFunc(s.Waiting, seq, func(w Waiter, seq uint64) int { return cmp.Compare(w.Seq, seq) })
	s.Waiting = slices.Insert(s.Waiting, i, Waiter{Pod: pod, Seq: seq, Since: now})
	return Decision{Outcome: Wait, Fresh: true}, nil
}

// Promote moves the oldest waiting starts into free slots, as Queued holders, and
// returns their Pods. With no limit, every waiting start is promoted.
func (s *State) Promote(l Limits, now time.Time) []string {
	var out []string
	for len(s.Waiting) > 0 && s.free(l) {
		w := s.Waiting[0]
		s.Waiting = s.Waiting[1:]
		s.Holders = append(s.Holders, Holder{Pod: w.Pod, Since: now, Queued: true})
		out = append(out, w.Pod)
	}
	if len(s.Waiting) == 0 {
		s.Waiting = nil
	}
	return out
}

// Release frees the slot of pod, or takes it out of the queue, and reports
// whether it held or waited for one.
func (s *State) Release(pod string) bool {
	n := len(s.Holders) + len(s.Waiting)
	s.Holders = slices.DeleteFunc(s.Holders, func(h Holder) bool { return h.Pod == pod })
	s.Waiting = slices.DeleteFunc(s.Waiting, func(w Waiter) bool { return w.Pod == pod })
	if len(s.Holders) == 0 {
		s.Holders = nil
	}
	if len(s.Waiting) == 0 {
		s.Waiting = nil
	}
	return len(s.Holders)+len(s.Waiting) != n
}

// Handover passes the slot of pod from, which ended, to pod to, the next attempt
// of the same run (spec.retry): a run keeps its slot across its attempts, so that
// a retry neither waits behind later starts nor for its slot's repair. It
// reports whether from held a slot; to holds it since now.
func (s *State) Handover(from, to string, now time.Time) bool {
	h := s.holder(from)
	if h == nil || s.holder(to) != nil {
		return false
	}
	*h = Holder{Pod: to, Since: now}
	return true
}

// Created marks the Pod of a Queued holder as created.
func (s *State) Created(pod string) bool {
	if h := s.holder(pod); h != nil && h.Queued {
		h.Queued = false
		return true
	}
	return false
}

// Holding returns the holder of pod, or nil.
func (s *State) Holding(pod string) *Holder {
	if h := s.holder(pod); h != nil {
		c := *h
		return &c
	}
	return nil
}

// Queued returns the holders whose Pods may not be created yet.
func (s *State) Queued() []Holder {
	var out []Holder
	for _, h := range s.Holders {
		if h.Queued {
			out = append(out, h)
		}
	}
	return out
}

// HeldSince returns the holders that hold their slot since before t.
func (s *State) HeldSince(t time.Time) []Holder {
	var out []Holder
	for _, h := range s.Holders {
		if h.Since.Before(t) {
			out = append(out, h)
		}
	}
	return out
}

// Empty reports whether no Pod holds a slot and no start waits.
func (s *State) Empty() bool { return len(s.Holders) == 0 && len(s.Waiting) == 0 }

func (s *State) free(l Limits) bool { return l.Slots <= 0 || len(s.Holders) < l.Slots }

func (s *State) holder(pod string) *Holder {
	for i := range s.Holders {
		if s.Holders[i].Pod == pod {
			return &s.Holders[i]
		}
	}
	return nil
}

func (s *State) pods() []string {
	out := make([]string, len(s.Holders))
	for i, h := range s.Holders {
		out[i] = h.Pod
	}
	return out
}

// oldest returns the n holders that hold their slots the longest.
func (s *State) oldest(n int) []string {
	byAge := slices.Clone(s.Holders)
	slices.SortStableFunc(byAge, func(a, b Holder) int { return a.Since.Compare(b.Since) })
	out := make([]string, 0, n)
	for _, h := range byAge[:min(max(n, 0), len(byAge))] {
		out = append(out, h.Pod)
	}
	return out
}
