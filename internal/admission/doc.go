// Package admission decides which starts of a limited Task run: a Task whose
// parallelism caps how many of its Pods run at once, or whose concurrencyPolicy is
// Forbid or Replace. It is pure state and decisions; the dispatcher keeps one
// State per Task object (by uid) in the bus's records and changes it with
// compare-and-set, so that dispatcher replicas and restarts agree.
//
// A State holds the Task's slots, each held by a Pod from its admission until its
// completion event is handled (Release), and the starts that wait for a slot, in
// the order the stream stored their trigger (its sequence). Every change first
// promotes the oldest waiting starts into free slots, then decides:
//
//   - a start that holds a slot already (a redelivered trigger) runs again: its
//     Pod's create is idempotent;
//   - a start that finds a free slot, and no older start waiting, takes it;
//   - otherwise Allow queues it (Wait), Forbid skips it (Forbid), and Replace
//     takes the slots of the oldest holders, whose Pods are to be deleted.
//
// A holder promoted from the queue is Queued until its Pod is created: whoever
// changes the State next creates it from the stored start, so that a crash
// between the promotion and the create loses nothing.
package admission
