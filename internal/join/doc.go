// Package join decides, run by run, whether a Task with a startWhen condition
// starts, is skipped, or waits.
//
// A condition is a CEL expression over the results of other Tasks in the same run
// (Compile). Each Task it names is a variable: an identifier (load_data for the
// Task load-data) or tasks["any.name"], with the fields succeeded, failed,
// skipped, done, message, exitCode and reason. The shorthands allSucceeded,
// anySucceeded and allDone are expanded to such expressions.
//
// Evaluation is three-valued (Program.Eval): a Task that has not reported in the
// run is unknown, and CEL's partial evaluation decides what it can without it,
// so "a.succeeded || b.succeeded" is true on a's success alone and
// "a.succeeded && b.succeeded" false on a's failure alone. True starts the Task,
// false skips it; an expression whose unknowns could still change it waits.
//
// What a run has seen is a State, kept in a Store with compare-and-swap under a
// key per (Task uid, run): Engine.Observe adds a result (the first result of each
// Task in the run counts), decides, and records the Decision in the same swap.
// The caller then acts (creates the Pod under a name fixed per run and Task, or
// publishes the skip) and records that with Engine.Done. A crash before Done
// makes the caller act again on the redelivered event, which finds the same
// Decision; once Done, no later result, redelivery or timer acts again.
// Engine.Expire applies the timeout policy to a run still undecided at its
// timeout, counted from its first result.
package join
