// Package scheduler fires Ignitors on time. It is a controller-runtime controller
// on Ignitors that runs only in the elected leader: for each Ignitor it asks
// package schedule which scheduled times are due at its clock's now, publishes
// orca.ignited.<ns>.<name> on the bus for each time that fires, records the
// firings and skips in the Ignitor's status and requeues itself for the next
// time. No in-process timer or cron runner holds state. Package schedule says
// what the times are (NOW, RFC 3339 times, cron expressions in spec.timeZone
// with their daylight-saving rules, @every, several schedules) and how missed
// times are caught up.
//
// Exactly once: a scheduled time at or before the mark, the later of
// status.lastFired and status.lastSkip.last, never fires again, whatever
// restarts, failovers or edits happen. A firing publishes first and records
// second; the event id is "<ignitor uid>-<scheduled unix seconds>" and the
// stream drops a republished id within its duplicate window, so a crash between
// the publish and the status write republishes the same event and stores it
// once. Before publishing, the Ignitor is read again from the API server (not
// the cache), so a stale cache cannot make a time fire twice. The stream's
// duplicate window (2 minutes by default) bounds this: a status write that keeps
// failing for longer could store a time twice. When several times fire at once
// (catchUp All), they are published oldest first and recorded in one status
// write; a publish that fails ends the batch, and what was published before it
// is recorded.
//
// Missed times (the scheduler was down, a reconcile came late, or the Ignitor
// was suspended) follow spec.catchUp: None fires only a latest time that is at
// most schedule.OnTime late, Latest (the default) fires the latest, All fires up
// to maxCatchUpRuns of the latest. spec.startingDeadlineSeconds skips any time
// handled later than that after it. Every skipped time is counted in
// status.lastSkip and announced by a Warning Event: Skipped (the catch-up rule)
// or MissedDeadline (the deadline); skipped times never fire later.
//
// Suspend: while spec.suspend is true nothing fires, status.nextFire is empty
// and the condition Suspended is True (Event Suspended). Setting it back to false
// (Event Resumed) fires the times missed meanwhile by the catch-up rule.
//
// Edits: a change of the schedules or spec.timeZone is picked up at once; a new
// one-shot time later than the mark fires at that time, and a new cron
// expression fires its times after the mark.
//
// An unusable value (a cron expression robfig/cron rejects, or an unknown time
// zone) sets the condition ScheduleValid=False with reason InvalidSchedule and a
// Warning Event; it is not retried until the spec changes.
package scheduler
