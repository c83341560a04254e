// Package watcher reports how Orca's Pods end and keeps each Task's status a view
// of its Pods. It has two controllers:
//
//   - The pod completion controller (pods.go) publishes orca.task.succeeded or
//     orca.task.failed with the termination message as soon as a Pod ends (event
//     id = the Pod's uid, so a republish is deduped). That event starts the next
//     Task, so nothing else is on its path: it writes nothing to the API server.
//   - The task status controller (tasks.go) looks at a Task's Pods at most once per
//     interval (Options.StatusInterval, 250 ms): a change of any of its Pods
//     enqueues the Task that much later (coalesce), so one look and one status
//     write cover every change in that time, and the write never comes between a
//     Pod's end and the create of the Pod it starts. It sets the state (Running
//     while a Pod has not ended) and the active Pods, counts the runs of the ended
//     Pods whose event is stored (runs.go: the history, lastSuccess, lastFailure,
//     failuresCount), and only then removes the completion finalizer that the
//     dispatcher put on each Pod: a Pod cannot vanish unreported or uncounted.
//
// A run is counted once. One status write counts at most as many runs as the
// history keeps (10), with the resourceVersion it read (a write from a stale
// cache meets a conflict and is tried again later), and a run found in the
// history is only let go, never counted again: that covers a watcher that
// stopped between the write and the finalizer patch. The ledger (ledger.go)
// remembers in memory which Pods were published and let go; after a restart the
// ended Pods that keep the finalizer are published again, and the stream's
// duplicate window stores each event once.
//
// A Pod succeeded when its phase is Succeeded and every container exited 0.
// Anything else that ends it is a failure with a reason: a non-zero exit code
// (any value), OOMKilled, eviction, or deletion before completion (which is also
// what a vanished node leads to, once the Pod garbage collector deletes its Pods).
// Native sidecars (init containers with restartPolicy Always) do not count: the
// kubelet stops them when the run is over, and they may exit non-zero on SIGTERM.
//
// The termination message is taken from the first container, in the template's
// order of containers (not the name order of containerStatuses), that wrote one;
// init containers are looked at after them, so a failing init container's message
// is reported when no container ran. The kubelet keeps the last 4096 bytes of the
// file (with FallbackToLogsOnError after a failure: of the log, at most 2048 bytes
// and 80 lines), then cuts each message to its first 12 KiB / (number of the Pod's
// containers) bytes. A message that long is marked MessageTruncated in the event:
// it was probably cut (one that was exactly that long is marked too).
//
// A Pod's run belongs to the Task object that started it (its uid, in the Pod's
// annotation and owner reference). When that Task was deleted, or deleted and
// applied again under the same name, the event is still published, with the old
// TaskUID, but the run is not counted on the namesake: the Pod is only let go.
//
// Policies on runs (retries, history limits, cleanup of ended Pods) belong in the
// task status controller, after a run is counted: Reconcile sorts a Task's Pods
// out (sort), writes the status (write) and lets counted Pods go (release).
package watcher
