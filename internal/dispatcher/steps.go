package dispatcher

import (
	"context"
	"flag"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// The loop guard. A run (one run id in one namespace) counts its steps: the Pods
// started for it, across all its Tasks, branches and attempts. A counter in the
// bus's state bucket holds the count, so that every dispatcher replica shares it
// and a restart keeps it. Before it creates Pods, the dispatcher reserves a step
// for each (compare-and-set), and it gives back the steps of Pods it did not
// create (they existed already, or the create failed and the event comes back).
// A Task whose step would pass its limit (spec.maxRunSteps, else --max-run-steps)
// is not started: the run is halted there, with a Warning Event on the Task and a
// halted event on the bus. The count is never below the Pods the run started; a
// dispatcher that dies between a reservation and its create leaves one step too
// many counted, which only halts that run a step early.

// ReasonRunHalted is the reason of the Event and of the halted event of a Task
// that the loop guard did not start.
const ReasonRunHalted = "RunHalted"

// stepCounters names the counters of the state bucket that count runs' steps.
const stepCounters = "steps"

// BindFlags registers the dispatcher's own flags on fs.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.MaxRunSteps, "max-run-steps", orcav1.DefaultMaxRunSteps,
		"Pods a run may start across all its Tasks and attempts before the dispatcher halts it (a Task's spec.maxRunSteps overrides it)")
	fs.DurationVar(&o.SlotRepairAfter, "slot-repair-after", DefaultSlotRepairAfter,
		"how long a Pod holds a slot of a Task with parallelism or concurrencyPolicy before the dispatcher checks that it still runs, and frees the slot of one gone or reported whose completion event never freed it")
}

// stepLimit is the most steps a run may have taken for task to start in it.
func (d *Dispatcher) stepLimit(task *orcav1.Task) int64 {
	if task.Spec.MaxRunSteps != nil {
		return int64(*task.Spec.MaxRunSteps)
	}
	return int64(d.opts.MaxRunSteps)
}

// takeSteps reserves a step of run s.Run for each task in order, as long as the
// task's limit allows it, and returns the tasks it admitted. It reports each task
// it refuses as halted.
func (d *Dispatcher) takeSteps(ctx context.Context, tasks []orcav1.Task, s start) ([]orcav1.Task, error) {
	ns := tasks[0].Namespace
	var admitted []bool
	before, after, err := d.bus.Counters(stepCounters).Update(ctx, func(cur int64) int64 {
		admitted = make([]bool, len(tasks))
		for i := range tasks {
			if cur < d.stepLimit(&tasks[i]) {
				cur++
				admitted[i] = true
			}
		}
		return cur
	}, ns, s.Run)
	if err != nil {
		return nil, fmt.Errorf("count the steps of run %q in %s: %w", s.Run, ns, err)
	}
	if int(after-before) == len(tasks) {
		return tasks, nil
	}
	var out []orcav1.Task
	for i := range tasks {
		if admitted[i] {
			out = append(out, tasks[i])
		} else if err := d.halt(ctx, &tasks[i], s, after); err != nil {
			d.giveBackSteps(ctx, ns, s.Run, after-before)
			return nil, err
		}
	}
	return out, nil
}

// giveBackSteps gives back n steps of run in namespace ns, reserved for Pods that were
// not created. A failure leaves them counted, which errs on the safe side.
func (d *Dispatcher) giveBackSteps(ctx context.Context, ns, run string, n int64) {
	if n <= 0 {
		return
	}
	_, _, err := d.bus.Counters(stepCounters).Update(context.WithoutCancel(ctx), func(cur int64) int64 { return max(cur-n, 0) }, ns, run)
	if err != nil {
		d.log.Warn("steps not given back", "namespace", ns, "run", run, "steps", n, "err", err)
	}
}

// halt reports a task that the loop guard did not start: a halted event, a
// Warning Event on the Task, a log line and a metric.
func (d *Dispatcher) halt(ctx context.Context, task *orcav1.Task, s start, steps int64) error {
	limit := d.stepLimit(task)
	pod := AttemptPodName(task.Name, s.EventSource, s.EventID, s.Attempt)
	msg := fmt.Sprintf("run %s has started %d Pods, the limit for task %s (spec.maxRunSteps, else the dispatcher's --max-run-steps) is %d: the task is not started and the run stops here",
		s.Run, steps, task.Name, limit)
	err := d.bus.PublishHalt(ctx, bus.HaltEvent{ID: task.Namespace + "/" + pod, Source: "orca/dispatcher", Halt: bus.TaskHalt{
		Task: task.Name, Namespace: task.Namespace, TaskUID: string(task.UID), Run: s.Run, Initiator: s.Initiator,
		Attempt: max(s.Attempt, 1), Steps: steps, Limit: limit, Reason: ReasonRunHalted, Message: msg, HaltedAt: time.Now().UTC(),
	}, TraceParent: s.Trace.RunParent, TraceState: s.Trace.RunState})
	if err != nil {
		return err
	}
	metrics.halted.Inc()
	d.recorder.Eventf(task, nil, corev1.EventTypeWarning, ReasonRunHalted, "StartPod", "%s", msg)
	d.log.Warn("run halted: too many steps", "namespace", task.Namespace, "task", task.Name, "run", s.Run,
		"steps", steps, "limit", limit, "initiator", s.Initiator)
	return nil
}
