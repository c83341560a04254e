// Package scheduler fires Ignitors on time. It is a controller-runtime controller
// on Ignitors that runs only in the elected leader: for each Ignitor it computes
// the scheduled times from spec.scheduled, publishes orca.ignited.<ns>.<name> on
// the bus when one is due, records the firing in the Ignitor's status and requeues
// itself for the next time. No in-process timer or cron runner holds state.
//
// Schedules:
//   - NOW fires once, for the Ignitor's creation time.
//   - An RFC 3339 time fires once, at that time; a time already past that never
//     fired fires at once.
//   - A cron expression (5 fields, or a descriptor such as @hourly or @every 10m,
//     parsed by robfig/cron's ParseStandard) in spec.timeZone (default UTC) fires at
//     every scheduled time strictly after the creation time. @every counts from the
//     last firing, else from the creation time. spec.timeZone applies only to
//     cron expressions: an RFC 3339 time carries its own offset.
//
// Exactly once: status.lastFired is the only record of what fired. A scheduled time
// at or before lastFired never fires again, whatever restarts, failovers or edits
// happen. A firing publishes first and records second; the event id is
// "<ignitor uid>-<scheduled unix seconds>" and the stream drops a republished id
// within its duplicate window, so a crash between the publish and the status write
// republishes the same event and stores it once. Before publishing, the Ignitor is
// read again from the API server (not the cache), so a stale cache cannot make a
// time fire twice. The stream's duplicate window (2 minutes by default) bounds
// this: a status write that keeps failing for longer could store a time twice.
//
// Missed times: after downtime (or when a reconcile comes late), a cron Ignitor
// fires only the most recent missed time, once, and a Normal Event "Skipped" says
// how many earlier times were skipped; the skipped times are never fired later.
// A one-shot time that was missed fires at once.
//
// Edits: a change of spec.scheduled or spec.timeZone is picked up at once; a new
// one-shot time later than lastFired fires at that time, and a new cron expression
// fires its times after lastFired.
//
// An unusable value (a cron expression robfig/cron rejects, or an unknown time
// zone) sets the condition ScheduleValid=False with reason InvalidSchedule and a
// Warning Event; it is not retried until the spec changes.
package scheduler
