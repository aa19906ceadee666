/**
 * Existing databases upgrade on start (issue 17 item 3): a database at the schema before the task
 * notes migration, holding a task in progress, is opened by the current engine; the migration
 * adds the notes tables, and the old task takes progress and log lines.
 * SQLite always; PostgreSQL in the PostgreSQL pass.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type * as PgModule from 'pg';
import type { TaskStore } from '../src/domain/task-store.js';
import { assertCanReport } from '../src/domain/rules.js';
import { SqliteTaskStore } from '../src/persistence/sqlite/sqlite-task-store.js';
import { PostgresTaskStore } from '../src/persistence/postgres/postgres-task-store.js';
import { PG_URL, dropDatabase, ensureDatabase } from './pg.js';

const COLUMNS = `id, tenant_id, command, command_key, payload, priority, status, location, worker_id, lease_id, lease_until, attempts, max_attempts, seq, created_at, updated_at`;
const now = Date.now();
const ROW = ['old-running', 'acme', 'Old', 'old', '{}', 0, 'IN_PROGRESS', 'INPROG_SET', 'w1', 'lease-1', now + 600_000, 1, 5, 1, now - 1000, now - 1000] as const;

async function checkUpgraded(store: TaskStore): Promise<void> {
  expect(await store.progress('acme', 'old-running')).toBeNull();
  expect(await store.logs('acme', 'old-running', 0, 10)).toEqual([]);
  const guard = (t: Parameters<typeof assertCanReport>[0]) => assertCanReport(t, { workerId: 'w1', leaseId: 'lease-1' });
  await store.writeNotes('acme', 'old-running', guard, { progress: '7', logs: [{ level: 'info', message: 'after the upgrade', atMs: Date.now() }], maxLines: 200 }, Date.now());
  expect(await store.progress('acme', 'old-running')).toMatchObject({ value: '7', attempt: 1 });
  expect((await store.logs('acme', 'old-running', 0, 10)).map((l) => l.message)).toEqual(['after the upgrade']);
}

describe('upgrade of an existing SQLite database (task notes)', () => {
  it('adds the notes tables on start; an old task in progress takes notes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'codeq-upgrade-notes-'));
    try {
      const first = new SqliteTaskStore({ path: dir, fsyncOnCommit: false });
      await first.open();
      await first.close();
      const db = new Database(join(dir, 'codeq.db'));
      db.exec(`DROP TABLE task_progress; DROP TABLE task_logs`);
      db.prepare(`DELETE FROM migrations WHERE name = 'TaskNotes1764600000000'`).run();
      db.prepare(`INSERT INTO tasks (${COLUMNS}) VALUES (${ROW.map(() => '?').join(', ')})`).run(...ROW);
      db.close();
      const store = new SqliteTaskStore({ path: dir, fsyncOnCommit: false });
      await store.open();
      try {
        await checkUpgraded(store);
      } finally {
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

const pgDescribe = PG_URL ? describe : describe.skip;
if (!PG_URL) process.stderr.write('task-notes-upgrade.int-spec: PostgreSQL case skipped, CODEQ_TEST_PG_URL is not set (scripts/test.sh sets it)\n');

pgDescribe('upgrade of an existing PostgreSQL database (task notes)', () => {
  it('adds the notes tables on start; an old task in progress takes notes', async () => {
    const name = `codeq_upgrade_notes_${process.pid}`;
    const url = await ensureDatabase(name);
    try {
      const first = new PostgresTaskStore({ url, poolSize: 2 });
      await first.open();
      await first.close();
      const pg = createRequire(import.meta.url)('pg') as typeof PgModule;
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP TABLE codeq_progress; DROP TABLE codeq_logs`);
      await c.query(`DELETE FROM codeq_migrations WHERE name = 'PostgresTaskNotes1764600000000'`);
      await c.query(`INSERT INTO codeq_tasks (${COLUMNS}) VALUES (${ROW.map((_, i) => `$${i + 1}`).join(', ')})`, [...ROW]);
      await c.end();
      const store = new PostgresTaskStore({ url, poolSize: 2 });
      await store.open();
      try {
        await checkUpgraded(store);
      } finally {
        await store.close();
      }
    } finally {
      await dropDatabase(name);
    }
  });
});
