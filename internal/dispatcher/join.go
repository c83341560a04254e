package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/join"
)

// JoinConsumerName is the durable consumer of the join timers that all
// dispatchers share. The timers have a consumer of their own, so that runs
// waiting for their timeouts never hold back the events that start Tasks.
const JoinConsumerName = "orca-joins"

// Sources of the events and Pods of joins.
const (
	// SourceDispatcher is the CloudEvent source of the events the dispatcher
	// publishes: skips, timeouts, timers, forbidden starts and halted runs.
	SourceDispatcher = "orca/dispatcher"
	// SourceJoin is the event source in the name of a join's Pod, whose event id
	// is the run: a join starts its Task once per run.
	SourceJoin = "orca/join"
)

// joinMarkSlack is how much longer than a join's timeout the mark of a waiting
// run lives, in case nothing removes it.
const joinMarkSlack = time.Hour

// joins decides the runs of Tasks with a startWhen condition and carries out what
// it decided.
type joins struct {
	d      *Dispatcher
	store  *bus.JoinStore
	engine *join.Engine
	status *joinStatus
}

// program compiles the condition of task; a condition naming its own Task is an
// error (it would wait for itself).
func program(task *orcav1.Task) (*join.Program, error) {
	p, err := join.Compile(task.Spec.StartWhen)
	if err != nil {
		return nil, err
	}
	if slices.Contains(p.Tasks, task.Name) {
		return nil, fmt.Errorf("the condition names the Task itself (%s): it would wait for its own result", task.Name)
	}
	return p, nil
}

// resultOf returns the namespace and Task of a task or skipped event, and the
// result it reports.
func resultOf(del *bus.Delivery) (ns, task string, _ join.Result) {
	if s := del.Skipped; s != nil {
		r := s.Result
		return r.Namespace, r.Task, join.Result{Outcome: join.Skipped, Message: r.Message, Reason: r.Reason, At: r.FinishedAt}
	}
	r := del.Task.Result
	out := join.Failed
	if del.Task.Succeeded {
		out = join.Succeeded
	}
	return r.Namespace, r.Task, join.Result{Outcome: out, Message: r.Message, ExitCode: r.ExitCode, Reason: r.Reason, At: r.FinishedAt}
}

// tasksJoining returns the Tasks of ns whose condition names the Task name.
func (j *joins) tasksJoining(ctx context.Context, ns, name string) ([]orcav1.Task, error) {
	var tasks orcav1.TaskList
	if err := j.d.client.List(ctx, &tasks, client.InNamespace(ns), client.MatchingFields{IndexStartWhen: name}); err != nil {
		return nil, fmt.Errorf("list tasks joining %s/%s: %w", ns, name, err)
	}
	return tasks.Items, nil
}

// observeAll records a result of upstream in run for each of tasks, a few at once.
func (j *joins) observeAll(ctx context.Context, tasks []orcav1.Task, run, upstream string, r join.Result) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, j.d.opts.CreateParallelism)
	)
	for i := range tasks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := j.observe(ctx, &tasks[i], run, upstream, r); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// observe records the result of upstream in run for the join task, and acts on
// what that decides.
func (j *joins) observe(ctx context.Context, task *orcav1.Task, run, upstream string, r join.Result) error {
	p, _ := program(task) // an invalid condition records only; the status says why
	step, err := j.engine.Observe(ctx, p, task, run, upstream, r, func(st join.State) error {
		// The timer exists before the state it times out.
		return j.d.bus.PublishJoinTimer(ctx, bus.JoinTimer{
			ID: join.EventID("timer", task, run), Source: SourceDispatcher,
			Namespace: task.Namespace, Task: task.Name, TaskUID: string(task.UID), Run: run,
			Due: st.First.Add(join.Timeout(task)),
		})
	})
	if err != nil {
		return err
	}
	if step.State.Waiting() && (step.Created || !step.Recorded) {
		// The run's first result, or a redelivery that may follow a crash before
		// the mark: marking is idempotent.
		if err := j.store.Mark(ctx, join.WaitKey(task, run, step.State.First), join.Timeout(task)+joinMarkSlack); err != nil {
			return fmt.Errorf("mark run %q of join %s/%s waiting: %w", run, task.Namespace, task.Name, err)
		}
		j.status.poke(task)
	}
	return j.act(ctx, task, p, step)
}

