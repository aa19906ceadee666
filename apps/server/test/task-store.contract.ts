/**
 * The TaskStore contract: every engine (SQLite now, PostgreSQL later) must pass this suite.
 * It drives the port directly with domain transitions, against a real database.
 */
import { randomUUID } from 'node:crypto';
import type { TaskStore } from '../src/domain/task-store.js';
import type { TaskRecord } from '../src/domain/task.js';
import { complete, leaseTask } from '../src/domain/rules.js';

export interface StoreFactory {
  /** A fresh, opened store. */
  open(): Promise<TaskStore>;
  /** Close and reopen the same database. */
  reopen(store: TaskStore): Promise<TaskStore>;
  /** Close and delete everything. */
  dispose(store: TaskStore): Promise<void>;
}

export function newTask(over: Partial<TaskRecord> = {}): TaskRecord {
  const now = Date.now();
  return {
    id: randomUUID(), tenantId: 'acme', command: 'CMD', commandKey: 'cmd', payload: '{}', priority: 0, webhook: null,
    status: 'PENDING', location: 'PENDING_LIST', workerId: null, leaseId: null, leaseUntilMs: null, attempts: 0,
    maxAttempts: 5, error: null, resultKey: null, idempotencyKey: null, visibleAtMs: null, seq: 0,
    createdAtMs: now, updatedAtMs: now, terminalAtMs: null, lastError: null, cancelRequested: false, ...over,
  };
}

export function describeTaskStoreContract(name: string, factory: StoreFactory): void {
  describe(`TaskStore contract: ${name}`, () => {
    let store: TaskStore;
    beforeEach(async () => {
      store = await factory.open();
    });
    afterEach(async () => {
      await factory.dispose(store);
    });
    const lease = (w = 'w1') => (t: TaskRecord) => leaseTask(t, w, randomUUID(), 60, Date.now());

    it('creates, reads and isolates by tenant', async () => {
      const t = newTask();
      const out = await store.create(t);
      expect(out.created).toBe(true);
      expect((await store.get('acme', t.id))?.id).toBe(t.id);
      expect(await store.get('other', t.id)).toBeNull();
    });

    it('claims by priority then FIFO, only from the tenant, only once', async () => {
      const a = newTask({ priority: 1 });
      const b = newTask({ priority: 7 });
      const c = newTask({ priority: 7 });
      const foreign = newTask({ tenantId: 'other', priority: 9 });
      for (const t of [a, b, c, foreign]) await store.create(t);
      const got = await store.claim('acme', ['cmd'], 10, lease());
      expect(got.map((t) => t.id)).toEqual([b.id, c.id, a.id]);
      expect(got.every((t) => t.status === 'IN_PROGRESS' && t.attempts === 1)).toBe(true);
      expect(await store.claim('acme', ['cmd'], 10, lease())).toEqual([]);
      expect(await store.counts('acme', 'cmd')).toMatchObject({ inProgress: 3, delayed: 0, dlq: 0 });
    });

    it('claims commands in the given order, each by priority then FIFO', async () => {
      const a1 = newTask({ command: 'A', commandKey: 'a', priority: 1 });
      const b9 = newTask({ command: 'B', commandKey: 'b', priority: 9 });
      const a5 = newTask({ command: 'A', commandKey: 'a', priority: 5 });
      const b0 = newTask({ command: 'B', commandKey: 'b', priority: 0 });
      for (const t of [a1, b9, a5, b0]) await store.create(t);
      const got = await store.claim('acme', ['a', 'b'], 3, lease());
      expect(got.map((t) => t.id)).toEqual([a5.id, a1.id, b9.id]);
      expect((await store.claim('acme', ['missing', 'b'], 5, lease())).map((t) => t.id)).toEqual([b0.id]);
    });

    it('makes idempotency keys atomic per tenant', async () => {
      const outs = await Promise.all(Array.from({ length: 10 }, () => store.create(newTask({ idempotencyKey: 'k' }))));
      expect(new Set(outs.map((o) => o.task.id)).size).toBe(1);
      expect(outs.filter((o) => o.created)).toHaveLength(1);
      const other = await store.create(newTask({ tenantId: 'other', idempotencyKey: 'k' }));
      expect(other.created).toBe(true);
    });

    it('applies guarded transitions atomically and refuses without changes', async () => {
      const t = newTask();
      await store.create(t);
      const [leased] = await store.claim('acme', ['cmd'], 1, lease());
      await expect(store.transition('acme', t.id, () => { throw new Error('refused'); })).rejects.toThrow('refused');
      expect((await store.get('acme', t.id))?.status).toBe('IN_PROGRESS');
      const r = await store.transition('acme', t.id, (cur) => {
        const { next, result } = complete(cur!, { workerId: 'w1' }, { status: 'COMPLETED', result: '{"a":1}', error: null, artifacts: [] }, Date.now());
        return { next, result, value: 'done' };
      });
      expect(r).toBe('done');
      expect((await store.getResult('acme', t.id))?.result).toBe('{"a":1}');
      expect(leased?.leaseId).toBeTruthy();
      expect(await store.transition('other', t.id, (cur) => ({ value: cur }))).toBeNull();
    });

    it('wakes a waiting claimer when work arrives', async () => {
      const wait = store.waitForWork('acme', ['cmd'], Date.now() + 5000);
      const t0 = Date.now();
      setTimeout(() => void store.create(newTask()), 50);
      await wait;
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(await store.claim('acme', ['cmd'], 1, lease())).toHaveLength(1);
    });

    it('promotes delayed tasks when due and hands expired leases to the handler', async () => {
      const expired: string[] = [];
      store.onLeaseExpired((ls) => expired.push(...ls.map((l) => l.taskId)));
      const d = newTask({ location: 'DELAYED_ZSET', visibleAtMs: Date.now() + 1000 });
      await store.create(d);
      expect(await store.claim('acme', ['cmd'], 1, lease())).toEqual([]);
      await store.waitForWork('acme', ['cmd'], Date.now() + 3000);
      const [got] = await store.claim('acme', ['cmd'], 1, (t) => leaseTask(t, 'w', 'l1', 1, Date.now()));
      expect(got?.id).toBe(d.id);
      await new Promise((r) => setTimeout(r, 1300));
      expect(expired).toEqual([d.id]);
    });

    it('survives reopen with order, leases and results intact', async () => {
      const a = newTask({ priority: 3 });
      const b = newTask({ priority: 3 });
      const c = newTask();
      for (const t of [a, b, c]) await store.create(t);
      await store.claim('acme', ['cmd'], 1, lease());
      store = await factory.reopen(store);
      expect((await store.get('acme', a.id))?.status).toBe('IN_PROGRESS');
      const got = await store.claim('acme', ['cmd'], 5, lease());
      expect(got.map((t) => t.id)).toEqual([b.id, c.id]);
    });

    it('purges only terminal tasks, with their results', async () => {
      const t = newTask();
      const live = newTask({ priority: 0 });
      await store.create(t);
      await store.claim('acme', ['cmd'], 1, lease());
      await store.create(live);
      await store.transition('acme', t.id, (cur) => {
        const { next, result } = complete(cur!, { workerId: 'w1' }, { status: 'COMPLETED', result: '{}', error: null, artifacts: [] }, Date.now());
        return { next, result, value: null };
      });
      expect(await store.purgeTerminal(Date.now() + 1000, 100)).toBe(1);
      expect(await store.get('acme', t.id)).toBeNull();
      expect(await store.getResult('acme', t.id)).toBeNull();
      expect(await store.get('acme', live.id)).not.toBeNull();
    });
  });
}
