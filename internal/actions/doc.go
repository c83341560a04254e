// Package actions is Orca's actions service: it consumes the task events
// (orca.task.succeeded.> and orca.task.failed.>) through the durable consumer
// "orca-actions", looks up the Task of each event and runs the Actions named in its
// successActions or failureActions, in the Task's namespace.
//
// # Plugins
//
// An Action's spec selects exactly one plugin. A plugin is a Go type behind the
// Plugin interface, in a file of its own that registers it from an init function:
//
//	webhook  POSTs the task event as a CloudEvent over HTTP (binary mode), with a
//	         timeout per attempt and retries with exponential backoff
//	nats     republishes the task event to a NATS subject (binary mode)
//	log      writes the task event to the service's log
//
// # Failures
//
// The Actions of one event run concurrently, and each one's outcome is recorded in
// its status (lastRun, lastSuccess, lastError and a Ready condition). An Action that
// is missing, misconfigured (a Secret or key that does not exist, for example) or
// keeps failing leaves a Warning Event on the Task and never keeps the others from
// running nor the stream from moving: the event is acknowledged once every Action
// has run. Only a Task that cannot be read for a transient reason, or a shutdown in
// the middle of the runs, hands the event back for redelivery; an event whose Task
// no longer exists is acknowledged and logged.
//
// # Tenancy
//
// Each namespace gets a share of the service (fair.go): a few of its events run at
// once and the rest wait in the stream, so that a namespace whose webhooks hang
// never holds the places of another's events. Webhooks
// connect only where the egress policy allows (egress.go): the address is checked
// after DNS resolution, loopback, link-local and Orca's own services are refused
// by default, redirects leave no origin, and a failure is stored as a status code
// or fixed words, never as the answer's body. A nats Action publishes only to the
// subjects the service is given (Options.NATSSubjects).
//
// # Once per event
//
// The service records each (Action, event) it ran in a ledger (bus.Ledger, in the
// bucket ORCA_STATE, kept as long as the stream keeps events) and skips an Action
// that already ran for the event's source and id: an event that comes again,
// replayed from the dead letters or by a durable consumer created anew, sends no
// webhook twice (counted in orca_actions_duplicates_total). The record is written
// after the run, so a crash in between runs it again; webhooks carry the event's
// ce-id and ce-source for receivers to deduplicate.
//
// The service needs no leader: its replicas share the durable consumer, and each
// event goes to one of them.
package actions
