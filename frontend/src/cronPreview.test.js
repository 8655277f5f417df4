import { describe, expect, it } from 'vitest';
import { Cron } from 'croner';
import { formatInZone, nextRunsIn, timeZoneNames } from './cronPreview.js';

describe('nextRunsIn', () => {
  it('gives wall-clock times in the zone, across a DST change', () => {
    // Europe/Paris moves to summer time on 2026-03-29: 09:00 stays 09:00 on the wall clock.
    const out = nextRunsIn(Cron, '0 9 * * *', 'Europe/Paris', new Date('2026-03-27T00:00:00Z'));
    expect(out).toEqual({ runs: ['2026-03-27 09:00 GMT+1', '2026-03-28 09:00 GMT+1', '2026-03-29 09:00 GMT+2'] });
  });

  it('defaults to UTC', () => {
    const out = nextRunsIn(Cron, '*/15 * * * *', '', new Date('2026-01-01T10:07:00Z'));
    expect(out).toEqual({ runs: ['2026-01-01 10:15 UTC', '2026-01-01 10:30 UTC', '2026-01-01 10:45 UTC'] });
  });

  it('says so for an unknown zone or a bad schedule', () => {
    expect(nextRunsIn(Cron, '0 9 * * *', 'Mars/Olympus').error).toMatch(/"Mars\/Olympus" is not a time zone/);
    expect(nextRunsIn(Cron, '0 25 * * *', 'UTC').error).toBeTruthy();
  });
});

it('formats in the zone, and lists UTC first among the IANA names', () => {
  expect(formatInZone(new Date('2026-07-01T12:00:00Z'), 'America/New_York')).toBe('2026-07-01 08:00 EDT');
  const names = timeZoneNames();
  expect(names[0]).toBe('UTC');
  expect(names).toContain('Europe/Paris');
});
