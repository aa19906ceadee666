/**
 * Schedules on three replicas sharing one PostgreSQL database (issue 17 item 4; ADR 0008): three
 * real server processes (`node dist/main.js`, real clock). A one-second schedule runs while the
 * replica holding the maintenance lock is killed; afterwards every slot from the first to the last
 * fired has exactly one task (no gap across the failover, no duplicate), read from the database.
 *
 * Needs PostgreSQL (CODEQ_TEST_PG_URL, set by scripts/test.sh for the PostgreSQL pass) and the built
 * server. Without PostgreSQL this file is skipped, and says so.
 */
import { createRequire } from 'node:module';
import type * as PgModule from 'pg';
import { call } from './harness.js';
import { PG_URL } from './pg.js';
import { replicaEnv, replicaGroup } from './replicas-kit.js';

const maybe = PG_URL ? describe : describe.skip;
if (!PG_URL) process.stderr.write('replicas-schedules.int-spec: skipped, CODEQ_TEST_PG_URL is not set (scripts/test.sh sets it for the PostgreSQL pass)\n');

const P = 'sched-producer';

const env = (dbUrl: string) => replicaEnv(dbUrl, { tenant: 'sched', producerToken: P, workerToken: 'sched-worker' });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

maybe('schedules on three PostgreSQL replicas', () => {
  const group = replicaGroup(`codeq_sched_replicas_${process.pid}`, 3, env);
  const { replicas } = group;

  it('each slot of a one-second schedule has exactly one task, across the death of the leader', async () => {
    const [a, b, c] = replicas;
    const r = await call(b!.url, 'POST', '/v1/codeq/admin/schedules', { token: P, body: { name: 'every-second', command: 'tick', payload: {}, everySeconds: 1 } });
    expect(r.status).toBe(201);
    await sleep(4000);
    // The first replica started first, so it took the maintenance lock (the leader): kill it mid-schedule.
    a!.child.kill('SIGKILL');
    await a!.exited;
    await sleep(8000);
    expect((await call(c!.url, 'DELETE', '/v1/codeq/admin/schedules/every-second', { token: P })).status).toBe(200);
    await sleep(1500); // a slot decided just before the delete settles

    const pg = createRequire(import.meta.url)('pg') as typeof PgModule;
    const client = new pg.Client({ connectionString: group.url() });
    await client.connect();
    try {
      const keys = (await client.query<{ key: string }>(`SELECT key FROM codeq_idempotency WHERE tenant_id = 'sched' AND key LIKE 'schedule:every-second:%' ORDER BY key`)).rows.map((x) => x.key);
      const tasks = Number((await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM codeq_tasks WHERE tenant_id = 'sched' AND command = 'tick'`)).rows[0]!.n);
      const slots = keys.map((k) => Date.parse(k.slice('schedule:every-second:'.length)));
      expect(slots.length).toBeGreaterThanOrEqual(8);
      expect(tasks).toBe(slots.length); // one task per slot key
      // Consecutive slots, one second apart: no slot missed during the failover, none twice.
      for (let i = 1; i < slots.length; i++) expect({ i, gap: slots[i]! - slots[i - 1]! }).toEqual({ i, gap: 1000 });
    } finally {
      await client.end();
    }
  }, 90_000);
});
