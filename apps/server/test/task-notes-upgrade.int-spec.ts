/**
 * Existing databases upgrade on start (issue 17 item 3): a database at the schema before the task
 * notes migration, holding a task in progress, is opened by the current engine; the migration
 * adds the notes tables, and the old task takes progress and log lines.
 * SQLite always; PostgreSQL in the PostgreSQL pass.
 */
import type { TaskStore } from '../src/domain/task-store.js';
import { assertCanReport } from '../src/domain/rules.js';
import { PG_URL } from './pg.js';
import { upgradePostgres, upgradeSqlite } from './upgrade.js';

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
    await upgradeSqlite((db) => {
      db.exec(`DROP TABLE task_progress; DROP TABLE task_logs`);
      db.prepare(`DELETE FROM migrations WHERE name = 'TaskNotes1764600000000'`).run();
      db.prepare(`INSERT INTO tasks (${COLUMNS}) VALUES (${ROW.map(() => '?').join(', ')})`).run(...ROW);
    }, checkUpgraded);
  });
});

const pgDescribe = PG_URL ? describe : describe.skip;
if (!PG_URL) process.stderr.write('task-notes-upgrade.int-spec: PostgreSQL case skipped, CODEQ_TEST_PG_URL is not set (scripts/test.sh sets it)\n');

pgDescribe('upgrade of an existing PostgreSQL database (task notes)', () => {
  it('adds the notes tables on start; an old task in progress takes notes', async () => {
    await upgradePostgres(`codeq_upgrade_notes_${process.pid}`, async (c) => {
      await c.query(`DROP TABLE codeq_progress; DROP TABLE codeq_logs`);
      await c.query(`DELETE FROM codeq_migrations WHERE name = 'PostgresTaskNotes1764600000000'`);
      await c.query(`INSERT INTO codeq_tasks (${COLUMNS}) VALUES (${ROW.map((_, i) => `$${i + 1}`).join(', ')})`, [...ROW]);
    }, checkUpgraded);
  });
});
