// Package bus carries Orca's CloudEvents on NATS JetStream. It is the only package
// of Orca that imports NATS or CloudEvents: the services publish and consume typed
// events (Ignition, TaskEvent) and never build a subject or a header by hand.
//
// # Events
//
// Subjects, CloudEvent types and data follow Orca's contract:
//
//	orca.ignited.<namespace>.<ignition>        cloud.sirocco.orca.ignited         the ignition's data
//	orca.task.succeeded.<namespace>.<task>     cloud.sirocco.orca.task.succeeded  TaskResult JSON
//	orca.task.failed.<namespace>.<task>        cloud.sirocco.orca.task.failed     TaskResult JSON
//	orca.deadletter.<original subject>         the original type                  the original message
//
// Every event carries the extension attribute orcarun, the run id of the chain it
// belongs to. Orca publishes in binary content mode (ce- headers); it reads binary and
// structured (application/cloudevents+json) mode.
//
// # Guarantees
//
// Publishing waits for the stream's acknowledgement: once Publish returns nil the
// event is stored (on file storage; only stream replicas protect it from the loss
// of a machine). Publish sets Nats-Msg-Id to the event's source and id (MsgID), so
// the stream drops a second publish of the same event within its duplicate window
// (2 minutes by default): a redelivered or retried publish stores one message,
// while another source's event with the same id is stored.
//
// Consuming is at-least-once. A message is acknowledged only after its handler
// returned nil. A handler error that is not Permanent makes the message come back
// after a backoff; a process that dies mid-handler gets it back after the consumer's
// AckWait. Handlers must therefore be idempotent; Orca's are, through deterministic
// names and ids.
//
// Nothing is dropped silently and nothing blocks the stream. A message is moved,
// whole and with an Orca-Deadletter-Reason header, to orca.deadletter.<subject> and
// then terminated when it can never succeed: it is not a CloudEvent, misses a
// required attribute, has an unknown type, carries data that does not decode or is
// larger than the configured limit, its handler returned a Permanent error, or it
// was delivered MaxDeliver times without success. A dead letter has a Nats-Msg-Id
// of its own (derived from the stream and sequence of the original), so a repeated
// dead-lettering of the same message stores one dead letter.
package bus
