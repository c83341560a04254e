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
//
// The termination message is taken from the first container, in the template's
// order of containers, that wrote one; init containers are looked at after them,
// so a failing init container's message is reported when no container ran.
//
// A second controller keeps each Task's state (Pending or Running) and its list of
// active Pods in step with the Pods that exist. When a Pod ends, it leaves both to
// the record of the run, which writes them with the history in one status write,
// and writes them itself only if that record is late (the bus is down, say).
package watcher
