import { backoffSeconds, nackDelaySeconds } from './backoff.js';
import { goJson } from './go-json.js';
import { resolveTenant } from './tenant.js';
import { formatTime, formatLeaseUntil, parseRfc3339 } from './time.js';
import { parseCreate, parseClaim } from './requests.js';
import { authorisedCommands } from './claims.js';
import { newTaskId } from './ids.js';

describe('newTaskId', () => {
  const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  it('makes UUID-v4-shaped ids that sort by creation time and do not repeat', () => {
    const ids = Array.from({ length: 5000 }, (_, i) => newTaskId(1_700_000_000_000 + Math.floor(i / 100)));
    for (const id of ids) expect(id).toMatch(V4);
    expect(new Set(ids).size).toBe(ids.length);
    const firsts = ids.filter((_, i) => i % 100 === 0);
    expect([...firsts].sort()).toEqual(firsts);
    expect(newTaskId(1_700_000_000_001) > newTaskId(1_700_000_000_000)).toBe(true);
    const before = Date.now();
    const ms = parseInt(newTaskId().replace(/-/g, '').slice(0, 12), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(Date.now());
  });
});

describe('backoff', () => {
  const cfg = { baseSeconds: 5, maxSeconds: 900 };
  it('computes each policy', () => {
    expect(backoffSeconds({ ...cfg, policy: 'fixed' }, 3)).toBe(5);
    expect(backoffSeconds({ ...cfg, policy: 'linear' }, 3)).toBe(15);
    expect(backoffSeconds({ ...cfg, policy: 'exponential' }, 3)).toBe(40);
    expect(backoffSeconds({ ...cfg, policy: 'exponential' }, 30)).toBe(900);
    expect(backoffSeconds({ ...cfg, policy: 'exp_full_jitter' }, 3, () => 0.999)).toBe(40);
    expect(backoffSeconds({ ...cfg, policy: 'exp_full_jitter' }, 3, () => 0)).toBe(0);
    expect(backoffSeconds({ ...cfg, policy: 'exp_equal_jitter' }, 3, () => 0)).toBe(20);
  });
  it('caps explicit nack delays', () => {
    expect(nackDelaySeconds({ ...cfg, policy: 'fixed' }, 10_000, 1)).toBe(900);
    expect(nackDelaySeconds({ ...cfg, policy: 'fixed' }, 0, 1)).toBe(5);
  });
});

describe('goJson', () => {
  it('sorts keys and escapes like Go', () => {
    expect(goJson({ b: 1, a: '<x>&' })).toBe('{"a":"\\u003cx\\u003e\\u0026","b":1}');
    expect(goJson({ z: { y: 1, x: [3, { b: 1, a: 2 }] } })).toBe('{"z":{"x":[3,{"a":2,"b":1}],"y":1}}');
    expect(goJson(1e21)).toBe('1e+21');
    expect(goJson('\u2028')).toBe('"\\u2028"');
  });
});

describe('resolveTenant', () => {
  it.each([
    [{ tid: ' payments ' }, 'x', 'payments'],
    [{ tenantId: 'acme', tid: 'acme' }, '', 'acme'],
    [{}, 'svc-a', 'svc-a'],
  ])('%j / %s → %s', (raw, sub, want) => {
    expect(resolveTenant(raw, sub)).toEqual({ ok: true, tenantId: want });
  });
  it.each([
    [{ tid: 'aa', tenantId: 'bb' }, '', 'conflict'],
    [{ tid: '' }, 'fallback', 'malformed'],
    [{ tid: 5 }, '', 'malformed'],
    [{ tid: '../payments' }, '', 'malformed'],
    [{}, '', 'missing'],
    [{}, 'user@example.com', 'malformed'],
  ])('%j / %s → %s', (raw, sub, reason) => {
    expect(resolveTenant(raw as Record<string, unknown>, sub)).toEqual({ ok: false, reason });
  });
});

describe('time', () => {
  it('formats like upstream', () => {
    expect(formatTime(Date.UTC(2026, 4, 20, 13, 4, 5, 120))).toBe('2026-05-20T13:04:05.12Z');
    expect(formatTime(Date.UTC(2026, 4, 20, 13, 4, 5, 0))).toBe('2026-05-20T13:04:05Z');
    expect(formatLeaseUntil(Date.UTC(2026, 4, 20, 13, 4, 5, 999))).toBe('2026-05-20T13:04:05Z');
  });
  it('formats leaseUntil per second through its one-entry cache (same second, next second, back, far)', () => {
    const base = Date.UTC(2026, 4, 20, 13, 4, 5, 0);
    const cases: [number, string][] = [
      [base + 1, '2026-05-20T13:04:05Z'],
      [base + 998, '2026-05-20T13:04:05Z'],
      [base + 1000, '2026-05-20T13:04:06Z'],
      [base + 999, '2026-05-20T13:04:05Z'],
      [base + 86_400_000 + 1500, '2026-05-21T13:04:06Z'],
      [0, '1970-01-01T00:00:00Z'],
    ];
    for (const [ms, text] of cases) expect(formatLeaseUntil(ms)).toBe(text);
  });
  it('parses RFC 3339 strictly', () => {
    expect(parseRfc3339('2026-05-20T13:04:05.123456789+02:00')).toBe(Date.UTC(2026, 4, 20, 11, 4, 5, 123));
    expect(parseRfc3339('2026-05-20 13:04:05Z')).toBeNull();
    expect(parseRfc3339('2026-05-20T13:04:05')).toBeNull();
  });
  it('refuses dates that do not exist, as Go does (no rollover into the next month)', () => {
    for (const bad of ['2026-02-29T00:00:00Z', '2100-02-29T00:00:00Z', '2026-04-31T00:00:00Z', '2026-02-30T00:00:00Z', '2026-01-01T23:59:60Z']) expect(parseRfc3339(bad)).toBeNull();
    expect(parseRfc3339('2024-02-29T00:00:00Z')).toBe(Date.UTC(2024, 1, 29));
    expect(parseRfc3339('2000-02-29T12:00:00Z')).toBe(Date.UTC(2000, 1, 29, 12));
    expect(parseRfc3339('2026-12-31T23:59:59.5-03:00')).toBe(Date.UTC(2027, 0, 1, 2, 59, 59, 500));
  });
});

describe('requests', () => {
  it('clamps priority and defaults', () => {
    const c = parseCreate({ command: 'x', payload: 1, priority: 99 }, 0);
    expect(c).toMatchObject({ priority: 9, maxAttempts: 0, visibleAtMs: null, payload: '1' });
  });
  it('caps claim waits', () => {
    expect(parseClaim({ waitSeconds: 99 }, 300, false)).toMatchObject({ waitSeconds: 30, leaseSeconds: 300, count: 1 });
  });
  it('authorises commands against event types', () => {
    expect(authorisedCommands(['*'], [])).toEqual(['GENERATE_MASTER', 'GENERATE_CREATIVE']);
    expect(authorisedCommands(['a', 'b'], [])).toEqual(['a', 'b']);
    expect(authorisedCommands(['a'], ['b'])).toBeNull();
  });
});
