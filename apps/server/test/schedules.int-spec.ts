/**
 * Schedules over real HTTP (issue 17 item 4; ADR 0008): CRUD, validation, tenant isolation,
 * firing with an injected clock (the test moves time, then runs the loop's tick), overlap skip,
 * missed slots across a restart (fire_once and skip), a slot claimed by a replica that died before
 * creating its task, and exactly once per slot with two PostgreSQL replicas ticking at once.
 * Runs on SQLite, and on PostgreSQL in the PostgreSQL pass (the replica part needs PostgreSQL).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { client, startServer, T, type RunningServer } from './harness.js';
import { PG_URL, dropDatabase, ensureDatabase } from './pg.js';
import { SchedulesService } from '../src/modules/schedules/schedules.service.js';
import { SCHEDULE_STORE } from '../src/common/tokens.js';
import { jitterFor, type ScheduleStore } from '../src/domain/schedule.js';

const LONG = 120_000;

/**
 * A clock the test moves by hand. It starts at a whole hour (UTC) ahead of the real time: the
 * engines promote delayed tasks on real timers, so a delay taken on this clock must not be in the
 * real past already.
 */
class TestClock {
  t = Math.ceil(Date.now() / 3_600_000) * 3_600_000 + 3_600_000;
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

let clock: TestClock;
let s: RunningServer;
let c: ReturnType<typeof client>;

const admin = (method: string, path: string, body?: unknown, token: string = T.producer) =>
  c.call(method, `/v1/codeq/admin/schedules${path}`, body === undefined ? { token } : { token, body });
const tick = (srv: RunningServer = s) => srv.app.app.get(SchedulesService).tick();
async function tasksOf(command: string, srv: RunningServer = s, token: string = T.producer): Promise<Array<Record<string, unknown>>> {
  const r = await client(srv.url).call('GET', `/v1/codeq/tasks?command=${command}&limit=500`, { token });
  expect(r.status).toBe(200);
  return r.body.tasks as Array<Record<string, unknown>>;
}
async function metric(name: string, srv: RunningServer = s): Promise<number> {
  const text = (await client(srv.url).call('GET', '/metrics')).text;
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

describe('schedules', () => {
  beforeEach(async () => {
    clock = new TestClock();
    s = await startServer({}, { clock });
    c = client(s.url);
  });
  afterEach(async () => {
    await s?.stop();
  });

  it('create (201), idempotent re-upsert (200, same next slot), list, get, delete', async () => {
    const body = { name: 'nightly', command: 'Report', payload: { kind: 'daily' }, cron: '0 9 * * *', timezone: 'America/New_York', overlap: 'skip', missed: 'skip' };
    const r = await admin('POST', '', body);
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ name: 'nightly', command: 'Report', payload: { kind: 'daily' }, cron: '0 9 * * *', everySeconds: null, timezone: 'America/New_York', overlap: 'skip', missed: 'skip', paused: false, jitterSeconds: 0, lastRunAt: null, lastTaskId: null });
    // 09:00 in New York is 13:00 or 14:00 UTC depending on daylight saving time.
    const next = Date.parse(r.body.nextRunAt as string);
    expect(next).toBeGreaterThan(clock.now());
    expect(next - clock.now()).toBeLessThanOrEqual(86_400_000);
    expect(new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', hour: 'numeric', minute: 'numeric', hour12: false }).format(next)).toBe('09:00');

    clock.advance(60_000);
    const again = await admin('POST', '', { ...body, payload: { kind: 'changed' } });
    expect(again.status).toBe(200);
    expect(again.body.nextRunAt).toBe(r.body.nextRunAt);
    expect(again.body.payload).toEqual({ kind: 'changed' });
    expect(again.body.createdAt).toBe(r.body.createdAt);

    await admin('POST', '', { name: 'every-minute', command: 'Ping', payload: {}, everySeconds: 60 });
    const list = await admin('GET', '');
    expect(list.status).toBe(200);
    expect(list.body.schedules.map((x: { name: string }) => x.name)).toEqual(['every-minute', 'nightly']);
    expect((await admin('GET', '/nightly')).body.payload).toEqual({ kind: 'changed' });

    const d = await admin('DELETE', '/nightly');
    expect(d.status).toBe(200);
    expect(d.body).toEqual({ name: 'nightly', deleted: true });
    expect((await admin('GET', '/nightly')).status).toBe(404);
    expect((await admin('DELETE', '/nightly')).status).toBe(404);
    expect((await admin('GET', '')).body.schedules).toHaveLength(1);
  }, LONG);

  it('refuses bad definitions with a clear 400 and stores nothing', async () => {
    const ok = { name: 'x', command: 'Job', payload: {}, everySeconds: 10 };
    const cases: Array<[Record<string, unknown> | string, RegExp]> = [
      [{ ...ok, cron: '* * * * *' }, /either 'cron' or 'everySeconds', not both/],
      [{ name: 'x', command: 'Job', payload: {} }, /one of 'cron' or 'everySeconds' is required/],
      [{ ...ok, everySeconds: 0 }, /invalid 'everySeconds'/],
      [{ ...ok, everySeconds: 0.5 }, /invalid 'everySeconds' \(must be an integer\)/],
      [{ name: 'x', command: 'Job', payload: {}, cron: '61 * * * *' }, /invalid 'cron'/],
      [{ name: 'x', command: 'Job', payload: {}, cron: 'every day' }, /invalid 'cron'/],
      [{ name: 'x', command: 'Job', payload: {}, cron: '0 0 31 2 *' }, /invalid 'cron'/],
      [{ ...ok, timezone: 'Mars/Olympus_Mons' }, /unknown IANA time zone/],
      [{ ...ok, overlap: 'queue' }, /invalid 'overlap'/],
      [{ ...ok, missed: 'all' }, /invalid 'missed'/],
      [{ ...ok, jitterSeconds: -1 }, /invalid 'jitterSeconds'/],
      [{ ...ok, priority: 12 }, /invalid 'priority'/],
      [{ ...ok, name: '' }, /invalid 'name'/],
      [{ ...ok, name: 'has space' }, /invalid 'name'/],
      [{ ...ok, name: 'n'.repeat(129) }, /invalid 'name'/],
      [{ ...ok, command: '' }, /'command' is required/],
      [{ ...ok, payload: undefined }, /'payload' is required/],
      [{ ...ok, webhook: 'ftp://x' }, /invalid webhook url/],
      [{ ...ok, paused: 'yes' }, /invalid 'paused'/],
      [{ ...ok, color: 'red' }, /unknown field "color"/],
      ['not an object', /expected one JSON object/],
    ];
    for (const [body, message] of cases) {
      const r = await admin('POST', '', body);
      expect({ body, status: r.status, code: r.body?.code }).toEqual({ body, status: 400, code: 'VALIDATION_FAILED' });
      expect(r.body.error).toMatch(message);
    }
    const raw = await c.call('POST', '/v1/codeq/admin/schedules', { token: T.producer, raw: '{not json' });
    expect(raw.status).toBe(400);
    expect((await admin('GET', '')).body.schedules).toEqual([]);
  }, LONG);

  it('is admin-only and tenant-isolated', async () => {
    const body = { name: 'shared-name', command: 'Job', payload: { tenant: 'acme' }, everySeconds: 60 };
    expect((await admin('POST', '', body, T.user)).status).toBe(403);
    expect((await admin('GET', '', undefined, T.user)).status).toBe(403);
    expect((await admin('GET', '', undefined, T.worker)).status).toBe(401);
    expect((await admin('POST', '', body)).status).toBe(201);
    // globex sees nothing of acme's, cannot read or delete it, and may use the same name.
    expect((await admin('GET', '', undefined, T.globexProducer)).body.schedules).toEqual([]);
    expect((await admin('GET', '/shared-name', undefined, T.globexProducer)).status).toBe(404);
    expect((await admin('DELETE', '/shared-name', undefined, T.globexProducer)).status).toBe(404);
    expect((await admin('POST', '', { ...body, payload: { tenant: 'globex' }, everySeconds: 120 }, T.globexProducer)).status).toBe(201);
    expect((await admin('GET', '/shared-name')).body).toMatchObject({ payload: { tenant: 'acme' }, everySeconds: 60 });

    clock.advance(121_000);
    await tick();
    const acme = await tasksOf('Job');
    const globex = await tasksOf('Job', s, T.globexProducer);
    expect(acme.map((t) => JSON.parse(t['payload'] as string))).toEqual([{ tenant: 'acme' }]);
    expect(globex.map((t) => JSON.parse(t['payload'] as string))).toEqual([{ tenant: 'globex' }]);
  }, LONG);

  it('fires once per slot with the injected clock, through the task rules; a stalled loop skips the missed slots', async () => {
    const def = { name: 'beat', command: 'Beat', payload: { n: 1 }, everySeconds: 10, priority: 7, maxAttempts: 3 };
    const r = await admin('POST', '', def);
    const t0 = clock.now();
    expect(Date.parse(r.body.nextRunAt as string)).toBe(t0 + 10_000);
    await tick();
    expect(await tasksOf('Beat')).toHaveLength(0); // not due yet

    clock.advance(10_000);
    await Promise.all([tick(), tick(), tick()]); // concurrent ticks share one run
    await tick();
    const fired = await tasksOf('Beat');
    expect(fired).toHaveLength(1);
    expect(JSON.parse(fired[0]!['payload'] as string)).toEqual({ n: 1 }); // task JSON carries the payload as JSON text (upstream)
    expect(fired[0]).toMatchObject({ command: 'Beat', priority: 7, maxAttempts: 3, status: 'PENDING' });
    const g = (await admin('GET', '/beat')).body;
    expect(g.lastTaskId).toBe(fired[0]!['id']);
    expect(Date.parse(g.lastRunAt as string)).toBe(t0 + 10_000);
    expect(Date.parse(g.nextRunAt as string)).toBe(t0 + 20_000);

    // Three slots pass within the grace period (30 s): each fires, in order.
    clock.advance(30_000);
    await tick();
    expect(await tasksOf('Beat')).toHaveLength(4);
    expect(Date.parse((await admin('GET', '/beat')).body.nextRunAt as string)).toBe(t0 + 50_000);
    expect(await metric('codeq_schedule_fired_total')).toBe(4);

    // The loop stalls for two minutes: slots more than 30 s late are skipped, the on-time ones fire.
    clock.advance(120_000); // now t0+160 s: slots 50..120 missed, 130..160 on time
    await tick();
    expect(await tasksOf('Beat')).toHaveLength(8);
    expect(await metric('codeq_schedule_skipped_total{reason="missed"}')).toBe(1);
    expect(Date.parse((await admin('GET', '/beat')).body.nextRunAt as string)).toBe(t0 + 170_000);

    // A paused schedule does not fire; resuming starts from now.
    await admin('POST', '', { ...def, paused: true });
    expect((await admin('GET', '/beat')).body.nextRunAt).toBeNull();
    clock.advance(600_000);
    await tick();
    expect(await tasksOf('Beat')).toHaveLength(8);
    const resumed = await admin('POST', '', def);
    expect(Date.parse(resumed.body.nextRunAt as string)).toBe(clock.now() + 10_000);
  }, LONG);

  it('overlap "skip" does not fire while the previous task is unfinished; "allow" does', async () => {
    await admin('POST', '', { name: 'solo', command: 'Solo', payload: {}, everySeconds: 10, overlap: 'skip' });
    await admin('POST', '', { name: 'many', command: 'Many', payload: {}, everySeconds: 10, overlap: 'allow' });
    clock.advance(10_000);
    await tick();
    clock.advance(10_000);
    await tick();
    expect(await tasksOf('Solo')).toHaveLength(1);
    expect(await tasksOf('Many')).toHaveLength(2);
    expect(await metric('codeq_schedule_skipped_total{reason="overlap"}')).toBe(1);

    const claimed = await c.claim({ commands: ['Solo'] });
    expect(claimed.status).toBe(200);
    clock.advance(10_000);
    await tick();
    expect(await tasksOf('Solo')).toHaveLength(1); // still running
    expect((await c.result(claimed.body.id as string, { status: 'COMPLETED', result: {} })).status).toBe(200);
    clock.advance(10_000);
    await tick();
    expect(await tasksOf('Solo')).toHaveLength(2);
  }, LONG);

  it('jitter delays each task by a deterministic 0..N seconds', async () => {
    const slot = clock.now() + 10_000;
    // A name whose jitter for this slot is not 0 (so the task must be delayed).
    const name = ['jit-a', 'jit-b', 'jit-c', 'jit-d', 'jit-e'].find((n) => jitterFor('acme', n, slot, 30) > 0)!;
    const delay = jitterFor('acme', name, slot, 30);
    await admin('POST', '', { name, command: 'Jit', payload: {}, everySeconds: 10, jitterSeconds: 30 });
    clock.advance(10_000);
    await tick();
    const [t] = await tasksOf('Jit');
    expect(t).toMatchObject({ status: 'PENDING', lastKnownLocation: 'DELAYED_ZSET' });
    expect((await c.claim({ commands: ['Jit'] })).status).toBe(204); // not visible yet
    expect(delay).toBeLessThanOrEqual(30);
  }, LONG);

  it('re-creates the task of a slot claimed by a replica that died before creating it (same key: once)', async () => {
    await admin('POST', '', { name: 'crashy', command: 'Crashy', payload: {}, everySeconds: 30 });
    const store = s.app.app.get<ScheduleStore>(SCHEDULE_STORE);
    const rec = (await store.get('acme', 'crashy'))!;
    // What a replica does first when it wins a slot: advance next_run_at and mark the slot pending.
    expect(await store.advance('acme', 'crashy', rec.nextRunAtMs, { nextRunAtMs: rec.nextRunAtMs + 30_000, pendingSlotMs: rec.nextRunAtMs, lastRunAtMs: rec.nextRunAtMs })).toBe(true);
    // A second replica racing for the same slot loses the compare-and-set.
    expect(await store.advance('acme', 'crashy', rec.nextRunAtMs, { nextRunAtMs: rec.nextRunAtMs + 30_000, pendingSlotMs: rec.nextRunAtMs, lastRunAtMs: rec.nextRunAtMs })).toBe(false);
    clock.advance(30_000);
    await tick();
    await tick();
    const tasks = await tasksOf('Crashy');
    expect(tasks).toHaveLength(1);
    expect((await admin('GET', '/crashy')).body.lastTaskId).toBe(tasks[0]!['id']);
  }, LONG);

  it('caps the number of schedules per tenant', async () => {
    const n = 1000;
    for (let i = 0; i < n; i += 50) {
      const rs = await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => admin('POST', '', { name: `s${i + j}`, command: 'Job', payload: {}, everySeconds: 3600 })));
      for (const r of rs) expect(r.status).toBe(201);
    }
    const over = await admin('POST', '', { name: 'one-more', command: 'Job', payload: {}, everySeconds: 3600 });
    expect(over.status).toBe(400);
    expect(over.body.error).toMatch(/too many schedules/);
    expect((await admin('POST', '', { name: 's7', command: 'Job', payload: {}, everySeconds: 60 })).status).toBe(200); // updates still work
    expect((await admin('POST', '', { name: 'other-tenant', command: 'Job', payload: {}, everySeconds: 60 }, T.globexProducer)).status).toBe(201);
  }, LONG);
});

