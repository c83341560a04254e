package bus

import (
	"fmt"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/types"
)

// CloudEvent types and attributes of Orca's events.
const (
	TypeIgnited       = "cloud.sirocco.orca.ignited"
	TypeTaskSucceeded = "cloud.sirocco.orca.task.succeeded"
	TypeTaskFailed    = "cloud.sirocco.orca.task.failed"

	// ExtensionRun is the extension attribute that carries the run id of a chain.
	ExtensionRun = "orcarun"
)

// Subject prefixes of Orca's events.
const (
	SubjectAll           = "orca.>"
	SubjectIgnited       = "orca.ignited"
	SubjectTaskSucceeded = "orca.task.succeeded"
	SubjectTaskFailed    = "orca.task.failed"
	SubjectDeadLetter    = "orca.deadletter"
)

// Filters for consumers.
var (
	FilterIgnitions  = SubjectIgnited + ".>"
	FilterTaskEvents = []string{SubjectTaskSucceeded + ".>", SubjectTaskFailed + ".>"}
	FilterDeadLetter = SubjectDeadLetter + ".>"
)

// MaxIgnitionData is the largest ignition data that starts Tasks, in bytes. The
// data becomes the environment variable ORCA_DATA of every container, and Linux
// refuses to start a program with a single "NAME=value" string of 128 KiB or more
// (MAX_ARG_STRLEN, E2BIG): 64 KiB leaves room for $(ORCA_DATA) copies and for the
// other variables and arguments. A consumer dead-letters a larger ignition.
const MaxIgnitionData = 64 << 10

// MsgID returns the Nats-Msg-Id of the event with source and id: both, as
// CloudEvents makes the pair unique, so that the stream's duplicate window drops
// a republish of the same event but not another source's event with the same id.
func MsgID(source, id string) string { return source + " " + id }

// Ignition is an ignition fired in a namespace: the Tasks that list Name in
// startOnIgnition start with Data as ORCA_DATA.
type Ignition struct {
	// ID is the event id; a scheduled firing uses "<ignitor uid>-<unix seconds>".
	ID string
	// Source is the CloudEvent source, e.g. "orca/scheduler".
	Source    string
	Namespace string
	Name      string
	// Run is the run id; empty means the event id.
	Run  string
	Data []byte
	Time time.Time
	// TraceParent and TraceState are the W3C trace context of the run (the
	// CloudEvents distributed-tracing extension). Empty means the context of
	// the publish's span, when tracing is on; a traceparent that is not valid is
	// left out.
	TraceParent, TraceState string
}

// TaskResult is the data of a task event.
type TaskResult struct {
	Task      string `json:"task"`
	Namespace string `json:"namespace"`
	// TaskUID is the uid of the Task object that started the Pod. A Task deleted
	// and applied again under the same name has another uid: an event whose
	// TaskUID is not the current Task's belongs to the deleted one, and Orca
	// starts no Task and runs no Action on it. Empty in events of older watchers.
	TaskUID   string `json:"taskUID,omitempty"`
	Pod       string `json:"pod"`
	Run       string `json:"run"`
	Initiator string `json:"initiator"`
	ExitCode  int32  `json:"exitCode"`
	// Message is the termination message, as the kubelet reported it.
	Message string `json:"message"`
	// MessageTruncated says that Message is as long as the kubelet keeps, so it
	// was probably cut (see the watcher's package comment for the rule).
	MessageTruncated bool       `json:"messageTruncated,omitempty"`
	Reason           string     `json:"reason,omitempty"`
	StartedAt        *time.Time `json:"startedAt,omitempty"`
	FinishedAt       time.Time  `json:"finishedAt"`
	// Attempt is the number of the Pod's attempt in its run, from 1 (ORCA_ATTEMPT);
	// absent in events of older watchers.
	Attempt int32 `json:"attempt,omitempty"`
}

