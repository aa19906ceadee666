/**
 * The TaskStore contract: every engine (SQLite now, PostgreSQL later) must pass this suite.
 * It drives the port directly with domain transitions, against a real database.
 */
import { randomUUID } from 'node:crypto';
import type { TaskStore } from '../src/domain/task-store.js';
import type { TaskRecord } from '../src/domain/task.js';
import { assertCanReport, cancelForHolder, cancelTask, complete, deadLetterResult, leaseIdAt, retryOrDeadLetter, type LeaseSpec } from '../src/domain/rules.js';

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
    const lease = (w = 'w1'): LeaseSpec => ({ workerId: w, leaseSeconds: 60, now: Date.now(), leaseId: randomUUID() });

    it('creates, reads and isolates by tenant', async () => {
      const t = newTask();
      const out = await store.create(t);
      expect(out.created).toBe(true);
      expect((await store.get('acme', t.id))?.id).toBe(t.id);
      expect(await store.get('other', t.id)).toBeNull();
    });

    it('keeps the W3C trace context of a task through claim, completion and a reopen (tracing)', async () => {
      const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const traced = newTask({ traceParent: tp, traceState: 'congo=t61rcWkgMzE' });
      const plain = newTask();
      // Concurrent creates: the engines may write them in one batch.
      await Promise.all([store.create(traced), store.create(plain)]);
      expect(await store.get('acme', traced.id)).toMatchObject({ traceParent: tp, traceState: 'congo=t61rcWkgMzE' });
      const p = await store.get('acme', plain.id);
      expect([p?.traceParent ?? null, p?.traceState ?? null]).toEqual([null, null]); // absent (memory) or NULL (row)
      const claimed = await store.claim('acme', ['cmd'], 10, lease());
      expect(claimed.find((t) => t.id === traced.id)).toMatchObject({ status: 'IN_PROGRESS', traceParent: tp, traceState: 'congo=t61rcWkgMzE' });
      expect(claimed.find((t) => t.id === plain.id)?.traceParent ?? null).toBeNull();
      await store.transition('acme', traced.id, (cur) => {
        const { next, result } = complete(cur!, { workerId: 'w1' }, { status: 'COMPLETED', result: '{}', error: null, artifacts: [] }, Date.now());
        return { next, result, value: null };
      });
      store = await factory.reopen(store);
      expect(await store.get('acme', traced.id)).toMatchObject({ status: 'COMPLETED', traceParent: tp, traceState: 'congo=t61rcWkgMzE' });
    });

    it('leases a claim batch as the LeaseSpec says: task i in claim order under leaseIdAt(spec, i), across commands', async () => {
      const a = newTask({ commandKey: 'a', priority: 3 });
      const b = newTask({ commandKey: 'b', priority: 3 });
      const a2 = newTask({ commandKey: 'a', priority: 1 });
      for (const t of [a, b, a2]) await store.create(t);
      const spec: LeaseSpec = { workerId: 'w9', leaseSeconds: 45, now: Date.now(), leaseId: randomUUID() };
      const got = await store.claim('acme', ['a', 'b'], 10, spec);
      expect(got).toHaveLength(3);
      got.forEach((t, i) => expect(t).toMatchObject({ leaseId: leaseIdAt(spec, i), workerId: 'w9', leaseUntilMs: spec.now + 45_000, updatedAtMs: spec.now, attempts: 1 }));
      expect(new Set(got.map((t) => t.leaseId)).size).toBe(3);
      for (const t of got) expect((await store.get('acme', t.id))?.leaseId).toBe(t.leaseId);
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

    it('claims the highest priority across commands first (ADR 0007)', async () => {
      const a1 = newTask({ command: 'A', commandKey: 'a', priority: 1 });
      const b9 = newTask({ command: 'B', commandKey: 'b', priority: 9 });
      const a5 = newTask({ command: 'A', commandKey: 'a', priority: 5 });
      const b0 = newTask({ command: 'B', commandKey: 'b', priority: 0 });
      for (const t of [a1, b9, a5, b0]) await store.create(t);
      // b9 was created after a1 and is in the second command: it still goes first.
      expect((await store.claim('acme', ['a', 'b'], 1, lease())).map((t) => t.id)).toEqual([b9.id]);
      expect((await store.claim('acme', ['a', 'b'], 2, lease())).map((t) => t.id)).toEqual([a5.id, a1.id]);
      expect((await store.claim('acme', ['missing', 'b'], 5, lease())).map((t) => t.id)).toEqual([b0.id]);
    });

    it('serves commands of equal priority round-robin, FIFO within each (ADR 0007)', async () => {
      const as = [1, 2, 3, 4].map(() => newTask({ command: 'A', commandKey: 'a' }));
      const bs = [1, 2].map(() => newTask({ command: 'B', commandKey: 'b' }));
      for (const t of [...as, ...bs]) await store.create(t); // A's backlog is older than B's
      const one = async () => (await store.claim('acme', ['a', 'b'], 1, lease()))[0]?.id;
      const order: (string | undefined)[] = [];
      for (let i = 0; i < 6; i++) order.push(await one());
      expect(order).toEqual([as[0]!.id, bs[0]!.id, as[1]!.id, bs[1]!.id, as[2]!.id, as[3]!.id]);
      // A batch claim takes from every ready command, each in FIFO order.
      const more = [...[1, 2, 3].map(() => newTask({ command: 'A', commandKey: 'a' })), ...[1, 2, 3].map(() => newTask({ command: 'B', commandKey: 'b' }))];
      for (const t of more) await store.create(t);
      const batch = await store.claim('acme', ['a', 'b'], 4, lease());
      expect(batch.filter((t) => t.commandKey === 'a').map((t) => t.id)).toEqual(more.slice(0, 2).map((t) => t.id));
      expect(batch.filter((t) => t.commandKey === 'b').map((t) => t.id)).toEqual(more.slice(3, 5).map((t) => t.id));
    });

    it('keeps task notes: progress of the holder, a bounded log, per tenant, across reopen, purged with the task', async () => {
      const t = newTask();
      await store.create(t);
      const [leased] = await store.claim('acme', ['cmd'], 1, lease());
      const holder = { workerId: 'w1', leaseId: leased!.leaseId! };
      const guard = (actor: { workerId: string; leaseId?: string }) => (cur: TaskRecord | null) => assertCanReport(cur, actor);
      await store.writeNotes('acme', t.id, guard(holder), { progress: '{"pct":5}', maxLines: 200 }, Date.now());
      await store.writeNotes('acme', t.id, guard(holder), { progress: '42', maxLines: 200 }, Date.now());
      expect(await store.progress('acme', t.id)).toMatchObject({ value: '42', attempt: 1 });
      // Refused: another lease, another worker, another tenant; nothing is written.
      await expect(store.writeNotes('acme', t.id, guard({ workerId: 'w1', leaseId: 'old' }), { progress: '1', maxLines: 200 }, Date.now())).rejects.toMatchObject({ code: 'LEASE_NOT_HELD' });
      await expect(store.writeNotes('acme', t.id, guard({ workerId: 'w2' }), { progress: '1', maxLines: 200 }, Date.now())).rejects.toMatchObject({ code: 'NOT_OWNER' });
      await expect(store.writeNotes('other', t.id, guard(holder), { progress: '1', maxLines: 200 }, Date.now())).rejects.toMatchObject({ code: 'TASK_NOT_FOUND' });
      expect(await store.progress('other', t.id)).toBeNull();
      expect((await store.progress('acme', t.id))?.value).toBe('42');
      // 250 lines in three appends: the last 200 are kept, numbered from 1 by arrival.
      const lines = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ level: 'info' as const, message: `line ${from + i}`, atMs: Date.now() }));
      await store.writeNotes('acme', t.id, guard(holder), { logs: lines(1, 100), maxLines: 200 }, Date.now());
      await store.writeNotes('acme', t.id, guard(holder), { logs: lines(101, 100), maxLines: 200 }, Date.now());
      await store.writeNotes('acme', t.id, guard(holder), { logs: lines(201, 50), maxLines: 200 }, Date.now());
      const all = await store.logs('acme', t.id, 0, 1000);
      expect(all).toHaveLength(200);
      expect(all[0]).toMatchObject({ n: 51, message: 'line 51', attempt: 1, level: 'info' });
      expect(all[199]).toMatchObject({ n: 250, message: 'line 250' });
      expect((await store.logs('acme', t.id, 240, 5)).map((l) => l.n)).toEqual([241, 242, 243, 244, 245]);
      expect(await store.logs('other', t.id, 0, 1000)).toEqual([]);
      store = await factory.reopen(store);
      expect((await store.progress('acme', t.id))?.value).toBe('42');
      expect(await store.logs('acme', t.id, 0, 1000)).toHaveLength(200);
      await store.transition('acme', t.id, (cur) => {
        const { next, result } = complete(cur!, holder, { status: 'COMPLETED', result: '{}', error: null, artifacts: [] }, Date.now());
        return { next, result, value: null };
      });
      // A finished task takes no more notes (its lease ended: the heartbeat's answer).
      await expect(store.writeNotes('acme', t.id, guard(holder), { progress: '99', maxLines: 200 }, Date.now())).rejects.toMatchObject({ code: 'LEASE_NOT_HELD' });
      expect((await store.progress('acme', t.id))?.value).toBe('42');
      expect(await store.purgeTerminal(Date.now() + 1000, 100)).toBe(1);
      expect(await store.progress('acme', t.id)).toBeNull();
      expect(await store.logs('acme', t.id, 0, 1000)).toEqual([]);
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
      const [got] = await store.claim('acme', ['cmd'], 1, { workerId: 'w', leaseSeconds: 1, now: Date.now(), leaseId: 'l1' });
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

    // --- operator API (issue 14) -----------------------------------------------------------

    /** Dead-letter one claimed task of `cmd` (maxAttempts 1) through a transition. */
    const deadLetter = async (over: Partial<TaskRecord> = {}) => {
      const t = newTask({ maxAttempts: 1, ...over });
      await store.create(t);
      const [leased] = await store.claim(t.tenantId, [t.commandKey], 1, lease());
      expect(leased?.id).toBe(t.id);
      await store.transition(t.tenantId, t.id, (cur) => {
        const { next } = retryOrDeadLetter(cur!, 0, 'broken', Date.now());
        return { next, result: deadLetterResult(next, 'broken', Date.now()), value: null };
      });
      return t;
    };

    it('lists newest first with a keyset cursor, stable while tasks are being created', async () => {
      const base = Date.now() - 100_000;
      const made: TaskRecord[] = [];
      // several tasks share a millisecond: the id breaks the tie
      for (let i = 0; i < 12; i++) made.push(newTask({ createdAtMs: base + Math.floor(i / 3) }));
      for (const t of made) await store.create(t);
      await store.create(newTask({ tenantId: 'other', createdAtMs: base + 50 }));
      const expected = [...made].sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? 1 : -1)).map((t) => t.id);
      const seen: string[] = [];
      let after: { createdAtMs: number; id: string } | undefined;
      for (let page = 0; page < 10; page++) {
        const rows = await store.list({ tenantId: 'acme', limit: 5, ...(after ? { after } : {}) });
        seen.push(...rows.map((r) => r.id));
        // creates in between pages are newer than any cursor: never seen by later pages
        await store.create(newTask({ createdAtMs: Date.now() }));
        if (rows.length < 5) break;
        const last = rows[rows.length - 1]!;
        after = { createdAtMs: last.createdAtMs, id: last.id };
      }
      expect(seen).toEqual(expected);
    });

    it('lists by status (DELAYED apart from PENDING), command, dead letters and creation time', async () => {
      const ready = newTask();
      const delayed = newTask({ location: 'DELAYED_ZSET', visibleAtMs: Date.now() + 600_000 });
      const other = newTask({ command: 'Other', commandKey: 'other' });
      for (const t of [ready, delayed, other]) await store.create(t);
      const dead = await deadLetter({ command: 'Dead', commandKey: 'dead' });
      const ids = async (q: Partial<Parameters<TaskStore['list']>[0]>) => (await store.list({ tenantId: 'acme', limit: 50, ...q })).map((t) => t.id).sort();
      expect(await ids({ statuses: ['PENDING'] })).toEqual([ready.id, other.id].sort());
      expect(await ids({ statuses: ['DELAYED'] })).toEqual([delayed.id]);
      expect(await ids({ statuses: ['PENDING', 'DELAYED'], commandKey: 'cmd' })).toEqual([ready.id, delayed.id].sort());
      expect(await ids({ statuses: ['FAILED'] })).toEqual([dead.id]);
      expect(await ids({ dlq: true })).toEqual([dead.id]);
      expect(await ids({ dlq: true, commandKey: 'cmd' })).toEqual([]);
      expect(await ids({ statuses: ['COMPLETED', 'CANCELLED', 'IN_PROGRESS'] })).toEqual([]);
      expect(await ids({ createdAfterMs: Date.now() + 60_000 })).toEqual([]);
      expect((await ids({ createdBeforeMs: Date.now() + 60_000 })).length).toBe(4);
      const [row] = await store.list({ tenantId: 'acme', limit: 1, dlq: true });
      expect(row).toMatchObject({ status: 'FAILED', location: 'DLQ_SET', lastError: 'broken', attempts: 1, payload: '{}' });
      expect(await store.list({ tenantId: 'other', limit: 50 })).toEqual([]);
    });

    it('cancels a ready task for good, and a cancel racing a result has exactly one winner', async () => {
      const t = newTask();
      await store.create(t);
      await store.transition('acme', t.id, (cur) => {
        const out = cancelTask(cur, Date.now());
        if (out.kind !== 'cancelled') throw new Error(out.kind);
        return { next: out.next, result: out.result, value: null };
      });
      expect(await store.claim('acme', ['cmd'], 5, lease())).toEqual([]);
      expect((await store.getResult('acme', t.id))?.status).toBe('CANCELLED');
      expect(await store.counts('acme', 'cmd')).toMatchObject({ readyByPriority: new Array(10).fill(0), inProgress: 0 });

      for (let i = 0; i < 5; i++) {
        const r = newTask();
        await store.create(r);
        const [leased] = await store.claim('acme', ['cmd'], 1, lease('w1'));
        const now = Date.now();
        const result = store.transition('acme', r.id, (cur) => {
          const c = cancelForHolder(cur, { workerId: 'w1', leaseId: leased!.leaseId! }, now);
          if (c) return { next: c.next, result: c.result, value: 'cancelled' };
          const { next, result: rec } = complete(cur!, { workerId: 'w1', leaseId: leased!.leaseId! }, { status: 'COMPLETED', result: '{}', error: null, artifacts: [] }, now);
          return { next, result: rec, value: 'completed' };
        });
        const cancel = store.transition('acme', r.id, (cur) => {
          const out = cancelTask(cur, now);
          return out.kind === 'requested' ? { next: out.next, value: 'requested' } : { value: out.kind };
        });
        const [res, can] = await Promise.allSettled([result, cancel]);
        const final = await store.get('acme', r.id);
        if (res.status === 'fulfilled' && res.value === 'completed') {
          expect(final?.status).toBe('COMPLETED');
          expect(can.status).toBe('rejected'); // TASK_FINISHED
        } else {
          expect(can).toEqual({ status: 'fulfilled', value: 'requested' });
          expect(res).toEqual({ status: 'fulfilled', value: 'cancelled' });
          expect(final?.status).toBe('CANCELLED');
        }
        expect((await store.counts('acme', 'cmd')).inProgress).toBe(0);
      }
    });

    it('pauses claims of a command durably and wakes claimers on resume', async () => {
      const t = newTask();
      await store.create(t);
      await store.setPaused('acme', 'cmd', 'CMD', true);
      await store.setPaused('acme', 'cmd', 'CMD', true); // idempotent
      expect(await store.claim('acme', ['cmd'], 5, lease())).toEqual([]);
      expect(await store.pausedCommands('acme')).toEqual([{ tenantId: 'acme', commandKey: 'cmd', command: 'CMD' }]);
      expect(await store.pausedCommands('other')).toEqual([]);
      store = await factory.reopen(store);
      expect(await store.claim('acme', ['cmd'], 5, lease())).toEqual([]);
      const wait = store.waitForWork('acme', ['cmd'], Date.now() + 10_000);
      await store.setPaused('acme', 'cmd', 'CMD', false);
      await wait;
      expect((await store.claim('acme', ['cmd'], 5, lease())).map((x) => x.id)).toEqual([t.id]);
      expect(await store.pausedCommands()).toEqual([]);
    });

    it('redrives dead letters once, by ids or by command, in the tenant only', async () => {
      const a = await deadLetter();
      const b = await deadLetter();
      const foreign = await deadLetter({ tenantId: 'other' });
      expect((await store.counts('acme', 'cmd')).dlq).toBe(2);
      const moved = await store.redrive('acme', { ids: [a.id, a.id, foreign.id, 'missing'] }, Date.now());
      expect(moved.map((t) => t.id)).toEqual([a.id]);
      expect(moved[0]).toMatchObject({ status: 'PENDING', location: 'PENDING_LIST', attempts: 0, error: null, terminalAtMs: null });
      expect(await store.redrive('acme', { ids: [a.id] }, Date.now())).toEqual([]);
      expect(await store.getResult('acme', a.id)).toBeNull();
      expect(await store.counts('acme', 'cmd')).toMatchObject({ dlq: 1 });
      expect((await store.counts('acme', 'cmd')).readyByPriority[0]).toBe(1);
      // both at once: each task moves exactly once
      const [x, y] = await Promise.all([store.redrive('acme', { commandKey: 'cmd', limit: 10 }, Date.now()), store.redrive('acme', { commandKey: 'cmd', limit: 10 }, Date.now())]);
      expect([...x, ...y].map((t) => t.id)).toEqual([b.id]);
      expect((await store.counts('acme', 'cmd')).dlq).toBe(0);
      const got = await store.claim('acme', ['cmd'], 5, lease());
      expect(got.map((t) => t.id).sort()).toEqual([a.id, b.id].sort());
      expect(got.every((t) => t.attempts === 1)).toBe(true);
      expect((await store.counts('other', 'cmd')).dlq).toBe(1);
    });
  });
}
