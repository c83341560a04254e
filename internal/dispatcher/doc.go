// Package dispatcher starts Tasks: it consumes ignitions and task events from the
// bus, finds the Tasks each event triggers through cache indexes, and creates
// each Task's Pod from its template, then acknowledges the event.
//
// A Pod's name is derived from the Task and the event's identity, its CloudEvent
// source and id, so a redelivered event meets AlreadyExists and starts nothing
// twice (it is logged and counted in orca_dispatcher_duplicates_total), while two
// publishers that use the same ids start the Task once each. A task event whose
// TaskUID is not the uid of the Task of that name (deleted, or deleted and applied
// again) starts nothing: the chain belonged to the deleted Task.
//
// The Pod carries ORCA_INITIATOR, ORCA_DATA and ORCA_RUN in every container (init
// containers too), the task and run labels, an ownerReference to the Task, the
// event and Task uid annotations, and the completion finalizer that the watcher
// removes once the Pod's completion event is stored.
//
// A Pod that the API server rejects as invalid is reported on the Task (a Warning
// Event and the Dispatching condition) and not retried. Any other refusal (quota,
// throttling, a 5xx, a failing admission webhook, a terminating namespace) is
// retried with the bus's capped backoff for as long as the consumer's RetryFor
// (a day by default) allows; meanwhile the Task shows Dispatching=False with the
// API server's reason and message and a Warning Event, both cleared with the next
// Pod created.
package dispatcher
