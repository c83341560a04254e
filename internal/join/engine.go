package join

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// Store keeps States under keys, with compare-and-swap.
type Store interface {
	// Get returns the value of key and its revision; nil and 0 when there is none.
	Get(ctx context.Context, key string) (value []byte, revision uint64, err error)
	// Swap stores value under key if the key is still at revision (0: absent),
	// and reports whether it did.
	Swap(ctx context.Context, key string, value []byte, revision uint64) (swapped bool, err error)
}

// maxSwaps bounds the attempts of one update against concurrent writers.
const maxSwaps = 100

// Engine records the results of runs and decides them.
type Engine struct {
	Store Store
	// Now returns the time; default time.Now.
	Now func() time.Time
}

// Step is what Observe or Expire did.
type Step struct {
	// State is the run's State after the call (zero when it has none).
	State State
	// Act is the Decision the caller must carry out and then mark Done: decided
	// now, or decided earlier and not carried out yet (a crash, a failed create).
	Act *Decision
	// Created says this call stored the run's first State.
	Created bool
	// Recorded says this call stored the result it was given (Observe): false
	// when the run had a result of that Task already, or was decided.
	Recorded bool
	// Due is, for an undecided run not timed out yet, when it times out.
	Due time.Time
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Observe records r as the result of the Task upstream in run (unless that Task
// already has one there) and decides the run of task when the condition p is now
// true or false. p nil (a condition that does not compile) records only.
// beforeCreate, when set, runs before the run's first State is stored: a timer
// published there exists before anything that it must time out.
func (e *Engine) Observe(ctx context.Context, p *Program, task *orcav1.Task, run, upstream string, r Result, beforeCreate func(State) error) (Step, error) {
	recorded := false
	step, err := e.update(ctx, Key(task, run), func(st *State, created bool) (bool, error) {
		recorded = false
		if created {
			*st = State{Namespace: task.Namespace, Task: task.Name, TaskUID: string(task.UID), Run: run, First: e.now(), Results: map[string]Result{}}
		}
		if st.Decision != nil {
			return false, nil
		}
		changed := false
		if _, seen := st.Results[upstream]; !seen {
			st.Results[upstream] = r
			st.Last = upstream
			changed, recorded = true, true
		}
		if p != nil {
			st.Decision = e.decide(p, st, upstream)
		}
		if !changed && st.Decision == nil {
			return false, nil
		}
		if created && beforeCreate != nil {
			if err := beforeCreate(*st); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	step.Recorded = recorded && err == nil
	return step, err
}

// Expire applies the timeout policy of task to run when the run is still
// undecided at its timeout. Before that, Step.Due says when it is due.
func (e *Engine) Expire(ctx context.Context, p *Program, task *orcav1.Task, run string) (Step, error) {
	step, err := e.update(ctx, Key(task, run), func(st *State, created bool) (bool, error) {
		if created || st.Decision != nil {
			return false, nil
		}
		if p != nil {
			if st.Decision = e.decide(p, st, ""); st.Decision != nil {
				return true, nil
			}
		}
		timeout := Timeout(task)
		if due := st.First.Add(timeout); e.now().Before(due) {
			return false, nil
		}
		d := &Decision{Reason: ReasonTimedOut, At: e.now(), Action: Skip,
			Message: fmt.Sprintf("no decision within %s of the first result: %s", timeout, summary(p, st.Results))}
		var policy orcav1.TimeoutPolicy
		if w := task.Spec.StartWhen; w != nil {
			policy = w.OnTimeout
		}
		switch policy {
		case orcav1.TimeoutFail:
			d.Action = Fail
		case orcav1.TimeoutStart:
			d.Action, d.By = Start, st.Last
		}
		st.Decision = d
		return true, nil
	})
	if err == nil && step.State.Decision == nil && !step.State.First.IsZero() {
		step.Due = step.State.First.Add(Timeout(task))
	}
	return step, err
}

// Done records that the Decision of task in run was carried out.
func (e *Engine) Done(ctx context.Context, task *orcav1.Task, run string) error {
	_, err := e.update(ctx, Key(task, run), func(st *State, created bool) (bool, error) {
		if created || st.Decision == nil || st.Decision.Done {
			return false, nil
		}
		st.Decision.Done = true
		return true, nil
	})
	return err
}

// update reads the State under key, lets change modify it (created: there was
// none) and swaps it in when change says so, again until no one else wrote
// between the read and the swap.
func (e *Engine) update(ctx context.Context, key string, change func(st *State, created bool) (bool, error)) (Step, error) {
	for range maxSwaps {
		raw, rev, err := e.Store.Get(ctx, key)
		if err != nil {
			return Step{}, fmt.Errorf("read join state %s: %w", key, err)
		}
		var st State
		if rev != 0 {
			if err := json.Unmarshal(raw, &st); err != nil {
				return Step{}, fmt.Errorf("join state %s: %w", key, err)
			}
		}
		write, err := change(&st, rev == 0)
		if err != nil {
			return Step{}, err
		}
		step := Step{State: st}
		if st.Decision != nil && !st.Decision.Done {
			step.Act = st.Decision
		}
		if !write {
			return step, nil
		}
		v, err := json.Marshal(st)
		if err != nil {
			return Step{}, err
		}
		swapped, err := e.Store.Swap(ctx, key, v, rev)
		if err != nil {
			return Step{}, fmt.Errorf("write join state %s: %w", key, err)
		}
		if swapped {
			step.Created = rev == 0
			return step, nil
		}
	}
	return Step{}, fmt.Errorf("join state %s: more than %d concurrent updates", key, maxSwaps)
}

// decide evaluates the condition on st and returns the Decision it makes, if
// any; by is the Task whose result arrived last.
func (e *Engine) decide(p *Program, st *State, by string) *Decision {
	v, err := p.Eval(st.Results)
	d := &Decision{By: by, At: e.now()}
	switch {
	case err != nil:
		d.Action, d.Reason = Skip, ReasonFailed
		d.Message = fmt.Sprintf("%v (%s)", err, summary(p, st.Results))
	case v == True:
		d.Action, d.Reason = Start, ReasonConditionTrue
		d.Message = fmt.Sprintf("the condition is true: %s", summary(p, st.Results))
	case v == False:
		d.Action, d.Reason = Skip, ReasonConditionFalse
		d.Message = fmt.Sprintf("the condition is false: %s", summary(p, st.Results))
	default:
		return nil
	}
	return d
}

// summary says how each Task of the condition ended in the run.
func summary(p *Program, results map[string]Result) string {
	var names []string
	if p != nil {
		names = p.Tasks
	} else {
		names = slices.Sorted(maps.Keys(results))
	}
	parts := make([]string, 0, len(names))
	for _, n := range names {
		if r, ok := results[n]; ok {
			parts = append(parts, n+" "+string(r.Outcome))
		} else {
			parts = append(parts, n+" not reported")
		}
	}
	return strings.Join(parts, ", ")
}
