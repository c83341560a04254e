package join

import (
	"fmt"
	"slices"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
)

// Outcome is how a Task ended in a run.
type Outcome string

// Outcomes of a Task in a run.
const (
	Succeeded Outcome = "succeeded"
	Failed    Outcome = "failed"
	Skipped   Outcome = "skipped"
)

// Result is a Task's result in a run, as a condition reads it.
type Result struct {
	Outcome  Outcome   `json:"outcome"`
	Message  string    `json:"message,omitempty"`
	ExitCode int32     `json:"exitCode,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

func (r Result) cel() celResult {
	return celResult{
		Succeeded: r.Outcome == Succeeded, Failed: r.Outcome == Failed, Skipped: r.Outcome == Skipped, Done: true,
		Message: r.Message, ExitCode: int64(r.ExitCode), Reason: r.Reason,
	}
}

// Verdict is what a condition says about a run.
type Verdict int

// Verdicts.
const (
	// Undecided: the Tasks that have not reported could still make it true or
	// false.
	Undecided Verdict = iota
	True
	False
)

func (v Verdict) String() string {
	return [...]string{"undecided", "true", "false"}[v]
}

// Eval evaluates the condition on the results known in a run; a Task missing from
// results is unknown. It fails only when every Task it names is known and the
// expression still fails (e.g. int() of a message that is not a number).
func (p *Program) Eval(results map[string]Result) (Verdict, error) {
	vars := map[string]any{}
	tasks := map[string]celResult{}
	var unknown []*cel.AttributePatternType
	for _, name := range p.Tasks {
		if r, ok := results[name]; ok {
			tasks[name] = r.cel()
			continue
		}
		unknown = append(unknown, cel.AttributePattern(tasksVar).QualString(name))
	}
	for ident, name := range p.idents {
		if r, ok := tasks[name]; ok {
			vars[ident] = r
			continue
		}
		unknown = append(unknown, cel.AttributePattern(ident))
	}
	vars[tasksVar] = tasks
	act, err := cel.PartialVars(vars, unknown...)
	if err != nil {
		return Undecided, fmt.Errorf("condition variables: %w", err)
	}
	out, _, err := p.prg.Eval(act)
	switch {
	case err == nil && out == types.True:
		return True, nil
	case err == nil && out == types.False:
		return False, nil
	case err == nil && types.IsUnknown(out):
		return Undecided, nil
	case len(unknown) > 0:
		// An error that a Task not reported yet may still make moot ("x || b").
		return Undecided, nil
	case err == nil:
		return Undecided, fmt.Errorf("the condition gave %v, not true or false", out)
	}
	return Undecided, fmt.Errorf("the condition failed: %w", err)
}

// Missing returns the Tasks of the condition that have no result in results.
func (p *Program) Missing(results map[string]Result) []string {
	var out []string
	for _, name := range p.Tasks {
		if _, ok := results[name]; !ok {
			out = append(out, name)
		}
	}
	return slices.Clip(out)
}
