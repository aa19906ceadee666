/**
 * Existing databases upgrade on start (issue 14): a database at the schema before the operator API
 * migration, holding tasks, is opened by the current engine; the migration adds the columns,
 * indexes and pause table, and the old tasks are listed, cancellable and redrivable.
 * SQLite always; PostgreSQL in the PostgreSQL pass.
 */
import type { TaskStore } from '../src/domain/task-store.js';
import { cancelTask } from '../src/domain/rules.js';
import { PG_URL } from './pg.js';
import { upgradePostgres, upgradeSqlite } from './upgrade.js';

const OLD_COLUMNS = `id, tenant_id, command, command_key, payload, priority, status, location, attempts, max_attempts, error, seq, created_at, updated_at, terminal_at`;
const now = Date.now();
/** Rows as the previous schema stored them: a ready task and a dead letter. */
const OLD_ROWS = [
  ['old-ready', 'acme', 'Old', 'old', '{"n":1}', 0, 'PENDING', 'PENDING_LIST', 0, 5, null, 1, now - 2000, now - 2000, null],
  ['old-dead', 'acme', 'Old', 'old', '{"n":2}', 0, 'FAILED', 'DLQ_SET', 5, 5, 'MAX_ATTEMPTS', 2, now - 1000, now - 1000, now - 1000],
] as const;

async function checkUpgraded(store: TaskStore): Promise<void> {
  const rows = await store.list({ tenantId: 'acme', limit: 10 });
  expect(rows.map((r) => r.id)).toEqual(['old-dead', 'old-ready']);
  expect(rows[0]).toMatchObject({ lastError: null, cancelRequested: false, error: 'MAX_ATTEMPTS' });
  expect((await store.list({ tenantId: 'acme', limit: 10, dlq: true })).map((r) => r.id)).toEqual(['old-dead']);
  await store.setPaused('acme', 'old', 'Old', true);
  expect(await store.pausedCommands('acme')).toHaveLength(1);
  await store.setPaused('acme', 'old', 'Old', false);
  expect((await store.redrive('acme', { ids: ['old-dead'] }, Date.now())).map((t) => t.id)).toEqual(['old-dead']);
  const c = await store.transition('acme', 'old-ready', (t) => {
    const out = cancelTask(t, Date.now());
    return out.kind === 'cancelled' ? { next: out.next, result: out.result, value: out.next.status } : { value: 'unchanged' };
  });
  expect(c).toBe('CANCELLED');
  expect((await store.get('acme', 'old-ready'))?.status).toBe('CANCELLED');
}

describe('upgrade of an existing SQLite database', () => {
  it('adds the operator columns, indexes and table on start; old tasks work', async () => {
    // The current schema, taken back to before the operator migration (as a previous release left it).
    await upgradeSqlite((db) => {
      for (const i of ['tasks_dlq_command', 'tasks_dlq', 'tasks_list_command', 'tasks_list_status']) db.exec(`DROP INDEX "${i}"`);
      db.exec(`DROP TABLE paused_commands; ALTER TABLE tasks DROP COLUMN cancel_requested; ALTER TABLE tasks DROP COLUMN last_error`);
      db.prepare(`DELETE FROM migrations WHERE name = 'OperatorApi1764500000000'`).run();
      const ins = db.prepare(`INSERT INTO tasks (${OLD_COLUMNS}) VALUES (${OLD_ROWS[0].map(() => '?').join(', ')})`);
      for (const r of OLD_ROWS) ins.run(...r);
      expect((db.prepare(`SELECT name FROM pragma_table_info('tasks') WHERE name = 'last_error'`).all()).length).toBe(0);
    }, checkUpgraded);
  });
});

const pgDescribe = PG_URL ? describe : describe.skip;
if (!PG_URL) process.stderr.write('operator-upgrade.int-spec: PostgreSQL case skipped, CODEQ_TEST_PG_URL is not set (scripts/test.sh sets it)\n');

pgDescribe('upgrade of an existing PostgreSQL database', () => {
  it('adds the operator columns, indexes and table on start; old tasks work', async () => {
    await upgradePostgres(`codeq_upgrade_${process.pid}`, async (c) => {
      await c.query(`DROP TABLE codeq_paused; DROP INDEX codeq_finished_dlq_command; DROP INDEX codeq_finished_dlq_list`);
      for (const t of ['codeq_tasks', 'codeq_finished']) {
        await c.query(`DROP INDEX ${t}_list_command; DROP INDEX ${t}_list_status; ALTER TABLE ${t} DROP COLUMN cancel_requested; ALTER TABLE ${t} DROP COLUMN last_error`);
      }
      await c.query(`DELETE FROM codeq_migrations WHERE name = 'PostgresOperatorApi1764500000000'`);
      const [ready, dead] = OLD_ROWS;
      const ph = ready.map((_, i) => `$${i + 1}`).join(', ');
      await c.query(`INSERT INTO codeq_tasks (${OLD_COLUMNS}) VALUES (${ph})`, [...ready]);
      await c.query(`INSERT INTO codeq_finished (${OLD_COLUMNS}) VALUES (${ph})`, [...dead]);
    }, checkUpgraded);
  });
});
