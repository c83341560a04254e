package v1alpha1

// Labels, annotations, finalizer and environment variables that Orca puts on the
// Pods it starts.
const (
	// LabelTask holds the name of the Task that owns the Pod (hashed when the name
	// is longer than a label value may be); AnnotationTask holds it whole.
	LabelTask = "orca.sirocco.cloud/task"
	// LabelRun holds the run id (hashed when it is not a valid label value);
	// AnnotationRun holds it whole.
	LabelRun = "orca.sirocco.cloud/run"

	AnnotationTask = "orca.sirocco.cloud/task"
	AnnotationRun  = "orca.sirocco.cloud/run"
	// AnnotationInitiator is the name of the ignition or Task that started the Pod.
	AnnotationInitiator = "orca.sirocco.cloud/initiator"
	// AnnotationEventID and AnnotationEventSource are the id and the source of
	// the event that started the Pod: the pair identifies a CloudEvent.
	AnnotationEventID     = "orca.sirocco.cloud/event-id"
	AnnotationEventSource = "orca.sirocco.cloud/event-source"
	// AnnotationTaskUID is the uid of the Task object that started the Pod: its
	// completion belongs to that Task, not to a later one of the same name.
	AnnotationTaskUID = "orca.sirocco.cloud/task-uid"
	// AnnotationReplaces names the Pods (comma-separated) whose slots the Pod
	// took under concurrencyPolicy Replace; the watcher deletes them and marks
	// each with AnnotationReplacedBy, so that its failure's reason is Replaced.
	AnnotationReplaces   = "orca.sirocco.cloud/replaces"
	AnnotationReplacedBy = "orca.sirocco.cloud/replaced-by"
	// AnnotationTraceParent and AnnotationTraceState are the W3C trace context of
	// the span that created the Pod: the span of its end is its child.
	AnnotationTraceParent = "orca.sirocco.cloud/traceparent"
	AnnotationTraceState  = "orca.sirocco.cloud/tracestate"
	// AnnotationRunTraceParent and AnnotationRunTraceState are the W3C trace
	// context of the run (the ignition's), which the Pod's completion event
	// carries on.
	AnnotationRunTraceParent = "orca.sirocco.cloud/run-traceparent"
	AnnotationRunTraceState  = "orca.sirocco.cloud/run-tracestate"

	// FinalizerCompletion keeps an Orca Pod until its completion event is stored.
	FinalizerCompletion = "orca.sirocco.cloud/completion"

	// EnvInitiator names who started the Pod: an ignition or a Task.
	EnvInitiator = "ORCA_INITIATOR"
	// EnvData is the ignition's data or the initiating Pod's termination message.
	EnvData = "ORCA_DATA"
	// EnvRun is the run id of the chain the Pod belongs to.
	EnvRun = "ORCA_RUN"
	// EnvTraceParent and EnvTraceState are the W3C trace context of the span that
	// created the Pod, under the names OpenTelemetry gives them in a process's
	// environment, so that the Pod's own spans continue the run's trace.
	EnvTraceParent = "TRACEPARENT"
	EnvTraceState  = "TRACESTATE"
)

// EnvInputs is the results of the Tasks a join's condition names, as JSON: the
// Pods of a Task with startWhen get it.
const EnvInputs = "ORCA_INPUTS"
