/** Admin routes, health, metrics, unknown routes and config errors. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError } from '../src/config/config.js';
import { client, startServer, T, type RunningServer } from './harness.js';

let s: RunningServer;
let c: ReturnType<typeof client>;
beforeEach(async () => {
  s = await startServer({ retentionSeconds: 3600 });
  c = client(s.url);
});
afterEach(async () => {
  await s.stop();
});

describe('admin', () => {
  it('lists non-empty buckets of the caller tenant in upstream label format', async () => {
    await c.create({ command: 'Gen', payload: 1, priority: 5 });
    await c.create({ command: 'Gen', payload: 1, priority: 5 });
    await c.create({ command: 'Gen', payload: 1, delaySeconds: 60 });
    await c.create({ command: 'Gen', payload: 1 }, T.globexProducer);
    await c.claim({ commands: ['Gen'] });
    const r = await c.call('GET', '/v1/codeq/admin/queues', { token: T.producer });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ 'codeq:q:gen:acme:pending:5': 1, 'codeq:q:gen:acme:inprog': 1, 'codeq:q:gen:acme:delayed': 1 });
    const stats = await c.call('GET', '/v1/codeq/admin/queues/Gen', { token: T.producer });
    expect(stats.body).toEqual({ command: 'Gen', ready: 1, delayed: 1, inProgress: 1, dlq: 0, paused: false });
    expect((await c.call('GET', '/v1/codeq/admin/queues/%20', { token: T.producer })).body.error).toBe('command is required');
  });

  it('refuses non-admins with 403 and workers with 401', async () => {
    const r = await c.call('GET', '/v1/codeq/admin/queues', { token: T.user });
    expect(r.status).toBe(403);
    expect(r.body.error).toBe('unauthorized. Admin only');
    expect((await c.call('POST', '/v1/codeq/admin/tasks/cleanup', { token: T.user, body: {} })).status).toBe(403);
    expect((await c.call('GET', '/v1/codeq/admin/queues', { token: T.worker })).status).toBe(401);
    // a non-admin producer still creates tasks
    expect((await c.create({ command: 'x', payload: 1 }, T.user)).status).toBe(202);
  });

  it('cleanup deletes only terminal tasks past retention, never live ones', async () => {
    const done = (await c.create({ command: 'cl', payload: 1 })).body.id;
    const live = (await c.create({ command: 'cl', payload: 2, idempotencyKey: 'live-key' })).body.id;
    await c.claim({ commands: ['cl'] });
    await c.result(done, { status: 'COMPLETED', result: {} });
    const early = await c.call('POST', '/v1/codeq/admin/tasks/cleanup', { token: T.producer, body: {} });
    expect(early.body).toMatchObject({ deleted: 0, limit: 0 });
    const future = new Date(Date.now() + 2 * 3600_000).toISOString();
    const r = await c.call('POST', '/v1/codeq/admin/tasks/cleanup', { token: T.producer, body: { before: future, limit: 10 } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ deleted: 1, limit: 10 });
    expect(r.body.before).toMatch(/Z$/);
    expect((await c.get(done)).status).toBe(404);
    expect((await c.getResult(done)).status).toBe(404);
    expect((await c.get(live)).status).toBe(200);
    const bad = await c.call('POST', '/v1/codeq/admin/tasks/cleanup', { token: T.producer, body: { before: 'yesterday' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe("invalid 'before' (use RFC3339)");
  });

  it('cleanup releases idempotency keys with the task', async () => {
    const first = (await c.create({ command: 'ik', payload: 1, idempotencyKey: 'k1' })).body.id;
    await c.claim({ commands: ['ik'] });
    await c.result(first, { status: 'COMPLETED', result: {} });
    await c.call('POST', '/v1/codeq/admin/tasks/cleanup', { token: T.producer, body: { before: new Date(Date.now() + 7200_000).toISOString() } });
    const again = await c.create({ command: 'ik', payload: 1, idempotencyKey: 'k1' });
    expect(again.body.id).not.toBe(first);
  });

  it('answers raft status as a single node', async () => {
    const r = await c.call('GET', '/v1/codeq/raft/status', { token: T.worker });
    expect(r.body).toEqual({ enabled: false, numGroups: 0 });
  });
});

describe('ops endpoints', () => {
  it('serves healthz, readyz and metrics without auth', async () => {
    expect((await c.call('GET', '/healthz')).body).toEqual({ status: 'ok' });
    expect((await c.call('GET', '/readyz')).status).toBe(200);
    const m = await c.call('GET', '/metrics');
    expect(m.headers.get('content-type')).toMatch(/^text\/plain/);
    for (const name of ['codeq_task_created_total', 'codeq_task_claimed_total', 'codeq_task_completed_total', 'codeq_task_processing_latency_seconds', 'codeq_lease_expired_total', 'codeq_webhook_deliveries_total', 'codeq_rate_limit_hits_total', 'codeq_queue_depth', 'codeq_dlq_depth', 'nodejs_eventloop_lag_seconds']) {
      expect(m.text).toContain(`# TYPE ${name}`);
    }
  });

  it('answers unknown routes like upstream and echoes X-Request-Id', async () => {
    const r = await c.call('GET', '/v1/codeq/nope', { headers: { 'x-request-id': 'abc123' } });
    expect(r.status).toBe(404);
    expect(r.text).toBe('404 page not found');
    expect(r.headers.get('x-request-id')).toBe('abc123');
    expect((await c.call('DELETE', '/v1/codeq/tasks/x', { token: T.producer })).status).toBe(404);
  });
});

describe('configuration', () => {
  it('names every bad key at once', () => {
    let err: unknown;
    try {
      loadConfig({ env: { PORT: 'eighty', PERSISTENCE_CONFIG: '{bad', LOG_LEVEL: 'loud', PERSISTENCE_PROVIDER: 'redis', WORKER_STREAM_ADDR: 'nonsense' } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    for (const key of ['PORT', 'PERSISTENCE_CONFIG', 'LOG_LEVEL', 'PERSISTENCE_PROVIDER', 'WORKER_STREAM_ADDR']) expect(msg).toContain(key);
  });

  it('reads the YAML file at CODEQ_CONFIG_PATH (mappings for JSON keys), env overriding it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'codeq-yaml-'));
    try {
      const file = join(dir, 'codeq.yaml');
      await writeFile(
        file,
        [
          'port: 9000',
          'defaultLeaseSeconds: 60',
          'persistenceConfig:',
          `  path: ${join(dir, 'data')}`,
          '  fsyncOnCommit: true',
          'producerAuthProvider: static',
          'producerAuthConfig:',
          '  token: yaml-token',
          '  raw: { tid: yaml-tenant }',
          'rateLimit:',
          '  producer: { requestsPerMinute: 60, burstSize: 5 }',
        ].join('\n'),
      );
      const cfg = loadConfig({ env: { CODEQ_CONFIG_PATH: file, PORT: '9001' } });
      expect(cfg.port).toBe(9001);
      expect(cfg.defaultLeaseSeconds).toBe(60);
      expect(cfg.persistence).toEqual({ provider: 'sqlite', path: join(dir, 'data'), fsyncOnCommit: true });
      expect(cfg.producerAuth).toEqual({ provider: 'static', config: { token: 'yaml-token', raw: { tid: 'yaml-tenant' } } });
      expect(cfg.rateLimit.producer).toEqual({ requestsPerMinute: 60, burstSize: 5 });
      await writeFile(file, 'port: 9000\nnotAKey: 1\n');
      expect(() => loadConfig({ env: { CODEQ_CONFIG_PATH: file } })).toThrow(/notAKey: unknown configuration key/);
      await writeFile(file, 'port: [1\n');
      expect(() => loadConfig({ env: { CODEQ_CONFIG_PATH: file } })).toThrow(/not valid YAML/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('accepts the seed env file values and YAML-or-JSON auth configs', () => {
    const cfg = loadConfig({
      env: {
        PORT: '8080',
        PERSISTENCE_PROVIDER: 'pebble',
        PERSISTENCE_CONFIG: '{"path":"/var/lib/codeq/pebble"}',
        PRODUCER_AUTH_PROVIDER: 'static',
        PRODUCER_AUTH_CONFIG: '{"token":"dev-token"}',
        WORKER_STREAM_ADDR: ':9091',
      },
    });
    expect(cfg.persistence).toEqual({ provider: 'sqlite', path: '/var/lib/codeq/pebble', fsyncOnCommit: false });
    expect(cfg.producerAuth).toEqual({ provider: 'static', config: { token: 'dev-token' } });
    expect(cfg.workerStreamAddr).toBe(':9091');
    expect(Object.isFrozen(cfg)).toBe(true);
  });
});

describe('retention', () => {
  it('the sweeper drains a backlog of finished tasks in batches and keeps live ones', async () => {
    const r = await startServer({ retentionSeconds: 0 });
    try {
      const rc = client(r.url);
      const items = Array.from({ length: 100 }, (_, i) => ({ command: 'ret', payload: i }));
      for (let b = 0; b < 7; b++) await rc.call('POST', '/v1/codeq/tasks/batch', { token: T.producer, body: { tasks: items } });
      const ids: string[] = [];
      for (;;) {
        const got = await rc.call('POST', '/v1/codeq/tasks/claim/batch', { token: T.worker, body: { commands: ['ret'], count: 10 } });
        if (got.status === 204) break;
        ids.push(...got.body.tasks.map((t: { id: string }) => t.id));
      }
      expect(ids).toHaveLength(700);
      for (let i = 0; i < ids.length; i += 100) {
        await rc.call('POST', '/v1/codeq/tasks/batch/results', { token: T.worker, body: { results: ids.slice(i, i + 100).map((taskId) => ({ taskId, status: 'COMPLETED', result: {} })) } });
      }
      const live = (await rc.create({ command: 'ret', payload: 'live' })).body.id;
      const { TasksService } = await import('../src/modules/tasks/tasks.service.js');
      const deleted = await r.app.app.get(TasksService).sweepRetention();
      // One call drains more than one batch of 512 (the 5 s background sweep may have taken some first).
      expect(deleted).toBeLessThanOrEqual(700);
      for (const id of [...ids.slice(0, 5), ...ids.slice(-5)]) expect((await rc.get(id)).status).toBe(404);
      expect((await rc.call('GET', '/v1/codeq/admin/queues/ret', { token: T.producer })).body).toMatchObject({ ready: 1, inProgress: 0 });
      expect((await rc.get(live)).status).toBe(200);
    } finally {
      await r.stop();
    }
  });
});
