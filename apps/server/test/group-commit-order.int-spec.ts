/**
 * Issue 12 item 2: within one group commit, deletes run before inserts. Purging a finished task and
 * re-creating its idempotency key in the same event-loop turn must commit both (the UNIQUE index on
 * (tenant, idempotency key) would otherwise fail the whole batch for every caller of that turn).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { complete } from '../src/domain/rules.js';
import { SqliteTaskStore } from '../src/persistence/sqlite/sqlite-task-store.js';
import { newTask } from './task-store.contract.js';

(process.env['CODEQ_TEST_PG_URL'] ? describe.skip : describe)('group commit order (issue 12 item 2)', () => {
  it('purge and re-create of an idempotency key in one turn both commit', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'codeq-order-'));
    let store = new SqliteTaskStore({ path: dir, fsyncOnCommit: false });
    await store.open();
    try {
      const old = newTask({ idempotencyKey: 'k' });
      await store.create(old);
      await store.claim('acme', ['cmd'], 1, { workerId: 'w1', leaseSeconds: 60, now: Date.now(), leaseId: randomUUID() });
      await store.transition('acme', old.id, (cur) => {
        const { next, result } = complete(cur!, { workerId: 'w1' }, { status: 'COMPLETED', result: '{}', error: null, artifacts: [] }, Date.now());
        return { next, result, value: null };
      });
      const bystander = newTask();
      // The purge marks its deletes after one microtask; the create and a bystander's create join
      // the same turn, before the writer is handed the batch (setImmediate).
      const purged = store.purgeTerminal(Date.now() + 1000, 100);
      for (let i = 0; i < 20; i++) await Promise.resolve();
      const fresh = newTask({ idempotencyKey: 'k' });
      const created = store.create(fresh);
      const other = store.create(bystander);
      expect(await purged).toBe(1);
      expect((await created).created).toBe(true);
      expect((await other).created).toBe(true);
      expect(store.healthy()).toBe(true);

      await store.close();
      store = new SqliteTaskStore({ path: dir, fsyncOnCommit: false });
      await store.open();
      expect(await store.get('acme', old.id)).toBeNull();
      expect((await store.get('acme', fresh.id))?.idempotencyKey).toBe('k');
      expect(await store.get('acme', bystander.id)).not.toBeNull();
      const replay = await store.create(newTask({ idempotencyKey: 'k' }));
      expect(replay).toMatchObject({ created: false, task: { id: fresh.id } });
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
