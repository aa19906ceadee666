/** Retention: finished tasks deleted with their results, idempotency keys and notes. */
import type pg from 'pg';

/** Delete up to `limit` tasks that finished at or before `terminalBeforeMs`, of one tenant or of all. */
export async function purgeTerminal(pool: pg.Pool, terminalBeforeMs: number, limit: number, tenantId?: string): Promise<number> {
  const r = await pool.query<{ n: number }>({
    name: tenantId === undefined ? 'codeq_purge' : 'codeq_purge_tenant',
    text: `WITH gone AS (
             DELETE FROM codeq_finished WHERE id IN (
               SELECT id FROM codeq_finished WHERE terminal_at <= $1 ${tenantId === undefined ? '' : 'AND tenant_id = $3'}
               ORDER BY terminal_at LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING id, tenant_id, idempotency_key),
           r AS (DELETE FROM codeq_results WHERE task_id IN (SELECT id FROM gone)),
           k AS (DELETE FROM codeq_idempotency i USING gone WHERE i.tenant_id = gone.tenant_id AND i.key = gone.idempotency_key AND i.task_id = gone.id),
           pr AS (DELETE FROM codeq_progress WHERE task_id IN (SELECT id FROM gone)),
           lg AS (DELETE FROM codeq_logs WHERE task_id IN (SELECT id FROM gone))
           SELECT count(*)::int AS n FROM gone`,
    values: tenantId === undefined ? [terminalBeforeMs, limit] : [terminalBeforeMs, limit, tenantId],
  });
  return r.rows[0]?.n ?? 0;
}
