// Package watcher reports how Orca's Pods end. For every Pod that Orca started it
// waits until the Pod ends, publishes orca.task.succeeded or orca.task.failed with
// the termination message (event id = the Pod's uid, so a republish is deduped),
// records the run in the Task's status, and only then removes the completion
// finalizer that the dispatcher put on the Pod: a Pod cannot vanish unreported.
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
// TaskUID, but the run is not recorded on the namesake.
//
// A second controller keeps each Task's state (Pending or Running) and its list of
// active Pods in step with the Pods that exist. When a Pod ends, it leaves both to
// the record of the run, which writes them with the history in one status write,
// and writes them itself only if that record is late (the bus is down, say).
package watcher
