/**
 * Moving a single-node deployment to PostgreSQL: fill a SQLite server, stop it, run
 * `node dist/main.js migrate-to-postgres`, start a server on PostgreSQL and find everything.
 * Needs CODEQ_TEST_PG_URL (the PostgreSQL pass of scripts/test.sh); skipped with a message otherwise.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { call, client, startServer, T } from './harness.js';
import { PG_URL, dropDatabase, ensureDatabase } from './pg.js';
import { MAIN, freePort } from './process.js';

if (!PG_URL) process.stderr.write('migrate.int-spec: skipped, CODEQ_TEST_PG_URL is not set (scripts/test.sh sets it for the PostgreSQL pass)\n');
const maybe = PG_URL ? describe : describe.skip;

function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

maybe('migrate-to-postgres', () => {
  const db = `codeq_migrate_${process.pid}`;
  afterAll(async () => dropDatabase(db));

  it('copies live and finished tasks, results, idempotency keys, topics, schedules and pending webhooks; a PostgreSQL server resumes them', async () => {
    const url = await ensureDatabase(db);
    // The finished task's webhook receiver is down while the SQLite server runs: its delivery is pending.
    const hookPort = await freePort();
    const hooks = { webhookAllowPrivate: true, resultWebhookBaseBackoffSeconds: 1, resultWebhookMaxBackoffSeconds: 1, webhookOutboxPollMs: 100 };
    const s = await startServer(hooks, { engine: 'sqlite' });
    const c = client(s.url);
    const ready = (await c.call('POST', '/v1/codeq/tasks', { token: T.producer, body: { command: 'mig', payload: { n: 1 }, priority: 3, idempotencyKey: 'k-1' } })).body;
    const delayed = (await c.call('POST', '/v1/codeq/tasks', { token: T.producer, body: { command: 'mig', payload: { n: 2 }, delaySeconds: 3600 } })).body;
    const done = (await c.call('POST', '/v1/codeq/tasks', { token: T.producer, body: { command: 'mig-done', payload: { n: 3 }, webhook: `http://127.0.0.1:${hookPort}/hook` } })).body;
    const claimedDone = (await c.call('POST', '/v1/codeq/tasks/claim', { token: T.worker, body: { commands: ['mig-done'], leaseSeconds: 60 } })).body;
    expect(claimedDone.id).toBe(done.id);
    expect((await c.call('POST', `/v1/codeq/tasks/${done.id}/result`, { token: T.worker, body: { status: 'COMPLETED', result: { ok: 3 } } })).status).toBe(200);
    const leased = (await c.call('POST', '/v1/codeq/tasks', { token: T.producer, body: { command: 'mig-lease', payload: {} } })).body;
    const lease = (await c.call('POST', '/v1/codeq/tasks/claim', { token: T.worker, body: { commands: ['mig-lease'], leaseSeconds: 600 } })).body;
    const policy = { priorityTiers: [5, 1, 3], maxAttempts: 7, deadLetterTopicRef: 'mig-catalog-dlq', retentionSeconds: 3600, maxConsumers: 20 };
    const topic = await c.call('PUT', '/v1/codeq/admin/topics/mig-catalog', { token: T.producer, body: policy });
    expect(topic.status).toBe(201);
    const sched = await c.call('POST', '/v1/codeq/admin/schedules', { token: T.producer, body: { name: 'mig-nightly', command: 'mig', payload: { s: 1 }, cron: '0 3 * * *', timezone: 'Asia/Tokyo' } });
    expect(sched.status).toBe(201);
    await s.stop({ keepDir: true });

    // A running server on the directory makes the command refuse; bad arguments are usage errors.
    expect((await run(['migrate-to-postgres', '--from', join(s.dir, 'data')])).code).toBe(64);
    const missing = await run(['migrate-to-postgres', '--from', join(s.dir, 'nope'), '--to', url]);
    expect(missing.code).toBe(65);
    expect(missing.err).toMatch(/codeq\.db does not exist/);

    const r = await run(['migrate-to-postgres', '--from', join(s.dir, 'data'), '--to', url]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out.trim().split('\n').at(-1)!)).toEqual({ liveTasks: 3, finishedTasks: 1, results: 1, idempotencyKeys: 1, topics: 1, schedules: 1, webhookDeliveries: 1 });
    // Into a database that holds data already: refused, nothing written.
    const again = await run(['migrate-to-postgres', '--from', join(s.dir, 'data'), '--to', url]);
    expect(again.code).toBe(65);
    expect(again.err).toMatch(/already holds codeQ data/);

    const hits: string[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        hits.push(JSON.parse(body).taskId);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(hookPort, '127.0.0.1', () => r()));
    const p = await startServer(hooks, { engine: { postgresUrl: url } });
    try {
      // The pending delivery made on SQLite is delivered by the PostgreSQL server.
      for (let i = 0; i < 200 && !hits.length; i++) await new Promise((r) => setTimeout(r, 50));
      expect(hits).toEqual([done.id]);
      const pc = client(p.url);
      expect((await pc.call('GET', `/v1/codeq/tasks/${done.id}/result`, { token: T.producer })).body.result).toMatchObject({ status: 'COMPLETED', result: { ok: 3 } });
      expect((await pc.call('GET', `/v1/codeq/tasks/${delayed.id}`, { token: T.producer })).body).toMatchObject({ status: 'PENDING', lastKnownLocation: 'DELAYED_ZSET' });
      const replay = await pc.call('POST', '/v1/codeq/tasks', { token: T.producer, body: { command: 'mig', payload: { n: 9 }, idempotencyKey: 'k-1' } });
      expect(replay.body.id).toBe(ready.id);
      const claimed = await pc.call('POST', '/v1/codeq/tasks/claim', { token: T.worker, body: { commands: ['mig'], leaseSeconds: 60 } });
      expect(claimed.body).toMatchObject({ id: ready.id, priority: 3 });
      // The lease taken on SQLite is still valid and fenced on PostgreSQL.
      const hb = await pc.call('POST', `/v1/codeq/tasks/${leased.id}/heartbeat`, { token: T.worker, body: { leaseId: lease.leaseId, extendSeconds: 60 } });
      expect(hb.status).toBe(200);
      expect((await pc.call('GET', '/v1/codeq/admin/topics/mig-catalog', { token: T.producer })).body).toMatchObject({ version: 1, policy: { maxAttempts: 7 } });
      expect((await pc.call('GET', '/v1/codeq/admin/schedules/mig-nightly', { token: T.producer })).body).toEqual(sched.body);
      // New tasks queue behind the migrated ones (sequence carried over).
      const later = (await pc.call('POST', '/v1/codeq/tasks', { token: T.producer, body: { command: 'mig', payload: {} } })).body;
      expect((await call(p.url, 'GET', `/v1/codeq/tasks/${later.id}`, { token: T.producer })).status).toBe(200);
    } finally {
      await p.stop();
      receiver.closeAllConnections();
      await new Promise<void>((r) => receiver.close(() => r()));
    }
  }, 60_000);
});
