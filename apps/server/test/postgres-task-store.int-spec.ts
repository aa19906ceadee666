/**
 * The TaskStore contract on the PostgreSQL engine (a fresh database per store on the server of
 * CODEQ_TEST_PG_URL). Without CODEQ_TEST_PG_URL this file is skipped, and says so; scripts/test.sh
 * runs the PostgreSQL pass with a throwaway server.
 */
import type { TaskStore } from '../src/domain/task-store.js';
import { PostgresTaskStore } from '../src/persistence/postgres/postgres-task-store.js';
import { describeTaskStoreContract } from './task-store.contract.js';
import { PG_URL, dropDatabase, ensureDatabase } from './pg.js';

const dbs = new Map<TaskStore, string>();
let n = 0;

if (!PG_URL) {
  process.stderr.write('postgres-task-store.int-spec: skipped, CODEQ_TEST_PG_URL is not set (scripts/test.sh sets it for the PostgreSQL pass)\n');
  describe.skip('TaskStore contract: PostgresTaskStore (needs CODEQ_TEST_PG_URL)', () => {
    it('runs against PostgreSQL', () => undefined);
  });
} else {
  describeTaskStoreContract('PostgresTaskStore', {
    async open() {
      const name = `codeq_contract_${process.pid}_${n++}`;
      const s = new PostgresTaskStore({ url: await ensureDatabase(name), poolSize: 4 });
      await s.open();
      dbs.set(s, name);
      return s;
    },
    async reopen(store) {
      const name = dbs.get(store)!;
      await store.close();
      dbs.delete(store);
      const s = new PostgresTaskStore({ url: await ensureDatabase(name), poolSize: 4 });
      await s.open();
      dbs.set(s, name);
      return s;
    },
    async dispose(store) {
      await store.close();
      const name = dbs.get(store);
      dbs.delete(store);
      if (name) await dropDatabase(name);
    },
  });
}
