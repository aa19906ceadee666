import { decide, firstSlot, jitterFor, lastSlotAtOrBefore, parseScheduleBody, slotAfter, slotKey, type ScheduleRecord } from './schedule.js';

const H = 3_600_000;
const at = (iso: string) => Date.parse(iso);

function rec(over: Partial<ScheduleRecord>): ScheduleRecord {
  return {
    tenantId: 'acme', name: 's', command: 'Job', payload: '{}', priority: 0, maxAttempts: 0, webhook: null,
    cron: null, everySeconds: 60, timezone: 'UTC', overlap: 'allow', jitterSeconds: 0, missed: 'fire_once', paused: false,
    nextRunAtMs: 0, lastRunAtMs: null, lastTaskId: null, pendingSlotMs: null, lastError: null, createdAtMs: 0, updatedAtMs: 0,
    ...over,
  };
}

describe('schedule slots', () => {
  it('cron slots follow the time zone across daylight saving time', () => {
    const s = { cron: '30 2 * * *', everySeconds: null, timezone: 'Europe/Paris' };
        expect(new Date(slotAfter(s, at('2026-03-27T12:00:00Z'), 0)).toISOString()).toBe('2026-03-28T01:30:00.000Z'); // CET, UTC+1
    expect(new Date(slotAfter(s, at('2026-04-01T12:00:00Z'), 0)).toISOString()).toBe('2026-04-02T00:30:00.000Z'); // CEST, UTC+2
    // The day without 02:30 fires at 03:30 CEST; the day with two 02:30s fires once, at the first.
    expect(new Date(slotAfter(s, at('2026-03-28T12:00:00Z'), 0)).toISOString()).toBe('2026-03-29T01:30:00.000Z');
    expect(new Date(slotAfter(s, at('2026-10-24T12:00:00Z'), 0)).toISOString()).toBe('2026-10-25T00:30:00.000Z');
    expect(new Date(slotAfter(s, at('2026-10-25T00:30:00Z'), 0)).toISOString()).toBe('2026-10-26T01:30:00.000Z');
    const ny = { cron: '0 9 * * 1-5', everySeconds: null, timezone: 'America/New_York' };
    expect(new Date(firstSlot(ny, at('2026-01-02T15:00:00Z'))).toISOString()).toBe('2026-01-05T14:00:00.000Z'); // Friday 10:00 → Monday 09:00 EST
  });

  it('interval slots keep their phase', () => {
    const s = { cron: null, everySeconds: 60, timezone: 'UTC' };
    expect(slotAfter(s, 1000, 1000)).toBe(61_000);
    expect(slotAfter(s, 200_500, 1000)).toBe(241_000);
    expect(lastSlotAtOrBefore(s, 200_500, 1000)).toBe(181_000);
    expect(lastSlotAtOrBefore({ cron: '0 * * * *', everySeconds: null, timezone: 'UTC' }, at('2026-01-01T10:00:00Z'), 0)).toBe(at('2026-01-01T10:00:00Z'));
  });

  it('decides: wait, on time, missed collapsed (fire_once / skip), missed followed by on-time slots', () => {
    const base = at('2026-01-01T10:00:00Z');
    const hourly = rec({ cron: '0 * * * *', everySeconds: null, nextRunAtMs: base });
    expect(decide(hourly, base - 1)).toEqual({ kind: 'wait' });
    expect(decide(hourly, base + 20_000)).toEqual({ kind: 'fire', slotMs: base, nextRunAtMs: base + H, missed: false });
    expect(decide(hourly, base + 3 * H + 600_000)).toEqual({ kind: 'fire', slotMs: base + 3 * H, nextRunAtMs: base + 4 * H, missed: true });
    expect(decide({ ...hourly, missed: 'skip' }, base + 3 * H + 600_000)).toEqual({ kind: 'skip-missed', nextRunAtMs: base + 4 * H });
    const tenSeconds = rec({ everySeconds: 10, nextRunAtMs: base });
    expect(decide(tenSeconds, base + 100_000)).toEqual({ kind: 'skip-missed', nextRunAtMs: base + 70_000 });
  });

  it('slot keys and jitter are deterministic; jitter stays within bounds', () => {
    expect(slotKey('nightly', at('2026-01-01T09:00:00Z'))).toBe('schedule:nightly:2026-01-01T09:00:00.000Z');
    expect(jitterFor('acme', 's', 1, 0)).toBe(0);
    const j = Array.from({ length: 200 }, (_, i) => jitterFor('acme', 's', i * 1000, 30));
    expect(Math.min(...j)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...j)).toBeLessThanOrEqual(30);
    expect(new Set(j).size).toBeGreaterThan(10);
    expect(jitterFor('acme', 's', 5000, 30)).toBe(jitterFor('acme', 's', 5000, 30));
  });

  it('parses a definition with defaults', () => {
    expect(parseScheduleBody({ name: 'a.b:c-d_1', command: 'Job', payload: { x: 1 }, everySeconds: 5 }, 0)).toEqual({
      name: 'a.b:c-d_1', command: 'Job', payload: '{"x":1}', priority: 0, maxAttempts: 0, webhook: null, cron: null, everySeconds: 5,
      timezone: 'UTC', overlap: 'allow', jitterSeconds: 0, missed: 'fire_once', paused: false,
    });
  });
});
