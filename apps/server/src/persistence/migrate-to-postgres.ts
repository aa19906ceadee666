/**
 * `node dist/main.js migrate-to-postgres --from <sqlite data dir> --to <postgres url>`: moves a
 * single-node deployment's data (every task, live and finished, results, idempotency keys, topics,
 * schedules, pending result-webhook deliveries)
 * from the embedded engine to an empty PostgreSQL database, in one transaction.
 *
 * The SQLite directory is locked for the whole copy (a running server on it makes the command
 * refuse), the target schema is created by the PostgreSQL engine's migrations, and the target
 * must not hold tasks yet. Leases and delays carry over as they are: start the replicas right
 * after the copy and they resume.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { PostgresTaskStore } from './postgres/postgres-task-store.js';
import { SCHEDULE_COLUMN_NAMES } from './schedule-rows.js';
import { OUTBOX_COLUMNS } from '../domain/webhook-outbox.js';

export interface MigrationSummary {
  liveTasks: number;
  finishedTasks: number;
  results: number;
  idempotencyKeys: number;
  topics: number;
  schedules: number;
  /** Rows of the result-webhook outbox (deliveries not made yet, ADR 0012). */
  webhookDeliveries: number;
}

const TASK_COLS = [
  'id', 'tenant_id', 'command', 'command_key', 'payload', 'priority', 'webhook', 'status', 'location',
  'worker_id', 'lease_id', 'lease_until', 'attempts', 'max_attempts', 'error', 'result_key',
  'idempotency_key', 'visible_at', 'seq', 'created_at', 'updated_at', 'terminal_at', 'last_error', 'cancel_requested',
  'trace_parent', 'trace_state',
] as const;
const TASK_TYPES = ['text', 'text', 'text', 'text', 'text', 'smallint', 'text', 'text', 'text', 'text', 'text', 'bigint', 'integer', 'integer', 'text', 'text', 'text', 'bigint', 'bigint', 'bigint', 'bigint', 'bigint', 'text', 'integer', 'text', 'text'];
/** Values for columns a source database from before their migration does not have. */
const DEFAULTS: Record<string, unknown> = { cancel_requested: 0 };
const RESULT_COLS = ['task_id', 'tenant_id', 'status', 'result', 'error', 'artifacts', 'completed_at', 'lease_id', 'worker_id'] as const;
const RESULT_TYPES = ['text', 'text', 'text', 'text', 'text', 'text', 'bigint', 'text', 'text'];
const TOPIC_COLS = ['topic_id', 'tenant_id', 'topic_name', 'policy', 'version', 'created_at', 'updated_at'] as const;
const TOPIC_TYPES = ['text', 'text', 'text', 'text', 'integer', 'bigint', 'bigint'];
const SCHEDULE_TYPES = SCHEDULE_COLUMN_NAMES.map((c) =>
  ['priority', 'max_attempts', 'every_seconds', 'jitter_seconds', 'paused'].includes(c) ? 'integer' : ['next_run_at', 'last_run_at', 'pending_slot', 'created_at', 'updated_at'].includes(c) ? 'bigint' : 'text',
);
const OUTBOX_TYPES = ['text', 'text', 'text', 'text', 'text', 'text', 'bigint', 'integer', 'bigint'];
const CHUNK = 1000;

type Row = Record<string, unknown>;

export class MigrationError extends Error {}

function lockDirectory(dir: string): Database.Database {
  const db = new Database(join(dir, 'codeq.lock'), { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = DELETE');
    db.prepare('CREATE TABLE IF NOT EXISTS owner (pid INTEGER, started_at INTEGER)').run();
    db.prepare('DELETE FROM owner').run();
    db.prepare('INSERT INTO owner (pid, started_at) VALUES (?, ?)').run(process.pid, Date.now());
    return db;
  } catch (e) {
    db.close();
    if (/locked|busy/i.test((e as Error).message)) throw new MigrationError(`data directory ${dir} is in use by a running codeQ server: stop it first`);
    throw e;
  }
}

async function insertChunks(client: pg.ClientBase, table: string, cols: readonly string[], types: string[], rows: Row[]): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK);
    const arrays = cols.map((c) => chunk.map((r) => r[c] ?? DEFAULTS[c] ?? null));
    await client.query(
      `INSERT INTO ${table} (${cols.map((c) => `"${c}"`).join(', ')}) SELECT * FROM unnest(${cols.map((_, k) => `$${k + 1}::${types[k]}[]`).join(', ')})`,
      arrays,
    );
  }
}

