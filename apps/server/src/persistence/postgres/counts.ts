/** Queue counts of one (tenant, command) and of every queue (admin overview, metrics). */
import type pg from 'pg';
import type { QueueCounts, QueueDepth } from '../../domain/task-store.js';
import { MAX_PRIORITY } from '../../domain/task.js';

export function emptyCounts(): QueueCounts {
  return { readyByPriority: new Array<number>(MAX_PRIORITY + 1).fill(0), delayed: 0, inProgress: 0, dlq: 0 };
}

function addCount(c: QueueCounts, location: string, priority: number, n: number): void {
  if (location === 'PENDING_LIST') c.readyByPriority[priority] = (c.readyByPriority[priority] ?? 0) + n;
  else if (location === 'DELAYED_ZSET') c.delayed += n;
  else if (location === 'INPROG_SET') c.inProgress += n;
  else if (location === 'DLQ_SET') c.dlq += n;
}

/** (tenant, command key) → first spelling, for queues seen by this replica (bounded). */
export class KnownQueues {
  readonly map = new Map<string, { tenantId: string; commandKey: string; command: string }>();

  remember(tenantId: string, commandKey: string, command: string): void {
    const k = `${tenantId}\u0000${commandKey}`;
    if (this.map.has(k) || this.map.size >= 10_000) return;
    this.map.set(k, { tenantId, commandKey, command });
  }
}

export async function counts(pool: pg.Pool, tenantId: string, commandKey: string): Promise<QueueCounts> {
  const r = await pool.query<{ location: string; priority: number; n: number }>({
    name: 'codeq_counts',
    text: `SELECT location, priority, count(*)::int AS n FROM codeq_tasks WHERE tenant_id = $1 AND command_key = $2 GROUP BY location, priority
           UNION ALL SELECT 'DLQ_SET', 0, count(*)::int FROM codeq_finished WHERE tenant_id = $1 AND command_key = $2 AND location = 'DLQ_SET'`,
    values: [tenantId, commandKey],
  });
  const c = emptyCounts();
  for (const row of r.rows) addCount(c, row.location, row.priority, row.n);
  return c;
}

export async function depths(pool: pg.Pool, known: KnownQueues): Promise<QueueDepth[]> {
  const r = await pool.query<{ tenant_id: string; command_key: string; command: string; location: string; priority: number; n: number }>({
    name: 'codeq_depths',
    text: `SELECT tenant_id, command_key, min(command) AS command, location, priority, count(*)::int AS n FROM codeq_tasks GROUP BY tenant_id, command_key, location, priority
           UNION ALL SELECT tenant_id, command_key, min(command), 'DLQ_SET', 0, count(*)::int FROM codeq_finished WHERE location = 'DLQ_SET' GROUP BY tenant_id, command_key`,
  });
  const out = new Map<string, QueueDepth>();
  // Queues this replica has seen stay listed (with zeros) once they drain, as on the embedded engine.
  for (const [k, q] of known.map) out.set(k, { tenantId: q.tenantId, commandKey: q.commandKey, command: q.command, ...emptyCounts() });
  for (const row of r.rows) {
    const k = `${row.tenant_id}\u0000${row.command_key}`;
    let d = out.get(k);
    if (!d) out.set(k, (d = { tenantId: row.tenant_id, commandKey: row.command_key, command: row.command, ...emptyCounts() }));
    if (row.command < d.command) d.command = row.command;
    addCount(d, row.location, row.priority, row.n);
    known.remember(row.tenant_id, row.command_key, d.command);
  }
  return [...out.values()];
}
