/**
 * Issue 12 items 7 and 8 (bounded memory of the embedded engine): a claim names at most 100
 * commands; long-poll waiters that time out or whose caller left are removed at once; queues with
 * no task and no waiter are dropped; the idempotency index is an LRU that falls back to the database.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteTaskStore } from '../src/persistence/sqlite/sqlite-task-store.js';
import { client, sleep, startServer, T } from './harness.js';
import { newTask } from './task-store.contract.js';
import { randomUUID } from 'node:crypto';
import type { TaskRecord } from '../src/domain/task.js';

type Stats = { live: number; queues: number; waiters: number; idempotency: number; diskOnlyChars: number; keyFilterReady: boolean };
const statsOf = (store: unknown): Stats => (store as { memoryStats(): Stats }).memoryStats();

describe('bounded memory (issue 12 items 7, 8)', () => {
  it('refuses a claim naming more than 100 commands', async () => {
    const srv = await startServer();
    try {
      const c = client(srv.url);
      const many = Array.from({ length: 101 }, (_, i) => `c${i}`);
      const r = await c.claim({ commands: many });
      expect(r.status).toBe(400);
      expect(r.body.code).toBe('VALIDATION_FAILED');
      expect((await c.claim({ commands: many.slice(0, 100) })).status).toBe(204);
    } finally {
      await srv.stop();
    }
  });

  (process.env['CODEQ_TEST_PG_URL'] ? it.skip : it)('removes timed-out and abandoned long-poll waiters and drops empty queues (SQLite)', async () => {
    const srv = await startServer({}, { engine: 'sqlite' });
    try {
      const c = client(srv.url);
      // Timed out: 20 long-polls on distinct commands, 1 s each.
      await Promise.all(Array.from({ length: 20 }, (_, i) => c.claim({ commands: [`idle-${i}`, 'shared'], waitSeconds: 1 })));
      expect(statsOf(srv.app.store)).toMatchObject({ waiters: 0, queues: 0 });
      // A queue whose last task finished is dropped too.
      const t = await c.create({ command: 'once', payload: {} });
      expect((await c.claim({ commands: ['once'] })).status).toBe(200);
      expect((await c.result(t.body.id, { status: 'COMPLETED', result: {} })).status).toBe(200);
      expect(statsOf(srv.app.store).queues).toBe(0);
    } finally {
      await srv.stop();
    }
  }, 60_000);

  (process.env['CODEQ_TEST_PG_URL'] ? it.skip : it)('removes the waiters of long-polls whose caller left at once (SQLite)', async () => {
    const srv = await startServer({}, { engine: 'sqlite' });
    try {
      const c = client(srv.url);
      // Caller left: aborted requests.
      const ctrl = new AbortController();
      const gone = Array.from({ length: 10 }, (_, i) =>
        c.call('POST', '/v1/codeq/tasks/claim', { token: T.worker, body: { commands: [`left-${i}`], waitSeconds: 30 }, signal: ctrl.signal }).catch(() => null),
      );
      await sleep(300);
      expect(statsOf(srv.app.store).waiters).toBe(10);
      ctrl.abort();
      await Promise.all(gone);
      const until = Date.now() + 5000;
      while (statsOf(srv.app.store).waiters && Date.now() < until) await sleep(50);
      expect(statsOf(srv.app.store)).toMatchObject({ waiters: 0, queues: 0 });
    } finally {
      await srv.stop();
    }
  }, 60_000);

  (process.env['CODEQ_TEST_PG_URL'] ? it.skip : it)('bounds the idempotency index and falls back to the database on a miss (SQLite)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'codeq-lru-'));
    const store = new SqliteTaskStore({ path: dir, fsyncOnCommit: false, idempotencyCacheSize: 50 });
    await store.open();
    try {
      const ids: string[] = [];
      for (let i = 0; i < 200; i++) ids.push((await store.create(newTask({ idempotencyKey: `k-${i}` }))).task.id);
      expect(statsOf(store).idempotency).toBeLessThanOrEqual(50);
      const replay = await store.create(newTask({ idempotencyKey: 'k-0' }));
      expect(replay).toMatchObject({ created: false, task: { id: ids[0] } });
      // Concurrent creates of one evicted key still make one task.
      const outs = await Promise.all(Array.from({ length: 5 }, () => store.create(newTask({ idempotencyKey: 'k-1' }))));
      expect(new Set(outs.map((o) => o.task.id))).toEqual(new Set([ids[1]]));
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('idempotency key filter (issue 13, SQLite)', () => {
  (process.env['CODEQ_TEST_PG_URL'] ? it.skip : it)('after a reopen, keys on disk are found again (the filter is built from disk, the LRU starts empty)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'codeq-keyfilter-'));
    let store = new SqliteTaskStore({ path: dir, fsyncOnCommit: false, idempotencyCacheSize: 10 });
    await store.open();
    try {
      // more keys than one build page (5,000) and than the LRU holds, in two tenants
      const ids = new Map<string, string>();
      for (let i = 0; i < 6000; i += 100) {
        const batch = await Promise.all(Array.from({ length: 100 }, (_, j) => store.create(newTask({ tenantId: (i + j) % 2 ? 'acme' : 'beta', idempotencyKey: `key-${i + j}` }))));
        batch.forEach((o, j) => ids.set(`key-${i + j}`, o.task.id));
      }
      await store.close();
      store = new SqliteTaskStore({ path: dir, fsyncOnCommit: false, idempotencyCacheSize: 10 });
      await store.open();
      for (let i = 0; i < 100 && !statsOf(store).keyFilterReady; i++) await sleep(20);
      expect(statsOf(store)).toMatchObject({ keyFilterReady: true, idempotency: 0 });
      for (const i of [0, 1, 4999, 5000, 5001, 5999]) {
        const again = await store.create(newTask({ tenantId: i % 2 ? 'acme' : 'beta', idempotencyKey: `key-${i}` }));
        expect(again).toMatchObject({ created: false, task: { id: ids.get(`key-${i}`) } });
      }
      // a key of the other tenant is a different key; a new key makes a new task
      expect((await store.create(newTask({ tenantId: 'beta', idempotencyKey: 'key-1' }))).created).toBe(true);
      expect((await store.create(newTask({ tenantId: 'acme', idempotencyKey: 'key-new' }))).created).toBe(true);
      expect((await store.create(newTask({ tenantId: 'acme', idempotencyKey: 'key-new' }))).created).toBe(false);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('payloads stay on disk (issue 12 item 6, SQLite)', () => {
  const sqliteOnly = process.env['CODEQ_TEST_PG_URL'] ? it.skip : it;
  const lease = () => ({ workerId: 'w1', leaseSeconds: 60, now: Date.now(), leaseId: randomUUID() });
  const payloadOf = (i: number) => JSON.stringify({ i, pad: 'p'.repeat(2000 + i) });

  sqliteOnly('keeps no payload, webhook or error text in memory, and hands every one out intact', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'codeq-slim-'));
    let store = new SqliteTaskStore({ path: dir, fsyncOnCommit: false });
    await store.open();
    try {
      const tasks = Array.from({ length: 40 }, (_, i) =>
        newTask({
          payload: payloadOf(i),
          webhook: `https://hooks.example.com/t/${i}`,
          lastError: i % 2 ? `earlier failure ${i}` : null,
          priority: i % 3,
          ...(i >= 30 ? { location: 'DELAYED_ZSET' as const, visibleAtMs: Date.now() + 1000 } : {}),
        }),
      );
      await Promise.all(tasks.map((t) => store.create(t)));
      expect(statsOf(store)).toMatchObject({ live: 40, diskOnlyChars: 0 });
      const expectIntact = (got: TaskRecord | null | undefined) => {
        const want = tasks.find((t) => t.id === got?.id)!;
        expect(got).toMatchObject({ payload: want.payload, webhook: want.webhook, lastError: want.lastError });
      };
      // Reads and a claim batch come back whole.
      for (const t of tasks.slice(0, 5)) expectIntact(await store.get('acme', t.id));
      const first = await store.claim('acme', ['cmd'], 10, lease());
      expect(first).toHaveLength(10);
      first.forEach(expectIntact);
      // A transition sees the whole record and keeps the texts it does not change.
      const seen = await store.transition('acme', first[0]!.id, (cur) => ({ value: cur?.payload, next: cur ? { ...cur, attempts: cur.attempts + 1 } : undefined }));
      expect(seen).toBe(tasks.find((t) => t.id === first[0]!.id)!.payload);
      expectIntact(await store.get('acme', first[0]!.id));
      expect(statsOf(store).diskOnlyChars).toBe(0);

      // After a restart memory is rebuilt from the slim columns only; delayed tasks are promoted
      // (a write of a record read slim) and still carry their payload.
      await store.close();
      store = new SqliteTaskStore({ path: dir, fsyncOnCommit: false });
      await store.open();
      expect(statsOf(store)).toMatchObject({ live: 40, diskOnlyChars: 0 });
      expectIntact(await store.get('acme', first[1]!.id));
      await sleep(2200);
      const rest = await store.claim('acme', ['cmd'], 100, lease());
      expect(rest).toHaveLength(30);
      rest.forEach(expectIntact);
      expect(statsOf(store).diskOnlyChars).toBe(0);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('shutdown after aborted long-polls (found by bench/soak.mjs)', () => {
  it('stops within the grace period even when clients aborted long-polls and kept connections alive', async () => {
    const srv = await startServer({ shutdownGraceSeconds: 2 });
    const c = client(srv.url);
    await Promise.all(Array.from({ length: 20 }, (_, i) => c.claim({ commands: [`idle-${i}`], waitSeconds: 1 })));
    const ctrl = new AbortController();
    const gone = Array.from({ length: 10 }, (_, i) =>
      c.call('POST', '/v1/codeq/tasks/claim', { token: T.worker, body: { commands: [`left-${i}`], waitSeconds: 30 }, signal: ctrl.signal }).catch(() => null),
    );
    await sleep(300);
    ctrl.abort();
    await Promise.all(gone);
    const t = await c.create({ command: 'once', payload: {} });
    expect(t.status).toBe(202);
    expect((await c.claim({ commands: ['once'] })).status).toBe(200);
    const started = Date.now();
    await srv.stop();
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 60_000);
});