export async function migrateSqliteToPostgres(opts: { from: string; to: string; log?: (line: string) => void }): Promise<MigrationSummary> {
  const log = opts.log ?? (() => undefined);
  const file = join(opts.from, 'codeq.db');
  if (!existsSync(file)) throw new MigrationError(`${file} does not exist: --from must be the embedded engine's data directory (PERSISTENCE_CONFIG "path")`);
  const lock = lockDirectory(opts.from);
  try {
    const src = new Database(file, { readonly: true, fileMustExist: true });
    try {
      // Create (or upgrade) the target schema exactly as a replica would at start-up.
      const engine = new PostgresTaskStore({ url: opts.to, poolSize: 1 });
      await engine.open();
      await engine.close();

      const tasks = src.prepare('SELECT * FROM tasks ORDER BY seq').all() as Row[];
      const results = src.prepare('SELECT * FROM results').all() as Row[];
      const topics = (src.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'topics'`).get() ? src.prepare('SELECT * FROM topics').all() : []) as Row[];
      const schedules = (src.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schedules'`).get() ? src.prepare('SELECT * FROM schedules').all() : []) as Row[];
      // Claimed rows belonged to the stopped process: copied unclaimed (due times carry over).
      const outbox = (src.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'webhook_outbox'`).get() ? src.prepare('SELECT * FROM webhook_outbox').all() : []) as Row[];
      const live = tasks.filter((t) => t['terminal_at'] === null || t['terminal_at'] === undefined);
      const finished = tasks.filter((t) => t['terminal_at'] !== null && t['terminal_at'] !== undefined);
      const keys = tasks.filter((t) => t['idempotency_key']).map((t) => ({ tenant_id: t['tenant_id'], key: t['idempotency_key'], task_id: t['id'] }));

      const client = new pg.Client({ connectionString: opts.to });
      const broken: { error?: Error } = {};
      client.on('error', (e) => (broken.error = e));
      await client.connect();
      try {
        await client.query('BEGIN');
        const existing = await client.query<{ n: string }>('SELECT ((SELECT count(*) FROM codeq_tasks) + (SELECT count(*) FROM codeq_finished) + (SELECT count(*) FROM codeq_topics) + (SELECT count(*) FROM codeq_schedules))::text AS n');
        if (Number(existing.rows[0]!.n) > 0) throw new MigrationError('the target database already holds codeQ data: migrate into an empty database');
        await insertChunks(client, 'codeq_tasks', TASK_COLS, TASK_TYPES, live);
        await insertChunks(client, 'codeq_finished', TASK_COLS, TASK_TYPES, finished);
        await insertChunks(client, 'codeq_results', RESULT_COLS, RESULT_TYPES, results);
        await insertChunks(client, 'codeq_idempotency', ['tenant_id', 'key', 'task_id'], ['text', 'text', 'text'], keys);
        await insertChunks(client, 'codeq_topics', TOPIC_COLS, TOPIC_TYPES, topics);
        await insertChunks(client, 'codeq_schedules', SCHEDULE_COLUMN_NAMES, SCHEDULE_TYPES, schedules);
        await insertChunks(client, 'codeq_webhook_outbox', OUTBOX_COLUMNS, OUTBOX_TYPES, outbox);
        const maxSeq = tasks.reduce((m, t) => Math.max(m, Number(t['seq'] ?? 0)), 0);
        await client.query(`SELECT setval('codeq_seq', $1, true)`, [Math.max(1, maxSeq)]);
        if (broken.error) throw broken.error;
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        await client.end();
      }
      const summary = { liveTasks: live.length, finishedTasks: finished.length, results: results.length, idempotencyKeys: keys.length, topics: topics.length, schedules: schedules.length, webhookDeliveries: outbox.length };
      log(
        `copied ${summary.liveTasks} live and ${summary.finishedTasks} finished tasks, ${summary.results} results, ${summary.idempotencyKeys} idempotency keys, ${summary.topics} topics, ${summary.schedules} schedules and ${summary.webhookDeliveries} pending webhook deliveries`,
      );
      return summary;
    } finally {
      src.close();
    }
  } finally {
    lock.close();
  }
}

/** The `migrate-to-postgres` command line: returns the process exit code. */
export async function migrateCommand(argv: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const usage = 'usage: node dist/main.js migrate-to-postgres --from <sqlite data dir> --to <postgres://user:password@host:5432/db>';
  const flag = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const from = flag('from');
  const to = flag('to');
  if (argv.includes('--help') || argv.includes('-h')) {
    out(usage);
    return 0;
  }
  if (!from || !to) {
    err(`codeq: ${usage}`);
    return 64;
  }
  if (!/^postgres(ql)?:\/\//.test(to)) {
    err('codeq: --to must be a postgres:// or postgresql:// URL');
    return 64;
  }
  try {
    const s = await migrateSqliteToPostgres({ from, to, log: out });
    out(JSON.stringify(s));
    return 0;
  } catch (e) {
    err(`codeq: migration failed, nothing was written: ${(e as Error).message}`);
    return e instanceof MigrationError ? 65 : 1;
  }
}
