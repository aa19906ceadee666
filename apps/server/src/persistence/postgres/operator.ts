/**
 * The operator API's statements: the listing (from the listing indexes, never a scan), redrive of
 * dead-lettered tasks, and paused commands (codeq_paused, checked by every replica's claim).
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { ListQuery, PausedCommand, RedriveSelection } from '../../domain/task-store.js';
import type { TaskRecord } from '../../domain/task.js';
import { listBranches, listSql } from '../list-sql.js';
import { rowToTask, type Row } from '../schema.js';
import { COLS, COL_LIST, NOTIFY_WORK, listTable } from './sql.js';

export async function list(pool: pg.Pool, q: ListQuery): Promise<TaskRecord[]> {
  const branches = listBranches(q);
  if (!branches.length || q.limit <= 0) return [];
  const { text, values } = listSql(q, branches, listTable, (i) => `$${i}`);
  // Named (prepared once per connection): the few shapes of listing SQL are planned once.
  const r = await pool.query<Row>({ name: `codeq_list_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`, text, values });
  return r.rows.map(rowToTask);
}

/** EXPLAIN of the listing's SQL (tests check every branch uses an index). */
export async function explainList(pool: pg.Pool, q: ListQuery): Promise<string[]> {
  const { text, values } = listSql(q, listBranches(q), listTable, (i) => `$${i}`);
  const r = await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`, values);
  return r.rows.map((x) => x['QUERY PLAN']);
}

/**
 * One statement (one transaction): dead-lettered rows leave codeq_finished, come back to
 * codeq_tasks ready (attempts 0, error cleared, new seq: redriveTask() of domain/rules.ts), their
 * FAILED result is deleted, and waiting workers are notified. Concurrent redrives of the same rows
 * cannot both move them: the DELETE locks each row, and the second finds it gone.
 */
export async function redrive(pool: pg.Pool, tenantId: string, sel: RedriveSelection, now: number): Promise<TaskRecord[]> {
  const pick =
    'ids' in sel
      ? `SELECT id FROM codeq_finished WHERE tenant_id = $1 AND location = 'DLQ_SET' AND id = ANY($3::text[]) ORDER BY id FOR UPDATE`
      : `SELECT id FROM codeq_finished WHERE tenant_id = $1 AND command_key = $3 AND location = 'DLQ_SET' ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED`;
  const reset: Record<string, string> = {
    status: `'PENDING'`, location: `'PENDING_LIST'`, worker_id: 'NULL', lease_id: 'NULL', lease_until: 'NULL', attempts: '0', error: 'NULL',
    result_key: 'NULL', visible_at: 'NULL', seq: `nextval('codeq_seq')`, updated_at: '$2::bigint', terminal_at: 'NULL', cancel_requested: '0',
  };
  const r = await pool.query<Row>(
    `WITH moved AS (DELETE FROM codeq_finished WHERE id IN (${pick}) RETURNING *),
          src AS (INSERT INTO codeq_tasks (${COL_LIST}) SELECT ${COLS.map((c) => reset[c] ?? `"${c}"`).join(', ')} FROM moved RETURNING ${COL_LIST}),
          r AS (DELETE FROM codeq_results WHERE task_id IN (SELECT id FROM moved)),
          pr AS (DELETE FROM codeq_progress WHERE task_id IN (SELECT id FROM moved)),
          n AS (${NOTIFY_WORK})
     SELECT *, (SELECT count(*) FROM n) AS notified FROM src`,
    'ids' in sel ? [tenantId, now, [...new Set(sel.ids)]] : [tenantId, now, sel.commandKey, sel.limit],
  );
  return r.rows.map(rowToTask).sort((a, b) => a.seq - b.seq);
}

/** Pause (insert) or resume (delete, and wake every parked claimer of the command on every replica). */
export async function setPaused(pool: pg.Pool, tenantId: string, commandKey: string, command: string, paused: boolean, now: number): Promise<void> {
  if (paused) {
    await pool.query(`INSERT INTO codeq_paused (tenant_id, command_key, command, paused_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, [tenantId, commandKey, command, now]);
  } else {
    await pool.query(
      `WITH gone AS (DELETE FROM codeq_paused WHERE tenant_id = $1 AND command_key = $2 RETURNING tenant_id, command_key)
       SELECT pg_notify('codeq_work', tenant_id || ':1000000:' || command_key) FROM gone`,
      [tenantId, commandKey],
    );
  }
}

export async function pausedCommands(pool: pg.Pool, tenantId?: string): Promise<PausedCommand[]> {
  const r = await pool.query<{ tenant_id: string; command_key: string; command: string }>(
    tenantId === undefined ? `SELECT tenant_id, command_key, command FROM codeq_paused` : `SELECT tenant_id, command_key, command FROM codeq_paused WHERE tenant_id = $1`,
    tenantId === undefined ? [] : [tenantId],
  );
  return r.rows.map((x) => ({ tenantId: x.tenant_id, commandKey: x.command_key, command: x.command }));
}
