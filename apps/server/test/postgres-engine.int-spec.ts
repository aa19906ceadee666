/**
 * PostgreSQL engine behaviour that the shared TaskStore contract cannot show: two stores on one
 * database stand for two replicas (fenced races, maintenance failover, delayed wake-ups across
 * replicas), plus start-up with a one-connection pool and the LISTEN connection surviving a period
 * in which the database refuses connections. Needs CODEQ_TEST_PG_URL (scripts/test.sh sets it for
 * its PostgreSQL pass); without it this file is skipped, and says so.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as PgModule from 'pg';
import type { ExpiredLease } from '../src/domain/task-store.js';
import { abandon, assertCanComplete, complete, heartbeat, retryOrDeadLetter } from '../src/domain/rules.js';
import { PostgresTaskStore } from '../src/persistence/postgres/postgres-task-store.js';
import { newTask } from './task-store.contract.js';
import { PG_URL, dropDatabase, ensureDatabase } from './pg.js';

const maybe = PG_URL ? describe : describe.skip;
if (!PG_URL) process.stderr.write('postgres-engine.int-spec: skipped, CODEQ_TEST_PG_URL is not set (scripts/test.sh sets it for the PostgreSQL pass)\n');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sql(url: string, text: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  const pg = createRequire(import.meta.url)('pg') as typeof PgModule;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, values)).rows as Record<string, unknown>[];
  } finally {
    await c.end();
  }
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

maybe('PostgresTaskStore as replicas of one database', () => {
  let db = '';
  let url = '';
  const open: PostgresTaskStore[] = [];
  const store = async (poolSize = 4): Promise<PostgresTaskStore> => {
    const s = new PostgresTaskStore({ url, poolSize });
    await s.open();
    open.push(s);
    return s;
  };

  beforeEach(async () => {
    db = `codeq_engine_${process.pid}_${randomUUID().slice(0, 8)}`;
    url = await ensureDatabase(db);
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
    await sql(PG_URL!, `ALTER DATABASE ${db} ALLOW_CONNECTIONS true`).catch(() => undefined);
    await dropDatabase(db);
  });

  it('starts with a pool of one connection (the migration lock uses its own)', async () => {
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<null>((r) => (timer = setTimeout(() => r(null), 10_000)));
    const s = await Promise.race([store(1), hung]);
    clearTimeout(timer);
    expect(s).not.toBeNull();
    const t = newTask();
    await s!.create(t);
    expect((await s!.get('acme', t.id))?.id).toBe(t.id);
  });

  it('lets exactly one of a lease holder and a reaper win a race on the same task', async () => {
    const a = await store();
    const b = await store();
    const tasks = Array.from({ length: 40 }, () => newTask());
    for (const t of tasks) await a.create(t);
    const leased = await a.claim('acme', ['cmd'], tasks.length, { workerId: 'w1', leaseSeconds: 60, now: Date.now(), leaseId: randomUUID() });
    expect(leased).toHaveLength(tasks.length);
    const outcomes = await Promise.all(
      leased.map(async (l) => {
        const [done, reaped] = await Promise.all([
          // The worker completes through replica A, fenced by its lease.
          a.transition('acme', l.id, (cur) => {
            if (!cur || cur.status !== 'IN_PROGRESS' || cur.leaseId !== l.leaseId) return { value: false };
            const { next, result } = complete(cur, { workerId: 'w1', leaseId: l.leaseId! }, { status: 'COMPLETED', result: '{}', error: null, artifacts: [] }, Date.now());
            return { next, result, value: true };
          }),
          // A reaper on replica B acts on the same lease (as if it had expired), guarded by status and lease.
          b.transition(null, l.id, (cur) => {
            if (!cur || cur.status !== 'IN_PROGRESS' || cur.leaseId !== l.leaseId) return { value: false };
            return { next: retryOrDeadLetter(cur, 5, 'LEASE_EXPIRED', Date.now()).next, value: true };
          }),
        ]);
        const final = (await a.get('acme', l.id))!;
        const result = await a.getResult('acme', l.id);
        return { done, reaped, final, result };
      }),
    );
    for (const o of outcomes) {
      expect(o.done !== o.reaped).toBe(true);
      if (o.done) {
        expect(o.final.status).toBe('COMPLETED');
        expect(o.result?.status).toBe('COMPLETED');
      } else {
        expect(o.final).toMatchObject({ status: 'PENDING', location: 'DELAYED_ZSET', leaseId: null });
        expect(o.result).toBeNull();
      }
    }
  });

  it('never refuses on a stale copy of a row another replica changed since', async () => {
    const a = await store();
    const b = await store();
    const t = newTask();
    await a.create(t);
    const [first] = await a.claim('acme', ['cmd'], 1, { workerId: 'w1', leaseSeconds: 60, now: Date.now(), leaseId: randomUUID() });
    // Replica A keeps a copy of the row it leased; replica B requeues and re-leases it (same worker).
    await b.transition('acme', t.id, (cur) => ({ next: abandon(cur, { workerId: 'w1', leaseId: first!.leaseId! }, Date.now()), value: null }));
    const [second] = await b.claim('acme', ['cmd'], 1, { workerId: 'w1', leaseSeconds: 60, now: Date.now(), leaseId: randomUUID() });
    expect(second!.leaseId).not.toBe(first!.leaseId);
    // The worker's heartbeat and result for the new lease arrive at replica A.
    const actor = { workerId: 'w1', leaseId: second!.leaseId! };
    const beat = await a.transition('acme', t.id, (cur) => {
      const next = heartbeat(cur, actor, 120, Date.now());
      return { next, value: next };
    });
    expect(beat.leaseId).toBe(second!.leaseId);
    const r = await a.transition('acme', t.id, (cur, ctx) => {
      const { replay } = assertCanComplete(cur, actor, () => ctx.result());
      if (replay) return { value: replay };
      const { next, result } = complete(cur!, actor, { status: 'COMPLETED', result: '{"ok":true}', error: null, artifacts: [] }, Date.now());
      return { next, result, value: result };
    });
    expect(r).toMatchObject({ status: 'COMPLETED', leaseId: second!.leaseId });
    // And the old lease is refused, on any replica.
    await expect(b.transition('acme', t.id, (cur) => ({ next: heartbeat(cur, { workerId: 'w1', leaseId: first!.leaseId! }, 60, Date.now()), value: null }))).rejects.toMatchObject({ code: 'LEASE_NOT_HELD' });
  });

  it('runs maintenance on one replica and moves it when that replica goes away', async () => {
    const a = await store();
    const b = await store();
    expect([a.isLeader(), b.isLeader()]).toEqual([true, false]);
    const expiredOnB: ExpiredLease[] = [];
    b.onLeaseExpired((ls) => expiredOnB.push(...ls));
    a.onLeaseExpired(() => undefined);
    const t = newTask();
    await a.create(t);
    const [got] = await a.claim('acme', ['cmd'], 1, { workerId: 'w1', leaseSeconds: 1, now: Date.now(), leaseId: randomUUID() });
    await a.close();
    await until('replica B to take the maintenance lock', () => b.isLeader(), 5000);
    await until('replica B to hand over the expired lease', () => expiredOnB.length > 0, 5000);
    expect(expiredOnB).toEqual([{ tenantId: 'acme', taskId: t.id, leaseId: got!.leaseId }]);
  });

  it('wakes a long-poll on one replica when a task delayed on another becomes due', async () => {
    const a = await store();
    const b = await store();
    expect(a.isLeader()).toBe(true);
    const d = newTask({ location: 'DELAYED_ZSET', visibleAtMs: Date.now() + 1000 });
    await b.create(d);
    expect(await b.claim('acme', ['cmd'], 1, { workerId: 'w', leaseSeconds: 60, now: Date.now(), leaseId: randomUUID() })).toEqual([]);
    const t0 = Date.now();
    await b.waitForWork('acme', ['cmd'], Date.now() + 5000);
    expect(Date.now() - t0).toBeLessThan(1400); // due within 1 s (start of its second), not the 1.5 s fallback
    const [got] = await b.claim('acme', ['cmd'], 1, { workerId: 'w', leaseSeconds: 60, now: Date.now(), leaseId: randomUUID() });
    expect(got?.id).toBe(d.id);
  });

  it('does not sleep through a notification that arrived while its claim or result read ran', async () => {
    const s = await store();
    const pg = createRequire(import.meta.url)('pg') as typeof PgModule;
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    const quick = async (wait: Promise<void>) => {
      const t0 = Date.now();
      await wait;
      return Date.now() - t0;
    };
    try {
      // The claim's statement waits on a table lock; meanwhile another replica's create notifies.
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE codeq_tasks IN EXCLUSIVE MODE');
      const claiming = s.claim('acme', ['cmd'], 1, { workerId: 'w', leaseSeconds: 60, now: Date.now(), leaseId: randomUUID() });
      await sleep(100);
      await sql(url, `NOTIFY codeq_work, 'acme:1:cmd'`);
      await sleep(100);
      await locker.query('COMMIT');
      expect(await claiming).toEqual([]);
      expect(await quick(s.waitForWork('acme', ['cmd'], Date.now() + 5000))).toBeLessThan(200); // not the 1.5 s fallback
      expect(await quick(s.waitForWork('acme', ['cmd'], Date.now() + 400))).toBeGreaterThanOrEqual(350); // only once

      // The same for a result read and the result's notification.
      const t = newTask();
      await s.create(t);
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE codeq_results IN ACCESS EXCLUSIVE MODE');
      const reading = s.getResult('acme', t.id);
      await sleep(100);
      await sql(url, `NOTIFY codeq_result, '${t.id}'`);
      await sleep(100);
      await locker.query('COMMIT');
      expect(await reading).toBeNull();
      expect(await quick(s.waitForResult('acme', t.id, Date.now() + 5000))).toBeLessThan(200);
      expect(await quick(s.waitForResult('acme', t.id, Date.now() + 400))).toBeGreaterThanOrEqual(350);
    } finally {
      await locker.end();
    }
  });

  it('listens again after the database refused connections for a while', async () => {
    const s = await store();
    const listeners = async () => (await sql(PG_URL!, `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'`, [db])).map((r) => r['pid']);
    const [pid] = await listeners();
    expect(pid).toBeDefined();
    await sql(PG_URL!, `ALTER DATABASE ${db} ALLOW_CONNECTIONS false`);
    await sql(PG_URL!, 'SELECT pg_terminate_backend($1)', [pid]);
    await sleep(1500); // several reconnect attempts fail meanwhile
    await sql(PG_URL!, `ALTER DATABASE ${db} ALLOW_CONNECTIONS true`);
    await until('the LISTEN connection to come back', async () => (await listeners()).length === 1, 5000);
    const waiting = s.waitForWork('acme', ['cmd'], Date.now() + 10_000).then(() => Date.now());
    await sleep(50);
    const sent = Date.now();
    await sql(url, `NOTIFY codeq_work, 'acme:1:cmd'`);
    expect((await waiting) - sent).toBeLessThan(200);
  });
});