describe('schedules across a restart (missed slots)', () => {
  it('fire_once fires one task for the missed slots; skip fires none; both resume at the next slot', async () => {
    clock = new TestClock();
    const dir = await mkdtemp(join(tmpdir(), 'codeq-sched-'));
    let first: RunningServer | null = await startServer({}, { dir, clock });
    c = client(first.url);
    await admin('POST', '', { name: 'hourly-once', command: 'Once', payload: {}, cron: '30 * * * *', missed: 'fire_once' });
    await admin('POST', '', { name: 'hourly-skip', command: 'Skip', payload: {}, cron: '30 * * * *', missed: 'skip' });
    await first.stop({ keepDir: true });
    first = null;

    clock.advance(3 * 3_600_000 + 45 * 60_000); // down from hh:00 to hh+3:45: slots hh:30 … hh+3:30 missed
    s = await startServer({}, { dir, clock });
    try {
      c = client(s.url);
      await tick();
      await tick();
      const once = await tasksOf('Once');
      expect(once).toHaveLength(1);
      expect(await tasksOf('Skip')).toHaveLength(0);
      const expectedNext = clock.now() + 45 * 60_000; // hh+4:30
      for (const name of ['hourly-once', 'hourly-skip']) expect(Date.parse((await admin('GET', `/${name}`)).body.nextRunAt as string)).toBe(expectedNext);
      expect(Date.parse((await admin('GET', '/hourly-once')).body.lastRunAt as string)).toBe(clock.now() - 15 * 60_000); // the latest missed slot
      expect(await metric('codeq_schedule_skipped_total{reason="missed"}')).toBe(1);

      // Back on time: the next slot fires on both.
      clock.advance(45 * 60_000);
      await tick();
      expect(await tasksOf('Once')).toHaveLength(2);
      expect(await tasksOf('Skip')).toHaveLength(1);
    } finally {
      await s.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, LONG);
});

const maybePg = PG_URL ? describe : describe.skip;
if (!PG_URL) process.stderr.write('schedules.int-spec: two-replica part skipped, CODEQ_TEST_PG_URL is not set (scripts/test.sh sets it for the PostgreSQL pass)\n');

maybePg('schedules on two PostgreSQL replicas', () => {
  it('each slot fires exactly once while both replicas tick at the same time', async () => {
    const db = `codeq_sched_${randomBytes(4).toString('hex')}`;
    const url = await ensureDatabase(db);
    clock = new TestClock();
    const a = await startServer({}, { engine: { postgresUrl: url }, clock });
    const b = await startServer({}, { engine: { postgresUrl: url }, clock });
    try {
      c = client(a.url);
      expect((await admin('POST', '', { name: 'fast', command: 'Fast', payload: {}, everySeconds: 1 })).status).toBe(201);
      // Steps of 7 s: 7 on-time slots per step, past the follower delay, so both replicas compete.
      for (let step = 0; step < 5; step++) {
        clock.advance(7_000);
        await Promise.all([tick(a), tick(b), tick(a), tick(b)]);
      }
      await Promise.all([tick(a), tick(b)]);
      const tasks = await tasksOf('Fast', b);
      expect(tasks).toHaveLength(35);
      expect(new Set(tasks.map((t) => t['id'])).size).toBe(35);
      expect((await metric('codeq_schedule_fired_total', a)) + (await metric('codeq_schedule_fired_total', b))).toBe(35);
    } finally {
      await a.stop();
      await b.stop();
      await dropDatabase(db);
    }
  }, LONG);
});
