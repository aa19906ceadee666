/**
 * Task notes (progress, log lines): checked against a read of the task; written by one statement
 * that locks the task row at the version read (a lease change in between makes it write nothing,
 * and the check runs again on a fresh read). The row lock also orders concurrent appends.
 */
import type pg from 'pg';
import type { LogLine, LogLineInput, ProgressRecord } from '../../domain/task-notes.js';
import type { TaskRecord } from '../../domain/task.js';
import type { Row } from '../schema.js';
import { fetchTask } from './sql.js';

export async function writeNotes(
  pool: pg.Pool,
  tenantId: string,
  id: string,
  guard: (t: TaskRecord | null) => TaskRecord,
  notes: { progress?: string; logs?: readonly LogLineInput[]; maxLines: number },
  now: number,
  /** Called before each retry (the row changed under the write). */
  onRetry: () => void,
): Promise<void> {
  const logs = notes.logs ?? [];
  for (let attempt = 0; attempt < 20; attempt++) {
    const f = await fetchTask(pool, id);
    const current = f && f.task.tenantId === tenantId ? f : null;
    const t = guard(current ? { ...current.task } : null);
    const r = await pool.query<{ ok: number }>({
      name: 'codeq_notes',
      text: `WITH t AS (SELECT id FROM codeq_tasks WHERE id = $1 AND version = $2 FOR NO KEY UPDATE),
             p AS (INSERT INTO codeq_progress (task_id, tenant_id, attempt, progress, updated_at)
                   SELECT $1, $3, $4, $5::text, $6 FROM t WHERE $5::text IS NOT NULL
                   ON CONFLICT (task_id) DO UPDATE SET attempt = excluded.attempt, progress = excluded.progress, updated_at = excluded.updated_at),
             base AS (SELECT coalesce(max(n), 0) AS n FROM codeq_logs WHERE task_id = $1),
             l AS (INSERT INTO codeq_logs (task_id, n, tenant_id, attempt, level, message, at)
                   SELECT $1, base.n + u.ord, $3, $4, u.level, u.message, u.at
                   FROM t, base, unnest($7::text[], $8::text[], $9::bigint[]) WITH ORDINALITY AS u(level, message, at, ord)),
             d AS (DELETE FROM codeq_logs WHERE task_id = $1 AND EXISTS (SELECT 1 FROM t) AND n <= (SELECT n FROM base) + $10 - $11)
             SELECT count(*)::int AS ok FROM t`,
      values: [
        id, current!.version, t.tenantId, t.attempts, notes.progress ?? null, now,
        logs.map((l) => l.level), logs.map((l) => l.message), logs.map((l) => l.atMs), logs.length, notes.maxLines,
      ],
    });
    if (r.rows[0]?.ok === 1) return;
    onRetry();
  }
  throw new Error(`task ${id} is changing too fast to update`);
}

export async function progress(pool: pg.Pool, tenantId: string, id: string): Promise<ProgressRecord | null> {
  const r = await pool.query<Row>({ name: 'codeq_progress_get', text: 'SELECT * FROM codeq_progress WHERE task_id = $1', values: [id] });
  const row = r.rows[0];
  if (!row || row['tenant_id'] !== tenantId) return null;
  return { value: row['progress'] as string, attempt: row['attempt'] as number, updatedAtMs: Number(row['updated_at']) };
}

export async function logs(pool: pg.Pool, tenantId: string, id: string, afterN: number, limit: number): Promise<LogLine[]> {
  const r = await pool.query<Row>({
    name: 'codeq_logs_get',
    text: 'SELECT * FROM codeq_logs WHERE task_id = $1 AND tenant_id = $2 AND n > $3 ORDER BY n LIMIT $4',
    values: [id, tenantId, afterN, limit],
  });
  return r.rows.map((row) => ({ n: row['n'] as number, attempt: row['attempt'] as number, level: row['level'] as LogLine['level'], message: row['message'] as string, atMs: Number(row['at']) }));
}
