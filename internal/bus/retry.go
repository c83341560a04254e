package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// Events of run policies: an attempt that will be retried, and a run that the
// dispatcher's loop guard halted.
const (
	TypeTaskRetrying = "cloud.sirocco.orca.task.retrying"
	TypeTaskHalted   = "cloud.sirocco.orca.task.halted"

	SubjectTaskRetrying = "orca.task.retrying"
	SubjectTaskHalted   = "orca.task.halted"
)

// TaskRetry is the data of a retrying event: an attempt of a Task's run failed,
// and the dispatcher starts the next one at RetryAt. The embedded TaskResult is
// the failed attempt; the other fields are what the next attempt needs.
type TaskRetry struct {
	TaskResult
	// NextAttempt is the number of the attempt to start.
	NextAttempt int32 `json:"nextAttempt"`
	// RetryAt is when the next attempt is due.
	RetryAt time.Time `json:"retryAt"`
	// FailedAttempts counts the run's failures so far that count against the
	// retry limit (a disruption that is ignored does not).
	FailedAttempts int32 `json:"failedAttempts"`
	// RunStartedAt is when the run's first attempt was created; the run's
	// deadline counts from it.
	RunStartedAt time.Time `json:"runStartedAt"`
	// Data is the ORCA_DATA every attempt of the run gets.
	Data string `json:"data"`
	// Inputs is the ORCA_INPUTS every attempt of a join's run gets.
	Inputs string `json:"inputs,omitempty"`
	// TriggerSource and TriggerID identify the event that started the run: with
	// the attempt, they name the next attempt's Pod.
	TriggerSource string `json:"triggerSource"`
	TriggerID     string `json:"triggerID"`
}

// RetryEvent says that an attempt failed and another follows.
type RetryEvent struct {
	// ID is the event id: the failed Pod's uid.
	ID     string
	Source string
	Retry  TaskRetry
	// TraceParent and TraceState are the W3C trace context of the run: the
	// ignition's, carried unchanged (see Ignition).
	TraceParent, TraceState string
}

// TaskHalt is the data of a halted event: the dispatcher did not start Task in
// run Run, because the run had started Limit Pods already.
type TaskHalt struct {
	Task      string `json:"task"`
	Namespace string `json:"namespace"`
	TaskUID   string `json:"taskUID,omitempty"`
	Run       string `json:"run"`
	// Initiator is the ignition or Task whose event would have started it.
	Initiator string `json:"initiator"`
	// Attempt is the attempt that was not started.
	Attempt int32 `json:"attempt"`
	// Steps is how many Pods the run had started; Limit the most it may.
	Steps    int64     `json:"steps"`
	Limit    int64     `json:"limit"`
	Reason   string    `json:"reason"`
	Message  string    `json:"message"`
	HaltedAt time.Time `json:"haltedAt"`
}

// HaltEvent says that a run was halted where it would have started a Task.
type HaltEvent struct {
	ID     string
	Source string
	Halt   TaskHalt
	// TraceParent and TraceState are the W3C trace context of the run (see
	// RetryEvent).
	TraceParent, TraceState string
}

// RetrySubject returns the subject of a retrying event.
func RetrySubject(namespace, task string) string {
	return SubjectTaskRetrying + "." + namespace + "." + task
}

// HaltSubject returns the subject of a halted event.
func HaltSubject(namespace, task string) string {
	return SubjectTaskHalted + "." + namespace + "." + task
}

// Event returns the retrying event as a CloudEvent.
func (re RetryEvent) Event() (cloudevents.Event, error) {
	r := re.Retry
	return taskEvent(re.ID, re.Source, TypeTaskRetrying, r.Task, r.Namespace, r.Run, r.FinishedAt, r, re.TraceParent, re.TraceState)
}

// Event returns the halted event as a CloudEvent.
func (he HaltEvent) Event() (cloudevents.Event, error) {
	h := he.Halt
	return taskEvent(he.ID, he.Source, TypeTaskHalted, h.Task, h.Namespace, h.Run, h.HaltedAt, h, he.TraceParent, he.TraceState)
}

