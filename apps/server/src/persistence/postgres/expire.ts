/** Lease expiry and the next due instant, read by the maintenance replica. */
import type pg from 'pg';
import { dueAt } from '../../domain/rules.js';
import type { ExpiredLease } from '../../domain/task-store.js';

/**
 * Leases expired at `now`, except those handed over in the last 10 s (`expiring`: the handler
 * is working on them). Up to 1000 per pass.
 */
export async function expiredLeases(pool: pg.Pool, now: number, expiring: Map<string, number>): Promise<ExpiredLease[]> {
  for (const [id, at] of expiring) if (at < now - 10_000) expiring.delete(id);
  const r = await pool.query<{ tenant_id: string; id: string; lease_id: string }>({
    name: 'codeq_expired',
    text: `SELECT tenant_id, id, lease_id FROM codeq_tasks WHERE location = 'INPROG_SET' AND lease_until <= $1 ORDER BY lease_until LIMIT 1000`,
    values: [now],
  });
  const leases: ExpiredLease[] = [];
  for (const row of r.rows) {
    const k = `${row.id}\u0000${row.lease_id}`;
    if (expiring.has(k)) continue;
    expiring.set(k, now);
    leases.push({ tenantId: row.tenant_id, taskId: row.id, leaseId: row.lease_id });
  }
  return leases;
}

/** The next instant maintenance has work (a delayed task due, a lease expiring), if any. */
export async function nextDueAt(pool: pg.Pool): Promise<number | undefined> {
  const r = await pool.query<{ d: number | null; l: number | null }>({
    name: 'codeq_next_due',
    text: `SELECT (SELECT min(visible_at) FROM codeq_tasks WHERE location = 'DELAYED_ZSET') AS d,
                  (SELECT min(lease_until) FROM codeq_tasks WHERE location = 'INPROG_SET') AS l`,
  });
  let next: number | undefined;
  const d = r.rows[0]?.d;
  const l = r.rows[0]?.l;
  if (d !== null && d !== undefined) next = dueAt(d);
  if (l !== null && l !== undefined) next = Math.min(next ?? Infinity, l + 1);
  return next;
}
