/**
 * Delayed → ready on the maintenance replica: promote() of domain/rules.ts as one statement,
 * due = dueBefore(now) ("due at the start of the second"), 1000 rows per statement.
 */
import type pg from 'pg';
import { dueBefore } from '../../domain/rules.js';
import { NOTIFY_WORK } from './sql.js';

/** Promote every delayed task due at `now()` (re-read per round). */
export async function promoteDue(pool: pg.Pool, now: () => number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const at = now();
    const r = await pool.query<{ moved: number }>({
      name: 'codeq_promote',
      text: `WITH src AS (
               UPDATE codeq_tasks SET status = 'PENDING', location = 'PENDING_LIST', worker_id = NULL, lease_id = NULL, lease_until = NULL,
                 visible_at = NULL, updated_at = $2, seq = nextval('codeq_seq'), version = version + 1
               WHERE id IN (SELECT id FROM codeq_tasks WHERE location = 'DELAYED_ZSET' AND visible_at < $1 ORDER BY visible_at, seq LIMIT 1000 FOR UPDATE SKIP LOCKED)
               RETURNING tenant_id, command_key, location),
             n AS (${NOTIFY_WORK})
             SELECT (SELECT count(*) FROM src)::int AS moved, (SELECT count(*) FROM n) AS notified`,
      values: [dueBefore(at), at],
    });
    if ((r.rows[0]?.moved ?? 0) < 1000) return;
  }
}
