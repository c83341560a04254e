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
//	orca.task.retrying.<namespace>.<task>      cloud.sirocco.orca.task.retrying   TaskRetry JSON
//	orca.task.halted.<namespace>.<task>        cloud.sirocco.orca.task.halted     TaskHalt JSON
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
// returned nil; a process that dies mid-handler gets it back after the consumer's
// AckWait. Handlers must therefore be idempotent; Orca's are, through deterministic
// names and ids and the actions service's Ledger. Each of a Consumer's Concurrency
// workers pulls one message, handles it and pulls the next: no message waits in
// the process for a free handler while its AckWait runs, and a running handler
// keeps its message with progress acks. The server keeps at most MaxWaiting pull
// requests waiting for a durable consumer (512) and drops the others without a
// word, so a process keeps at most a quarter of them waiting: the replicas of a
// service share the messages, up to four of them with all their free workers
// pulling.
//
// A handler error that is not Permanent is retried: the message comes back after
// a backoff (RetryMin doubling up to RetryMax) until RetryFor (a day by default)
// has passed since the message was stored. RetryFor is cut to what the stream's
// MaxAge leaves (MaxAge minus RetryMax and AckWait), so that a failing message is
// dead-lettered before the stream drops it. Deliveries are not counted against a
// limit: a process killed mid-handler does not bring a message closer to the dead
// letters.
//
// A handler that returns Later(d) is not failing: the message is not due yet. It
// comes back after d (a delayed nak, so the wait is kept by the server across
// restarts of the service) and RetryFor does not apply. Durable timers are built
// on it: a retry's backoff, a join's timeout.
//
// Nothing is dropped silently and nothing blocks the stream. A message is moved,
// whole and with an Orca-Deadletter-Reason header, to orca.deadletter.<subject>
// and then terminated when it can never be used: it is not a CloudEvent 1.0, misses
// a required attribute or has one that a NATS header cannot carry unchanged (not
// UTF-8, a control character, surrounding white space), has an unknown type, carries data that does not decode or is
// larger than the configured limit, its handler returned a Permanent error or
// panicked (a bug: no retry fixes it), or its handler still failed after RetryFor.
// A dead letter has a Nats-Msg-Id of its own (derived from the stream and sequence
// of the original), so a repeated dead-lettering of the same message stores one
// dead letter. DeadLetters lists them; Replay publishes one again on its original
// subject with Nats-Msg-Id set to its event id (or "<id>-replay" while the
// dead-lettered original is within the duplicate window), so that replays are
// deduplicated like any event.
//
// # Consumers that heal
//
// A Consumer's supervisor checks its durable consumer and the stream every
// CheckInterval (2s) and whenever a pull fails. Ready reports the outcome: not
// ready while the stream or the consumer is missing, or NATS is out of reach. A
// deleted durable consumer is created again at once. It starts where the deleted
// one stood: the supervisor saves the consumer's ack floor (everything up to that
// stream sequence was handled) in the key-value bucket StateBucket ("ORCA_STATE")
// at each check, with the creation time of the stream it numbers. A consumer that
// never existed, or whose saved position belongs to another stream (deleted and
// created again: its sequences start over), starts at the stream's first message;
// the handlers' idempotency makes that replay harmless. A message below the
// sequence a consumer was created to start at is acknowledged without being
// handled: nats-server may hand a durable created again under the same name some
// of its predecessor's messages. A missing stream is not
// created again by a running Consumer, as that would make a restore of the stream
// fail: EnsureStream, at a service's start, creates it.
//
// # Stream limits
//
// EnsureStream creates the stream with MaxAge (7 days), MaxBytes (1 GiB) and
// MaxMsgs (1,000,000) and the discard policy "new": at a limit the stream refuses
// a publish, whose publisher gets an error and retries, instead of dropping the
// oldest messages, which may not be handled yet. Nothing that was stored is lost;
// the workflows stall until old messages age out or the limits are raised. The
// supervisors export the stream's usage (orca_bus_stream_usage_ratio, _messages,
// _bytes) and log a warning at StreamUsageWarn and an error at StreamUsageFull.
// The state bucket has the stream's MaxAge as TTL and its MaxBytes as limit.
// Besides positions and ledgers it holds Counters, integers changed with
// compare-and-set, with which the dispatcher counts the Pods of each run.
//
// # Tracing
//
// Events carry the CloudEvents distributed-tracing extension (traceparent,
// tracestate): the W3C trace context of their run, set on the ignition (by its
// publisher, else the context of the publish's span) and carried unchanged by
// every event of the run (Ignition.TraceParent, TaskEvent.TraceParent,
// RetryEvent.TraceParent, HaltEvent.TraceParent, Delivery.TraceParent). Each
// publish also sets the W3C headers traceparent and tracestate of the NATS
// message to its own span's context, and the span of a delivery's handling (the
// handler's ctx) is a child of it, or of the extension when a publisher set no
// header. The spans come from the global OpenTelemetry tracer provider (package
// telemetry); without one they are no-ops, and a trace context that arrives is
// passed on all the same.
package bus
