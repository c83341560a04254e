package bus

import (
	"encoding/json"
	"fmt"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go"
)

// Delivery is one decoded event handed to a Handler. Exactly one of Ignition,
// Task, Retry, Halt and Forbidden is set, by the event's type.
type Delivery struct {
	// Subject is the NATS subject the event was published on.
	Subject string
	// Event is the CloudEvent as received.
	Event cloudevents.Event
	// Ignition is set for TypeIgnited.
	Ignition *Ignition
	// Task is set for TypeTaskSucceeded and TypeTaskFailed.
	Task *TaskEvent
	// Skipped is set for TypeTaskSkipped.
	Skipped *TaskSkipped
	// JoinTimer is set for TypeJoinTimer.
	JoinTimer *JoinTimer
	// Retry is set for TypeTaskRetrying, Halt for TypeTaskHalted.
	Retry *RetryEvent
	Halt  *HaltEvent
	// Forbidden is set for TypeTaskForbidden.
	Forbidden *ForbiddenStart
	// NumDelivered counts the deliveries of this message, this one included.
	NumDelivered uint64
	// Sequence is the message's sequence in the stream: the order in which the
	// stream stored it.
	Sequence uint64
	// TraceParent and TraceState are the W3C trace context of the run: the
	// event's distributed-tracing extension, or when it has none (or not a valid
	// one), the context of the span of this delivery's handling (empty while
	// tracing is off). Events that the run causes carry it.
	TraceParent, TraceState string
}

// Run returns the run id of the event (its id when it carries none).
func (d *Delivery) Run() string { return runOf(d.Event) }

// parse decodes a message into a Delivery, or says why it can never be used. A
// positive maxData limits the data, and an ignition's to MaxIgnitionData; zero
// (following the stream) accepts any size.
func parse(subject string, header nats.Header, data []byte, maxData int) (*Delivery, error) {
	if maxData > 0 && len(data) > maxData {
		return nil, fmt.Errorf("message data is %d bytes, over the limit of %d", len(data), maxData)
	}
	e, err := decode(header, data)
	if err != nil {
		return nil, err
	}
	if maxData > 0 && len(e.Data()) > maxData {
		return nil, fmt.Errorf("event data is %d bytes, over the limit of %d", len(e.Data()), maxData)
	}
	d := &Delivery{Subject: subject, Event: e}
	switch e.Type() {
	case TypeIgnited:
		d.Ignition, err = parseIgnition(subject, e)
	case TypeTaskSucceeded, TypeTaskFailed:
		d.Task, err = parseTaskEvent(subject, e)
	case TypeTaskSkipped:
		d.Skipped, err = parseSkipped(subject, e)
	case TypeJoinTimer:
		d.JoinTimer, err = parseJoinTimer(subject, e)
	case TypeTaskRetrying:
		d.Retry, err = parseRetryEvent(subject, e)
	case TypeTaskHalted:
		d.Halt, err = parseHaltEvent(subject, e)
	case TypeTaskForbidden:
		d.Forbidden, err = parseForbidden(subject, e)
	default:
		err = fmt.Errorf("unknown event type %q", e.Type())
	}
	if err != nil {
		return nil, err
	}
	if maxData > 0 && d.Ignition != nil && len(d.Ignition.Data) > MaxIgnitionData {
		return nil, fmt.Errorf("ignition data is %d bytes, over the limit of %d: it becomes the environment variable ORCA_DATA, "+
			"and a container cannot start with a variable of 128 KiB or more (E2BIG); pass a reference to the data instead",
			len(d.Ignition.Data), MaxIgnitionData)
	}
	return d, nil
}

func parseIgnition(subject string, e cloudevents.Event) (*Ignition, error) {
	ns, name, ok := splitSubject(subject, SubjectIgnited)
	if !ok {
		return nil, fmt.Errorf("type %s on subject %q: want %s.<namespace>.<name>", e.Type(), subject, SubjectIgnited)
	}
	if s := e.Subject(); s != "" && s != name {
		return nil, fmt.Errorf("CloudEvent subject %q does not match the ignition name %q of NATS subject %q", s, name, subject)
	}
	ig := &Ignition{
		ID: e.ID(), Source: e.Source(), Namespace: ns, Name: name,
		Run: runOf(e), Data: e.Data(), Time: e.Time(),
	}
	ig.TraceParent, ig.TraceState = traceOf(e)
	return ig, nil
}

func parseTaskEvent(subject string, e cloudevents.Event) (*TaskEvent, error) {
	succeeded := e.Type() == TypeTaskSucceeded
	prefix := SubjectTaskFailed
	if succeeded {
		prefix = SubjectTaskSucceeded
	}
	r, err := parseResult(subject, prefix, e)
	if err != nil {
		return nil, err
	}
	te := &TaskEvent{ID: e.ID(), Source: e.Source(), Succeeded: succeeded, Result: r}
	te.TraceParent, te.TraceState = traceOf(e)
	return te, nil
}

// parseResult decodes the TaskResult of an event on "<prefix>.<namespace>.<task>".
func parseResult(subject, prefix string, e cloudevents.Event) (TaskResult, error) {
	ns, task, ok := splitSubject(subject, prefix)
	if !ok {
		return TaskResult{}, fmt.Errorf("type %s on subject %q: want %s.<namespace>.<task>", e.Type(), subject, prefix)
	}
	var r TaskResult
	if err := json.Unmarshal(e.Data(), &r); err != nil {
		return TaskResult{}, fmt.Errorf("task event data is not TaskResult JSON: %w", err)
	}
	if r.Task == "" {
		r.Task = task
	}
	if r.Namespace == "" {
		r.Namespace = ns
	}
	if r.Task != task || r.Namespace != ns {
		return TaskResult{}, fmt.Errorf("task event data names %s/%s but was published on %q", r.Namespace, r.Task, subject)
	}
	if r.Run == "" {
		r.Run = runOf(e)
	}
	return r, nil
}