// taskEvent builds an event about a Task with JSON data and the run's trace
// context.
func taskEvent(id, source, typ, task, namespace, run string, at time.Time, data any, traceparent, tracestate string) (cloudevents.Event, error) {
	e := cloudevents.NewEvent()
	if err := checkValues([2]string{"id", id}, [2]string{"source", source}, [2]string{"subject", task},
		[2]string{ExtensionRun, run}, [2]string{"namespace", namespace}); err != nil {
		return e, err
	}
	e.SetID(id)
	e.SetSource(source)
	e.SetType(typ)
	e.SetSubject(task)
	e.SetTime(at)
	e.SetExtension(ExtensionRun, run)
	setTrace(&e, traceparent, tracestate)
	if err := e.SetData(cloudevents.ApplicationJSON, data); err != nil {
		return e, fmt.Errorf("set %s data: %w", typ, err)
	}
	return e, validate(e, source)
}

// PublishRetry publishes a retrying event and waits until the stream stored it.
func (b *Bus) PublishRetry(ctx context.Context, re RetryEvent) error {
	e, err := re.Event()
	if err != nil {
		return fmt.Errorf("retrying event %s/%s: %w", re.Retry.Namespace, re.Retry.Task, err)
	}
	_, err = b.publish(ctx, RetrySubject(re.Retry.Namespace, re.Retry.Task), e)
	return err
}

// PublishHalt publishes a halted event and waits until the stream stored it.
func (b *Bus) PublishHalt(ctx context.Context, he HaltEvent) error {
	e, err := he.Event()
	if err != nil {
		return fmt.Errorf("halted event %s/%s: %w", he.Halt.Namespace, he.Halt.Task, err)
	}
	_, err = b.publish(ctx, HaltSubject(he.Halt.Namespace, he.Halt.Task), e)
	return err
}

func parseRetryEvent(subject string, e cloudevents.Event) (*RetryEvent, error) {
	var r TaskRetry
	if err := taskData(subject, SubjectTaskRetrying, e, &r, &r.Namespace, &r.Task); err != nil {
		return nil, err
	}
	if r.Run == "" {
		r.Run = runOf(e)
	}
	if r.NextAttempt < 2 || r.TriggerID == "" || r.TriggerSource == "" {
		return nil, fmt.Errorf("retrying event data needs nextAttempt (2 or more), triggerSource and triggerID")
	}
	re := &RetryEvent{ID: e.ID(), Source: e.Source(), Retry: r}
	re.TraceParent, re.TraceState = traceOf(e)
	return re, nil
}

func parseHaltEvent(subject string, e cloudevents.Event) (*HaltEvent, error) {
	var h TaskHalt
	if err := taskData(subject, SubjectTaskHalted, e, &h, &h.Namespace, &h.Task); err != nil {
		return nil, err
	}
	if h.Run == "" {
		h.Run = runOf(e)
	}
	he := &HaltEvent{ID: e.ID(), Source: e.Source(), Halt: h}
	he.TraceParent, he.TraceState = traceOf(e)
	return he, nil
}

// taskData decodes the JSON data of an event published on
// "<prefix>.<namespace>.<task>" into out, whose namespace and task fields are
// filled from the subject when empty and must match it.
func taskData(subject, prefix string, e cloudevents.Event, out any, namespace, task *string) error {
	ns, name, ok := splitSubject(subject, prefix)
	if !ok {
		return fmt.Errorf("type %s on subject %q: want %s.<namespace>.<task>", e.Type(), subject, prefix)
	}
	if err := json.Unmarshal(e.Data(), out); err != nil {
		return fmt.Errorf("%s data is not JSON of its kind: %w", e.Type(), err)
	}
	if *task == "" {
		*task = name
	}
	if *namespace == "" {
		*namespace = ns
	}
	if *task != name || *namespace != ns {
		return fmt.Errorf("%s data names %s/%s but was published on %q", e.Type(), *namespace, *task, subject)
	}
	return nil
}
