/** The seed page's walkthrough (spec/seed-run-in-docker.txt) and its durability story. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, client, sleep, startServer, T } from './harness.js';
import { PG_URL } from './pg.js';

describe('seed walkthrough', () => {
  it('runs create → claim → result → GET with the seed codeq.env auth values', async () => {
    const seedAuth = {
      producerAuthProvider: 'static',
      producerAuthConfig: '{"token":"dev-token","subject":"producer-dev","raw":{"role":"ADMIN","tenantId":"dev-tenant"}}',
      workerAuthProvider: 'static',
      workerAuthConfig:
        '{"token":"dev-token","subject":"worker-dev","scopes":["codeq:claim","codeq:heartbeat","codeq:abandon","codeq:nack","codeq:result","codeq:subscribe"],"eventTypes":["*"],"raw":{"tenantId":"dev-tenant"}}',
      persistenceProvider: 'pebble',
    };
    const s = await startServer(seedAuth);
    try {
      const auth = { 'content-type': 'application/json' };
      const created = await call(s.url, 'POST', '/v1/codeq/tasks', { token: 'dev-token', headers: auth, raw: '{"command":"PROCESS_ORDER","payload":{"orderId":"42"},"priority":5}' });
      expect(created.status).toBe(202);
      expect(created.body).toMatchObject({ command: 'PROCESS_ORDER', payload: '{"orderId":"42"}', priority: 5, status: 'PENDING', lastKnownLocation: 'PENDING_LIST', maxAttempts: 5, tenantId: 'dev-tenant' });
      const id = created.body.id as string;
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

      const claimed = await call(s.url, 'POST', '/v1/codeq/tasks/claim', { token: 'dev-token', headers: auth, raw: '{"commands":["PROCESS_ORDER"],"leaseSeconds":60,"waitSeconds":5}' });
      expect(claimed.status).toBe(200);
      expect(claimed.body).toMatchObject({ id, status: 'IN_PROGRESS', lastKnownLocation: 'INPROG_SET', workerId: 'worker-dev', attempts: 1 });
      expect(claimed.body.leaseUntil).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

      const res = await call(s.url, 'POST', `/v1/codeq/tasks/${id}/result`, { token: 'dev-token', headers: auth, raw: '{"status":"COMPLETED","result":{"ok":true}}' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ taskId: id, status: 'COMPLETED', result: { ok: true } });

      const got = await call(s.url, 'GET', `/v1/codeq/tasks/${id}`, { token: 'dev-token' });
      expect(got.status).toBe(200);
      expect(got.body.status).toBe('COMPLETED');
      expect(got.headers.get('content-type')).toMatch(/^application\/json/);
      expect(got.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);

      const metrics = await call(s.url, 'GET', '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.text).toContain('codeq_task_created_total{command="PROCESS_ORDER"} 1');
      expect(metrics.text).toContain('codeq_task_claimed_total{command="PROCESS_ORDER"} 1');
      expect(metrics.text).toContain('codeq_task_completed_total{command="PROCESS_ORDER",status="COMPLETED"} 1');
      expect(metrics.text).toContain('codeq_queue_depth{command="PROCESS_ORDER",queue="ready"} 0');
      expect(metrics.text).toMatch(/process_resident_memory_bytes \d+/);
    } finally {
      await s.stop();
    }
  });
});

describe('restart durability', () => {
  it('keeps tasks, results, leases and delays across a restart on the same directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'codeq-restart-'));
    try {
      let s = await startServer({}, { dir });
      let c = client(s.url);
      const done = (await c.create({ command: 'JOB', payload: { n: 1 } })).body.id as string;
      const leased = (await c.create({ command: 'JOB', payload: { n: 2 } })).body.id as string;
      const ready = (await c.create({ command: 'JOB', payload: { n: 3 }, priority: 2 })).body.id as string;
      const delayed = (await c.create({ command: 'JOB', payload: { n: 4 }, delaySeconds: 2 })).body.id as string;
      const first = await c.claim({ commands: ['JOB'] });
      expect(first.body.id).toBe(ready); // priority 2 beats priority 0
      expect((await c.result(ready, { status: 'COMPLETED', result: { v: 1 } })).status).toBe(200);
      const second = await c.claim({ commands: ['JOB'], leaseSeconds: 60 });
      expect(second.body.id).toBe(done);
      expect((await c.result(done, { status: 'COMPLETED', result: { v: 2 } })).status).toBe(200);
      const third = await c.claim({ commands: ['JOB'], leaseSeconds: 60 });
      expect(third.body.id).toBe(leased);
      await s.stop({ keepDir: true });

      s = await startServer({}, { dir });
      c = client(s.url);
      expect((await c.get(done)).body.status).toBe('COMPLETED');
      expect((await c.getResult(ready)).body.result).toMatchObject({ status: 'COMPLETED', result: { v: 1 } });
      // The lease survived: the same worker can still finish it, with the same lease id.
      const l = await c.get(leased);
      expect(l.body).toMatchObject({ status: 'IN_PROGRESS', workerId: 'worker-1', leaseId: third.body.leaseId });
      expect((await c.heartbeat(leased, { extendSeconds: 30, leaseId: third.body.leaseId })).status).toBe(200);
      // The delayed task is not claimable yet, then becomes claimable without any new create.
      expect((await c.claim({ commands: ['JOB'] })).status).toBe(204);
      const woke = await c.claim({ commands: ['JOB'], waitSeconds: 5 });
      expect(woke.status).toBe(200);
      expect(woke.body.id).toBe(delayed);
      expect((await c.result(leased, { status: 'COMPLETED', result: {}, leaseId: third.body.leaseId })).status).toBe(200);
      await s.stop({ keepDir: true });

      s = await startServer({}, { dir });
      c = client(s.url);
      expect((await c.get(leased)).body.status).toBe('COMPLETED');
      expect((await c.get(delayed)).body.status).toBe('IN_PROGRESS');
      const stats = await c.call('GET', '/v1/codeq/admin/queues/JOB', { token: T.producer });
      expect(stats.body).toEqual({ command: 'JOB', ready: 0, delayed: 0, inProgress: 1, dlq: 0, paused: false });
      await s.stop({ keepDir: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  // SQLite only: on PostgreSQL several servers sharing one database is the point (test/replicas.int-spec.ts).
  (PG_URL ? it.skip : it)('refuses a second server on the same data directory with a clear message', async () => {
    const s = await startServer();
    try {
      await expect(startServer({}, { dir: s.dir })).rejects.toThrow(/in use by another codeQ process/);
    } finally {
      await s.stop();
    }
  });

  it('resumes an expired lease after restart: it is redelivered', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'codeq-restart-'));
    try {
      let s = await startServer({ backoffPolicy: 'fixed', backoffBaseSeconds: 0 }, { dir });
      let c = client(s.url);
      const id = (await c.create({ command: 'EXP', payload: 1 })).body.id as string;
      expect((await c.claim({ commands: ['EXP'], leaseSeconds: 1 })).body.id).toBe(id);
      await s.stop({ keepDir: true });
      await sleep(1200);
      s = await startServer({ backoffPolicy: 'fixed', backoffBaseSeconds: 0 }, { dir });
      c = client(s.url);
      const again = await c.claim({ commands: ['EXP'], waitSeconds: 5 }, T.worker2);
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ id, attempts: 2, workerId: 'worker-2' });
      await s.stop({ keepDir: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
