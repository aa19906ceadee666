import { RecordCache } from './record-cache.js';
import type { TaskRecord } from '../../domain/task.js';

function rec(id: string, over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id, tenantId: 'acme', command: 'CMD', commandKey: 'cmd', payload: '{}', priority: 0, webhook: null,
    status: 'PENDING', location: 'PENDING_LIST', workerId: null, leaseId: null, leaseUntilMs: null, attempts: 0,
    maxAttempts: 5, error: null, resultKey: null, idempotencyKey: null, visibleAtMs: null, seq: 0,
    createdAtMs: 0, updatedAtMs: 0, terminalAtMs: null, lastError: null, cancelRequested: false, ...over,
  };
}

describe('RecordCache (committed records of live tasks, issue 13)', () => {
  it('holds the newest committed state and forgets terminal and deleted tasks', () => {
    const c = new RecordCache();
    c.committed('a', rec('a'));
    c.committed('a', rec('a', { status: 'IN_PROGRESS', location: 'INPROG_SET', attempts: 1 }));
    expect(c.get('a')?.status).toBe('IN_PROGRESS');
    expect(c.size).toBe(1);
    c.committed('a', rec('a', { status: 'COMPLETED', location: 'NONE', terminalAtMs: 1 }));
    expect(c.get('a')).toBeUndefined();
    c.committed('b', rec('b'));
    c.committed('b', null);
    expect(c.get('b')).toBeUndefined();
    expect(c.size).toBe(0);
    expect(c.heldBytes).toBe(0);
  });

  it('evicts the least recently committed records beyond the count cap', () => {
    const c = new RecordCache({ maxRecords: 3 });
    for (const id of ['a', 'b', 'c']) c.committed(id, rec(id));
    c.committed('a', rec('a', { attempts: 1 })); // a is the newest now
    c.committed('d', rec('d'));
    expect(['a', 'b', 'c', 'd'].filter((id) => c.get(id))).toEqual(['a', 'c', 'd']);
  });

  it('evicts beyond the byte cap and never holds a record larger than the cap', () => {
    const c = new RecordCache({ maxBytes: 10_000 });
    c.committed('big', rec('big', { payload: 'x'.repeat(6000) })); // ~12 kB
    expect(c.get('big')).toBeUndefined();
    c.committed('a', rec('a', { payload: 'x'.repeat(2000) }));
    c.committed('b', rec('b', { payload: 'x'.repeat(2000) }));
    c.committed('c', rec('c', { payload: 'x'.repeat(2000) }));
    expect(c.heldBytes).toBeLessThanOrEqual(10_000);
    expect(c.get('a')).toBeUndefined();
    expect(c.get('c')?.id).toBe('c');
    c.clear();
    expect([c.size, c.heldBytes]).toEqual([0, 0]);
  });
});