// TaskEvent says that a run of a Task ended.
type TaskEvent struct {
	// ID is the event id: the Pod's uid.
	ID        string
	Source    string
	Succeeded bool
	Result    TaskResult
	// TraceParent and TraceState are the W3C trace context of the run: the
	// ignition's, carried unchanged (see Ignition).
	TraceParent, TraceState string
}

// Type returns the CloudEvent type of the event.
func (e TaskEvent) Type() string {
	if e.Succeeded {
		return TypeTaskSucceeded
	}
	return TypeTaskFailed
}

// IgnitionSubject returns the subject of an ignition.
func IgnitionSubject(namespace, name string) string {
	return SubjectIgnited + "." + namespace + "." + name
}

// TaskSubject returns the subject of a task event.
func TaskSubject(succeeded bool, namespace, task string) string {
	if succeeded {
		return SubjectTaskSucceeded + "." + namespace + "." + task
	}
	return SubjectTaskFailed + "." + namespace + "." + task
}

// Event returns the ignition as a CloudEvent.
func (ig Ignition) Event() (cloudevents.Event, error) {
	e := cloudevents.NewEvent()
	// Checked as given: the SDK would trim some of them silently.
	if err := checkValues([2]string{"id", ig.ID}, [2]string{"source", ig.Source}, [2]string{"subject", ig.Name}, [2]string{ExtensionRun, ig.Run}); err != nil {
		return e, err
	}
	e.SetID(ig.ID)
	e.SetSource(ig.Source)
	e.SetType(TypeIgnited)
	e.SetSubject(ig.Name)
	if !ig.Time.IsZero() {
		e.SetTime(ig.Time)
	}
	run := ig.Run
	if run == "" {
		run = ig.ID
	}
	e.SetExtension(ExtensionRun, run)
	setTrace(&e, ig.TraceParent, ig.TraceState)
	if err := e.SetData("text/plain", ig.Data); err != nil {
		return e, fmt.Errorf("set ignition data: %w", err)
	}
	return e, validate(e, ig.Source)
}

// validate checks an event Orca is about to publish from source.
func validate(e cloudevents.Event, source string) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if e.Source() != source {
		// The SDK escapes what a URI reference cannot hold ("a b" becomes
		// "a%20b"): the event would not carry the source it was given.
		return fmt.Errorf("invalid CloudEvent attribute \"source\": %q is not a URI reference as written (it would be sent as %q)", source, e.Source())
	}
	return checkAttributes(e)
}

// Event returns the task event as a CloudEvent.
func (te TaskEvent) Event() (cloudevents.Event, error) {
	e := cloudevents.NewEvent()
	if err := checkValues([2]string{"id", te.ID}, [2]string{"source", te.Source}, [2]string{"subject", te.Result.Task},
		[2]string{ExtensionRun, te.Result.Run}, [2]string{"namespace", te.Result.Namespace}); err != nil {
		return e, err
	}
	e.SetID(te.ID)
	e.SetSource(te.Source)
	e.SetType(te.Type())
	e.SetSubject(te.Result.Task)
	e.SetTime(te.Result.FinishedAt)
	e.SetExtension(ExtensionRun, te.Result.Run)
	setTrace(&e, te.TraceParent, te.TraceState)
	if err := e.SetData(cloudevents.ApplicationJSON, te.Result); err != nil {
		return e, fmt.Errorf("set task event data: %w", err)
	}
	return e, validate(e, te.Source)
}

// splitSubject splits "<prefix>.<namespace>.<name...>" into namespace and name; a
// name keeps its dots.
func splitSubject(subject, prefix string) (namespace, name string, ok bool) {
	rest, found := strings.CutPrefix(subject, prefix+".")
	if !found {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, ".")
	return namespace, name, ok && namespace != "" && name != ""
}

func runOf(e cloudevents.Event) string {
	if v, ok := e.Extensions()[ExtensionRun]; ok {
		// Canonical form: a structured event may carry the run as a number.
		if s, err := types.Format(v); err == nil && s != "" {
			return s
		}
	}
	return e.ID()
}
