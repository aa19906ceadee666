/**
 * The task state machine of domain/rules.ts (task-model §3), one transition at a time: the states
 * each transition leads to, and the refusals (error codes) in upstream's check order.
 */
import type { CodeqError } from '@codeq/proto/errors';
import type { TaskRecord } from './task.js';
import {
  abandon, assertCanComplete, assertCanNack, cancelForHolder, cancelTask, claimTask, complete, dueAt, dueBefore, heartbeat, isDue,
  leaseIdAt, leaseUntil, promote, redriveTask, retryOrDeadLetter, type LeaseSpec,
} from './rules.js';

const T0 = 1_700_000_000_000;

function task(over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id: 't1', tenantId: 'acme', command: 'CMD', commandKey: 'cmd', payload: '{}', priority: 0, webhook: null,
    status: 'PENDING', location: 'PENDING_LIST', workerId: null, leaseId: null, leaseUntilMs: null, attempts: 0,
    maxAttempts: 3, error: null, resultKey: null, idempotencyKey: null, visibleAtMs: null, seq: 1,
    createdAtMs: T0, updatedAtMs: T0, terminalAtMs: null, lastError: null, cancelRequested: false, ...over,
  };
}

const spec: LeaseSpec = { workerId: 'w1', leaseSeconds: 30, now: T0 + 5, leaseId: '0f8fad5b-d9cb-469f-a165-70867728950e' };
const held = (over: Partial<TaskRecord> = {}) => claimTask(task(over), spec, 0);
const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return (e as CodeqError).code;
  }
  return undefined;
};

describe('rules: claim (LeaseSpec)', () => {
  it('leases a ready task: IN_PROGRESS, held by the worker until now + leaseSeconds, one more attempt', () => {
    const t = held({ attempts: 1 });
    expect(t).toMatchObject({ status: 'IN_PROGRESS', location: 'INPROG_SET', workerId: 'w1', leaseId: spec.leaseId, leaseUntilMs: T0 + 5 + 30_000, attempts: 2, visibleAtMs: null, updatedAtMs: T0 + 5 });
    expect(leaseUntil(spec)).toBe(T0 + 5 + 30_000);
  });

  it('gives every task of a claim its own UUID-shaped lease id, deterministically', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => leaseIdAt(spec, i));
    expect(ids[0]).toBe(spec.leaseId);
    expect(new Set(ids).size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(ids.every((id) => id.slice(0, 28) === spec.leaseId.slice(0, 28))).toBe(true);
    expect(claimTask(task(), spec, 7).leaseId).toBe(leaseIdAt(spec, 7));
    expect(leaseIdAt({ leaseId: 'l1' }, 2)).toBe('l1.2');
  });
});

describe('rules: promote (delayed → ready, due at the start of the second)', () => {
  const delayed = (visibleAtMs: number) => task({ location: 'DELAYED_ZSET', visibleAtMs });

  it('is due from the start of the visible second, not before', () => {
    const visible = T0 + 1_700; // T0 is a whole second
    expect(dueAt(visible)).toBe(T0 + 1_000);
    expect(isDue(visible, T0 + 999)).toBe(false);
    expect(isDue(visible, T0 + 1_000)).toBe(true);
    expect(dueBefore(T0 + 1_000)).toBe(T0 + 2_000); // visible_at < this ⇔ isDue
    expect(promote(delayed(visible), T0 + 999)).toEqual(delayed(visible));
    expect(promote(delayed(visible), T0 + 1_000)).toMatchObject({ status: 'PENDING', location: 'PENDING_LIST', visibleAtMs: null, updatedAtMs: T0 + 1_000 });
  });

  it('leaves tasks that are not delayed unchanged', () => {
    for (const t of [task(), held(), task({ status: 'COMPLETED', location: 'NONE' })]) expect(promote(t, T0 + 60_000)).toBe(t);
  });
});

