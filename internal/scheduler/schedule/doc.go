// Package schedule turns an Ignitor's spec into scheduled times and decides,
// for a given moment, which of the due times fire and which are skipped. It is
// pure: no clock, no API calls; the scheduler's controller feeds it the time.
//
// Times. Every scheduled time is a whole second (a fraction in an RFC 3339 time
// is dropped), so that it maps to one firing id "<ignitor uid>-<unix seconds>".
//   - NOW is the creation time; an RFC 3339 time is that instant (spec.timeZone
//     does not apply: the time carries its offset). A one-shot time fires even
//     when it lies before the creation.
//   - A cron expression (5 fields or a descriptor such as @daily, parsed by
//     robfig/cron's ParseStandard) names wall-clock times in spec.timeZone
//     (default UTC); its times strictly after the creation count.
//   - @every <duration> counts elapsed time from the creation: creation + k x
//     duration, k >= 1, in whole seconds. Daylight saving does not touch it.
//   - spec.schedules adds further schedules; the Ignitor's times are the union,
//     and a time that two schedules share is one time.
//
// Daylight saving. A cron field names a wall-clock time, and each wall-clock
// time fires once:
//   - In a repeated hour (clocks go back: in Europe/Berlin 03:00 CEST becomes
//     02:00 CET on the last Sunday of October), a time fires at its first
//     occurrence only. "30 2 * * *" fires at 02:30 CEST, not again at 02:30 CET;
//     "*/15 * * * *" fires 02:00-02:45 CEST, then 03:00 CET. robfig/cron's own
//     Next returns both occurrences, which is how Kubernetes CronJob runs twice.
//   - In a skipped hour (clocks go forward: 02:00 CET becomes 03:00 CEST on the
//     last Sunday of March), a time that does not exist fires at the first
//     instant after the gap, 03:00 CEST, once, however many of the schedule's
//     times fell in the gap (and once with a 03:00 time of its own).
//     robfig/cron's Next skips such a time to the next day.
//
// The scheduler computes these wall-clock times itself on top of robfig/cron's
// field matching (evaluated in UTC, where no hour is missing or repeated), then
// maps each to an instant in the zone with Go's zone rules.
//
// Catch-up. Plan looks at the times after a mark (the last fired or skipped
// time) up to now. Times that came due before now are missed unless they are
// the latest and within OnTime of now:
//   - None fires only an on-time latest time; Latest fires the latest due time;
//     All fires the most recent MaxCatchUpRuns due times, oldest first.
//   - With a starting deadline, a time more than the deadline before now never
//     fires.
//   - Every due time that does not fire is skipped, counted (up to MaxCount) and
//     reported; the mark moves past it, so it never fires later.
package schedule
