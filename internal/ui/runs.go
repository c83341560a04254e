package ui

import (
	"slices"
	"strings"
	"time"

	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/graph"
)

// Step kinds.
const (
	StepIgnited    = "ignited"
	StepSucceeded  = "succeeded"
	StepFailed     = "failed"
	StepSkipped    = "skipped"
	StepDeadLetter = "deadletter"
	// StepRetrying is an attempt that failed and that spec.retry follows with
	// another; StepHalted a start the loop guard refused, which ends the run;
	// StepForbidden a start that concurrencyPolicy Forbid skipped.
	StepRetrying  = "retrying"
	StepHalted    = "halted"
	StepForbidden = "forbidden"
)

// Task and run states.
const (
	StateStarted   = "started" // an event started it; its end is not seen yet
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateSkipped   = "skipped"  // its startWhen condition turned false in the run
	StateRetrying  = "retrying" // an attempt failed; the next one is due at a time
	StateHalted    = "halted"   // the loop guard refused to start it
)

// maxData is how much of an ignition's data or a message a Step keeps.
const maxData = 4 << 10

// Step is one event of a run: an ignition, the end of a Task's Pod, a Task
// skipped by its condition, or a dead letter.
type Step struct {
	Kind string `json:"kind"`
	// Sequence and Time say when the stream stored the event.
	Sequence uint64    `json:"sequence"`
	Time     time.Time `json:"time"`
	// Name is the ignition's or the Task's name.
	Name string `json:"name"`
	// Data is an ignition's data (cut to 4 KiB).
	Data string `json:"data,omitempty"`
	// Source is the CloudEvent source: who published the event.
	Source string `json:"source,omitempty"`
	// Pod, Initiator, ExitCode, Reason, Message, StartedAt and FinishedAt describe
	// a Task's run.
	Pod        string     `json:"pod,omitempty"`
	Initiator  string     `json:"initiator,omitempty"`
	ExitCode   int32      `json:"exitCode"`
	Reason     string     `json:"reason,omitempty"`
	Message    string     `json:"message,omitempty"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// Triggered is when the event that started this run of the Task was stored:
	// with Time, it times the run to the millisecond (Pods' times are seconds).
	Triggered *time.Time `json:"triggered,omitempty"`
	// Attempt counts the runs of this Task in this run, this one included: 2 and
	// more are retries.
	Attempt int `json:"attempt,omitempty"`
	// RetryAt is when a retrying step's next attempt starts.
	RetryAt *time.Time `json:"retryAt,omitempty"`
	// DeadLetterReason says why a consumer gave up on the event.
	DeadLetterReason string `json:"deadLetterReason,omitempty"`
}

// Run is what the stream holds of one run: the chain of events that share a run id.
type Run struct {
	ID string `json:"id"`
	// Initiator is the first step's name: the ignition, mostly.
	Initiator string `json:"initiator"`
	// State is started while a Task it started has not ended, then failed when a
	// Task's last run in it failed or an event of it was dead-lettered, else
	// succeeded.
	State string    `json:"state"`
	Start time.Time `json:"start"`
	Last  time.Time `json:"last"`
	// Running lists the Tasks started in this run whose end is not seen yet, with
	// the time of the event that started them.
	Running map[string]time.Time `json:"running"`
	Steps   []Step               `json:"steps"`
}

// TaskState is the live state of one Task: what the last event about it says.
type TaskState struct {
	State string    `json:"state"`
	Run   string    `json:"run"`
	Since time.Time `json:"since"`
}

// runs keeps the last runs of one namespace and the live state of its Tasks, as
// the events on the bus tell them. It is not safe for concurrent use.
type runs struct {
	max   int // runs kept
	byID  map[string]*Run
	tasks map[string]TaskState
}

func newRuns(max int) *runs {
	return &runs{max: max, byID: map[string]*Run{}, tasks: map[string]TaskState{}}
}

// maxSteps bounds a run's steps: a Task that retries forever fills no memory.
const maxSteps = 500

// apply records one event seen on the bus. g says which Tasks the event starts.
// It returns the run it changed and the Tasks whose state changed, or a nil run
// for a message that is not an event of a run.
func (r *runs) apply(s bus.Seen, g *graph.Graph) (*Run, []string) {
	d := s.Delivery
	if d == nil {
		return nil, nil
	}
	id := d.Run()
	run := r.byID[id]
	if run == nil {
		run = &Run{ID: id, Start: s.Stored, Last: s.Stored, Running: map[string]time.Time{}}
		r.byID[id] = run
		r.prune()
	}
	st := Step{Sequence: s.Sequence, Time: s.Stored, Source: d.Event.Source()}
	var (
		changed []string
		kind    = graph.EdgeIgnition
		// A dead letter was never acted upon: it starts and ends nothing.
		acted = s.DeadLetter == nil
		// Skips, retries, halts and forbidden starts start no other Task.
		startsNext = true
	)
	switch {
	case d.Ignition != nil:
		st.Kind, st.Name, st.Data = StepIgnited, d.Ignition.Name, cut(string(d.Ignition.Data))
	case d.Task != nil:
		res := d.Task.Result
		st.Name, st.Pod, st.Initiator = res.Task, res.Pod, res.Initiator
		st.ExitCode, st.Reason, st.Message = res.ExitCode, res.Reason, cut(res.Message)
		st.StartedAt, st.FinishedAt = res.StartedAt, &res.FinishedAt
		st.Kind, kind = StepFailed, graph.EdgeFailure
		if d.Task.Succeeded {
			st.Kind, kind = StepSucceeded, graph.EdgeSuccess
		}
		st.Attempt = attemptOf(run, st.Name, res.Attempt)
		if acted {
			if t, ok := run.Running[st.Name]; ok {
				st.Triggered = &t
			}
			delete(run.Running, st.Name)
			r.tasks[st.Name] = TaskState{State: st.Kind, Run: id, Since: s.Stored}
			changed = append(changed, st.Name)
		}
	case d.Retry != nil:
		rt := d.Retry.Retry
		st.Kind, st.Name, st.Pod, st.Initiator = StepRetrying, rt.Task, rt.Pod, rt.Initiator
		st.ExitCode, st.Reason, st.Message = rt.ExitCode, rt.Reason, cut(rt.Message)
		st.StartedAt, st.FinishedAt, st.RetryAt = rt.StartedAt, &rt.FinishedAt, &rt.RetryAt
		st.Attempt, startsNext = attemptOf(run, st.Name, rt.Attempt), false
		if acted {
			if t, ok := run.Running[st.Name]; ok {
				st.Triggered = &t
			}
			run.Running[st.Name] = s.Stored // its next attempt
			r.tasks[st.Name] = TaskState{State: StateRetrying, Run: id, Since: s.Stored}
			changed = append(changed, st.Name)
		}
	case d.Halt != nil:
		h := d.Halt.Halt
		st.Kind, st.Name, st.Initiator, st.Reason, st.Message = StepHalted, h.Task, h.Initiator, h.Reason, cut(h.Message)
		startsNext = false
		if acted {
			delete(run.Running, st.Name)
			r.tasks[st.Name] = TaskState{State: StateHalted, Run: id, Since: s.Stored}
			changed = append(changed, st.Name)
		}
	case d.Forbidden != nil:
		f := d.Forbidden
		st.Kind, st.Name, st.Pod, st.Initiator = StepForbidden, f.Task, f.Pod, f.Initiator
		st.Reason, st.Message = "Forbidden", "running: "+strings.Join(f.Running, ", ")
		startsNext = false
		if acted {
			delete(run.Running, st.Name)
		}
	case d.Skipped != nil:
		res := d.Skipped.Result
		st.Kind, st.Name, st.ExitCode, st.Reason, st.Message = StepSkipped, res.Task, res.ExitCode, res.Reason, cut(res.Message)
		startsNext = false
		if acted {
			r.tasks[st.Name] = TaskState{State: StateSkipped, Run: id, Since: s.Stored}
			changed = append(changed, st.Name)
		}
	}
	if s.DeadLetter != nil {
		st.Kind, st.DeadLetterReason = StepDeadLetter, s.DeadLetter.Reason
	}
	if acted && g != nil && startsNext {
		for _, t := range g.Starts(kind, st.Name) {
			run.Running[t] = s.Stored
			r.tasks[t] = TaskState{State: StateStarted, Run: id, Since: s.Stored}
			changed = append(changed, t)
		}
	}
	if len(run.Steps) < maxSteps {
		run.Steps = append(run.Steps, st)
	}
	if run.Initiator == "" {
		run.Initiator = st.Name
	}
	run.Last = s.Stored
	run.State = run.state()
	slices.Sort(changed)
	return run, slices.Compact(changed)
}

// state returns the run's State from its steps.
func (run *Run) state() string {
	if len(run.Running) > 0 {
		return StateStarted
	}
	last := map[string]string{}
	for _, s := range run.Steps {
		switch s.Kind {
		case StepDeadLetter, StepHalted:
			return StateFailed
		case StepSucceeded, StepFailed:
			last[s.Name] = s.Kind
		}
	}
	for _, k := range last {
		if k == StepFailed {
			return StateFailed
		}
	}
	return StateSucceeded
}

// prune forgets the runs that were last active longest ago, beyond max.
func (r *runs) prune() {
	for len(r.byID) > r.max {
		var oldest *Run
		for _, run := range r.byID {
			if oldest == nil || run.Last.Before(oldest.Last) {
				oldest = run
			}
		}
		delete(r.byID, oldest.ID)
	}
}

// list returns the runs, the most recently active first.
func (r *runs) list() []*Run {
	out := make([]*Run, 0, len(r.byID))
	for _, run := range r.byID {
		out = append(out, run)
	}
	slices.SortFunc(out, func(a, b *Run) int {
		if c := b.Last.Compare(a.Last); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// cut returns s cut to maxData bytes, with an ellipsis.
func cut(s string) string {
	if len(s) <= maxData {
		return s
	}
	return strings.ToValidUTF8(s[:maxData], "") + "…"
}

// attemptOf returns the attempt of a Task's step in run: the event's own count
// (spec.retry), else one more than the Task's ends so far in the run (a Task
// that starts itself again on failure).
func attemptOf(run *Run, task string, attempt int32) int {
	if attempt > 1 {
		return int(attempt)
	}
	n := 1
	for _, prev := range run.Steps {
		if prev.Name == task && (prev.Kind == StepSucceeded || prev.Kind == StepFailed || prev.Kind == StepRetrying) {
			n++
		}
	}
	return n
}