describe('rules: the holder transitions', () => {
  const me = { workerId: 'w1', leaseId: spec.leaseId };

  it('heartbeat extends the lease of the holder only', () => {
    expect(heartbeat(held(), me, 60, T0 + 10).leaseUntilMs).toBe(T0 + 10 + 60_000);
    expect(codeOf(() => heartbeat(null, me, 60, T0))).toBe('TASK_NOT_FOUND');
    expect(codeOf(() => heartbeat(held(), { workerId: 'w2' }, 60, T0))).toBe('NOT_OWNER');
    expect(codeOf(() => heartbeat(held(), { workerId: 'w1', leaseId: 'other' }, 60, T0))).toBe('LEASE_NOT_HELD');
    expect(codeOf(() => heartbeat(task({ workerId: 'w1' }), { workerId: 'w1' }, 60, T0))).toBe('NOT_IN_PROGRESS');
  });

  it('abandon puts the task back in the ready queue without its lease', () => {
    expect(abandon(held(), me, T0 + 9)).toMatchObject({ status: 'PENDING', location: 'PENDING_LIST', workerId: null, leaseId: null, leaseUntilMs: null, updatedAtMs: T0 + 9 });
  });

  it('a failed delivery is retried later, and dead-lettered once the attempts are used up', () => {
    const first = retryOrDeadLetter(assertCanNack(held(), me), 5, 'boom', T0 + 9);
    expect(first.outcome).toEqual({ kind: 'requeued', delaySeconds: 5 });
    expect(first.next).toMatchObject({ status: 'PENDING', location: 'DELAYED_ZSET', visibleAtMs: T0 + 9 + 5_000, workerId: null, leaseId: null, lastError: 'boom' });
    const last = retryOrDeadLetter(held({ attempts: 2 }), 5, 'boom', T0 + 9);
    expect(last.outcome).toEqual({ kind: 'dlq', error: 'boom' });
    expect(last.next).toMatchObject({ status: 'FAILED', location: 'DLQ_SET', error: 'boom', terminalAtMs: T0 + 9 });
    expect(redriveTask(last.next, T0 + 20)).toMatchObject({ status: 'PENDING', location: 'PENDING_LIST', attempts: 0, error: null, terminalAtMs: null, lastError: 'boom' });
  });

  it('completes with a result record; a resubmission for the same lease replays it', () => {
    const t = held();
    expect(assertCanComplete(t, me, () => null)).toEqual({ replay: null });
    const { next, result } = complete(t, me, { status: 'COMPLETED', result: '{"ok":1}', error: null, artifacts: [] }, T0 + 50);
    expect(next).toMatchObject({ status: 'COMPLETED', location: 'NONE', workerId: null, leaseId: null, terminalAtMs: T0 + 50 });
    expect(result).toMatchObject({ taskId: 't1', status: 'COMPLETED', leaseId: spec.leaseId, workerId: 'w1', artifacts: null });
    expect(assertCanComplete(next, me, () => result)).toEqual({ replay: result });
    expect(codeOf(() => assertCanComplete(next, { workerId: 'w1', leaseId: 'other' }, () => result))).toBe('LEASE_NOT_HELD');
  });
});

describe('rules: cancellation', () => {
  it('cancels a pending task at once, requests it for a held one, refuses a finished one', () => {
    expect(cancelTask(task(), T0)).toMatchObject({ kind: 'cancelled', next: { status: 'CANCELLED', terminalAtMs: T0 }, result: { status: 'CANCELLED' } });
    const requested = cancelTask(held(), T0);
    expect(requested).toMatchObject({ kind: 'requested', next: { status: 'IN_PROGRESS', cancelRequested: true } });
    const t = (requested as { next: TaskRecord }).next;
    expect(cancelTask(t, T0).kind).toBe('unchanged');
    expect(codeOf(() => cancelForHolder(t, { workerId: 'w2' }, T0))).toBe('NOT_OWNER');
    expect(cancelForHolder(t, { workerId: 'w1', leaseId: spec.leaseId }, T0)?.next.status).toBe('CANCELLED');
    expect(cancelForHolder(held(), { workerId: 'w1' }, T0)).toBeNull();
    expect(codeOf(() => cancelTask(task({ status: 'COMPLETED', location: 'NONE' }), T0))).toBe('TASK_FINISHED');
    expect(codeOf(() => heartbeat(task({ status: 'CANCELLED', location: 'NONE' }), { workerId: 'w1' }, 1, T0))).toBe('CANCELLED');
  });
});
