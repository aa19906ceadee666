/**
 * What every statement family of the PostgreSQL engine shares: the task columns with their SQL
 * types (from ../schema.ts), the NOTIFY fragments, the type parsers, and the reads by id.
 */
import pg from 'pg';
import type { ResultRecord, TaskRecord } from '../../domain/task.js';
import type { ListBranch } from '../list-sql.js';
import { TASK_COLUMNS, rowToResult, rowToTask, type Row } from '../schema.js';

export const COLS = TASK_COLUMNS;
export const SQL_TYPES: Record<(typeof COLS)[number], string> = {
  id: 'text', tenant_id: 'text', command: 'text', command_key: 'text', payload: 'text', priority: 'smallint', webhook: 'text',
  status: 'text', location: 'text', worker_id: 'text', lease_id: 'text', lease_until: 'bigint', attempts: 'integer',
  max_attempts: 'integer', error: 'text', result_key: 'text', idempotency_key: 'text', visible_at: 'bigint', seq: 'bigint',
  created_at: 'bigint', updated_at: 'bigint', terminal_at: 'bigint', last_error: 'text', cancel_requested: 'integer',
  trace_parent: 'text', trace_state: 'text',
};
export const COL_LIST = COLS.map((c) => `"${c}"`).join(', ');

/** A task row as read: live rows (codeq_tasks) carry the version their writes are guarded by. */
export interface Fetched {
  task: TaskRecord;
  version: number;
  live: boolean;
}

/** bigint columns come back as numbers (epoch ms and sequence values stay far below 2^53). */
const parseInt8 = (v: string): number => Number(v);
export const TYPES = {
  getTypeParser: ((oid: number, format?: string): unknown => (oid === 20 ? parseInt8 : (pg.types.getTypeParser(oid, format as 'text') as unknown))) as typeof pg.types.getTypeParser,
};

/** `pg_notify` payloads for work that became ready, one per (tenant, command) of the rows in CTE `src`. */
export const NOTIFY_WORK = `SELECT pg_notify('codeq_work', tenant_id || ':' || count(*) || ':' || command_key) FROM src WHERE location = 'PENDING_LIST' GROUP BY tenant_id, command_key`;
export const NOTIFY_TIMER = `SELECT pg_notify('codeq_timer', min(visible_at)::text) FROM src WHERE location = 'DELAYED_ZSET' HAVING count(*) > 0`;

export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the configured URL';
  }
}

/** Live statuses are in codeq_tasks, terminal ones in codeq_finished: each listing branch reads one table. */
export function listTable(b: ListBranch): string {
  return b.status === 'PENDING' || b.status === 'IN_PROGRESS' ? 'codeq_tasks' : 'codeq_finished';
}

/** A task by id, live or finished. */
export async function fetchTask(pool: pg.Pool, id: string): Promise<Fetched | null> {
  const r = await pool.query<Row>({
    name: 'codeq_fetch',
    text: `SELECT ${COL_LIST}, "version", true AS live FROM codeq_tasks WHERE id = $1
           UNION ALL SELECT ${COL_LIST}, 0 AS version, false AS live FROM codeq_finished WHERE id = $1 LIMIT 1`,
    values: [id],
  });
  const row = r.rows[0];
  return row ? { task: rowToTask(row), version: row['version'] as number, live: row['live'] as boolean } : null;
}

export async function fetchResult(pool: pg.Pool, id: string): Promise<ResultRecord | null> {
  const r = await pool.query<Row>({ name: 'codeq_result', text: 'SELECT * FROM codeq_results WHERE task_id = $1', values: [id] });
  return r.rows[0] ? rowToResult(r.rows[0]) : null;
}

/**
 * Connect a dedicated session (LISTEN, the leader lock) and run its set-up statement. A failed
 * connect or set-up ends the client and rethrows; a host closed meanwhile ends it and answers false.
 */
export async function openSession(c: pg.Client, closed: () => boolean, setup?: string): Promise<boolean> {
  try {
    await c.connect();
    if (setup) await c.query(setup);
  } catch (e) {
    c.end().catch(() => undefined);
    throw e;
  }
  if (closed()) {
    await c.end().catch(() => undefined);
    return false;
  }
  return true;
}