// act carries out the decision of step, if any, and records it done.
func (j *joins) act(ctx context.Context, task *orcav1.Task, p *join.Program, step join.Step) error {
	dec, st := step.Act, step.State
	if dec == nil {
		return nil
	}
	log := j.d.log.With("namespace", task.Namespace, "task", task.Name, "run", st.Run)
	result := bus.TaskResult{
		Task: task.Name, Namespace: task.Namespace, TaskUID: string(task.UID), Run: st.Run,
		ExitCode: -1, Reason: dec.Reason, Message: dec.Message, FinishedAt: dec.At,
	}
	var err error
	switch dec.Action {
	case join.Start:
		s := start{EventSource: SourceJoin, EventID: st.Run, Run: st.Run, Initiator: dec.By, Inputs: join.Inputs(p, st.Results)}
		s.Data = st.Results[dec.By].Message
		// Through the loop guard: a join's start is a step of its run.
		err = j.d.startAll(ctx, []orcav1.Task{*task}, s)
	case join.Skip:
		err = j.d.bus.PublishTaskSkipped(ctx, bus.TaskSkipped{ID: join.EventID("skip", task, st.Run), Source: SourceDispatcher, Result: result})
		if err == nil {
			metrics.joinsSkipped.Inc()
			log.Info("task skipped in the run", "reason", dec.Reason, "why", dec.Message)
		}
	case join.Fail:
		err = j.d.bus.PublishTaskEvent(ctx, bus.TaskEvent{ID: join.EventID("timeout", task, st.Run), Source: SourceDispatcher, Result: result})
		if err == nil {
			log.Info("task failed in the run: its condition timed out", "why", dec.Message)
		}
	}
	if err != nil {
		return err
	}
	if dec.Reason == join.ReasonTimedOut {
		metrics.joinsTimedOut.Inc()
		j.d.recorder.Eventf(task, nil, corev1.EventTypeWarning, ReasonJoinTimedOut, "Join", "run %s: %s; the task %s", st.Run, dec.Message,
			map[join.Action]string{join.Start: "starts", join.Skip: "is skipped", join.Fail: "fails"}[dec.Action])
	}
	if err := j.engine.Done(ctx, task, st.Run); err != nil {
		return err
	}
	if err := j.store.Unmark(ctx, join.WaitKey(task, st.Run, st.First)); err != nil {
		log.Warn("unmark a decided run", "err", err)
	}
	j.status.poke(task)
	return nil
}

// handleTimer handles a join timer: it comes back (Later) until the run's
// timeout is due, then applies the Task's timeout policy to a run still waiting.
func (j *joins) handleTimer(ctx context.Context, del *bus.Delivery) error {
	jt := del.JoinTimer
	if jt == nil {
		return bus.Permanent(fmt.Errorf("event %q of type %s is not a join timer", del.Event.ID(), del.Event.Type()))
	}
	var task orcav1.Task
	err := j.d.client.Get(ctx, client.ObjectKey{Namespace: jt.Namespace, Name: jt.Task}, &task)
	if apierrors.IsNotFound(err) || err == nil && (string(task.UID) != jt.TaskUID || task.Spec.StartWhen == nil) {
		return nil // the join is gone, and its runs with it
	}
	if err != nil {
		return fmt.Errorf("get task %s/%s: %w", jt.Namespace, jt.Task, err)
	}
	p, _ := program(&task)
	step, err := j.engine.Expire(ctx, p, &task, jt.Run)
	switch {
	case err != nil:
		return err
	case step.State.First.IsZero():
		// No state yet: the result that published the timer is still being
		// recorded. Wait for the timeout it had then.
		if left := time.Until(jt.Due); left > 0 {
			return bus.Later(left)
		}
		return nil
	case step.Act != nil:
		return j.act(ctx, &task, p, step)
	case step.State.Waiting():
		if err := j.store.Mark(ctx, join.WaitKey(&task, jt.Run, step.State.First), join.Timeout(&task)+joinMarkSlack); err != nil {
			return err
		}
		return bus.Later(time.Until(step.Due))
	}
	return nil
}

// setupJoins adds what joins need: the status controller, and the consumer of
// the join timers.
func (d *Dispatcher) setupJoins(mgr manager.Manager, b *bus.Bus, o Options) error {
	store := b.JoinStore()
	status, err := setupJoinStatus(mgr, store)
	if err != nil {
		return fmt.Errorf("join status controller: %w", err)
	}
	d.joins = &joins{d: d, store: store, engine: &join.Engine{Store: store}, status: status}
	co := o.Consumer
	co.Name = bus.ScopedConsumerName(JoinConsumerName, o.Namespaces)
	co.Subjects = bus.ScopedSubjects(o.Namespaces, bus.SubjectJoinTimer)
	co.Concurrency = 4
	co.MaxAckPending = JoinTimersPending
	return app.AddConsumer(mgr, &app.Consumer{Cache: mgr.GetCache(), Bus: b, Options: co, Handler: d.joins.handleTimer})
}

// JoinTimersPending is how many runs may wait for their join timeouts at once.
// The timers past it are handled late, not lost: each comes once one ahead of
// it is acknowledged.
const JoinTimersPending = 100_000

// startJoins hands the result that del (a task or skipped event) reports to the
// joins whose condition names its Task.
func (d *Dispatcher) startJoins(ctx context.Context, del *bus.Delivery) error {
	ns, upstream, r := resultOf(del)
	tasks, err := d.joins.tasksJoining(ctx, ns, upstream)
	if err != nil || len(tasks) == 0 {
		return err
	}
	return d.joins.observeAll(ctx, tasks, del.Run(), upstream, r)
}
