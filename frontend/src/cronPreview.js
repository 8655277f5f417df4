// The next runs of a Cron CD schedule in its IANA time zone, for the Workflow settings panel.
// Pure: croner's Cron class is passed in (it loads as a chunk on first use). The server
// (integrations/local_engine/cron.py next_runs) stays the authority; this is the live preview.

/** IANA names the browser knows, for the time zone field's suggestions ('UTC' first). */
export function timeZoneNames() {
  const names = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return ['UTC', ...names.filter((n) => n !== 'UTC')];
}

/** `date` as "YYYY-MM-DD HH:mm <zone abbreviation>" on the wall clock of `timeZone`. */
export function formatInZone(date, timeZone) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'short',
    })
      .formatToParts(date)
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute} ${parts.timeZoneName}`;
}

/**
 * The next `count` runs of `schedule` (5-field cron) in `timeZone` after `from`:
 * {runs: ['2026-03-29 09:00 GMT+2', ...]} or {error: 'why not'}.
 */
export function nextRunsIn(Cron, schedule, timeZone, from = new Date(), count = 3) {
  const zone = timeZone || 'UTC';
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
  } catch {
    return { error: `"${zone}" is not a time zone this browser knows (e.g. UTC, Europe/Paris).` };
  }
  try {
    const runs = new Cron(schedule, { timezone: zone }).nextRuns(count, from);
    if (!runs.length) return { error: 'This schedule never fires.' };
    return { runs: runs.map((d) => formatInZone(d, zone)) };
  } catch (err) {
    return { error: String(err?.message || err) };
  }
}
