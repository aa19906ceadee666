import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskStore } from '../src/domain/task-store.js';
import { SqliteTaskStore } from '../src/persistence/sqlite/sqlite-task-store.js';
import { describeTaskStoreContract } from './task-store.contract.js';

const dirs = new Map<TaskStore, string>();

// SQLite only, so the PostgreSQL pass of scripts/test.sh (CODEQ_TEST_PG_URL set) does not repeat it:
// the same contract runs on PostgreSQL in test/postgres-task-store.int-spec.ts.
if (process.env['CODEQ_TEST_PG_URL']) {
  describe.skip('TaskStore contract: SqliteTaskStore (SQLite pass only)', () => {
    it('runs in the SQLite pass', () => undefined);
  });
} else describeTaskStoreContract('SqliteTaskStore', {
  async open() {
    const dir = await mkdtemp(join(tmpdir(), 'codeq-store-'));
    const s = new SqliteTaskStore({ path: dir, fsyncOnCommit: false });
    await s.open();
    dirs.set(s, dir);
    return s;
  },
  async reopen(store) {
    const dir = dirs.get(store)!;
    await store.close();
    dirs.delete(store);
    const s = new SqliteTaskStore({ path: dir, fsyncOnCommit: false });
    await s.open();
    dirs.set(s, dir);
    return s;
  },
  async dispose(store) {
    await store.close();
    const dir = dirs.get(store);
    dirs.delete(store);
    if (dir) await rm(dir, { recursive: true, force: true });
  },
});
