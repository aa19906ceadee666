/**
 * The operator listing as SQL, shared by both engines. One branch per stored status (each walks
 * an index on (tenant_id[, command_key], status, created_at, id) backwards from the cursor and
 * stops after LIMIT rows); the branches are merged by UNION ALL and cut to the page size. No
 * OFFSET: the cursor is the (created_at, id) of the last row shown, so pages stay stable while
 * tasks are being created (new tasks are newer than any cursor).
 * Dead-lettered tasks have partial indexes of their own (location = 'DLQ_SET').
 */
import type { ListQuery } from '../domain/task-store.js';
import type { ListStatus } from '../domain/task.js';
import { TASK_COLUMNS } from './schema.js';

/** A stored (status, location) pair the listing can select. */
export interface ListBranch {
  status: 'PENDING' | 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
  location?: 'PENDING_LIST' | 'DELAYED_ZSET' | 'DLQ_SET';
}

const ALL: ListStatus[] = ['PENDING', 'DELAYED', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED'];

/** The branches of a query (an empty list = nothing can match). */
export function listBranches(q: ListQuery): ListBranch[] {
  const wanted = new Set<ListStatus>(q.statuses && q.statuses.length ? q.statuses : ALL);
  if (q.dlq) return wanted.has('FAILED') ? [{ status: 'FAILED', location: 'DLQ_SET' }] : [];
  const out: ListBranch[] = [];
  // PENDING and DELAYED share the stored status PENDING: one branch when both are wanted.
  if (wanted.has('PENDING') && wanted.has('DELAYED')) out.push({ status: 'PENDING' });
  else if (wanted.has('PENDING')) out.push({ status: 'PENDING', location: 'PENDING_LIST' });
  else if (wanted.has('DELAYED')) out.push({ status: 'PENDING', location: 'DELAYED_ZSET' });
  for (const s of ['IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED'] as const) if (wanted.has(s)) out.push({ status: s });
  return out;
}

/**
 * SQL of one page. `table(branch)` names the table a branch reads; `param(i)` renders the i-th
 * (1-based) placeholder. Status and location are inlined constants (so partial indexes match).
 */
export function listSql(q: ListQuery, branches: ListBranch[], table: (b: ListBranch) => string, param: (i: number) => string): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const p = (v: unknown) => {
    values.push(v);
    return param(values.length);
  };
  const cols = TASK_COLUMNS.map((c) => `"${c}"`).join(', ');
  const parts = branches.map((b, i) => {
    const where = [`tenant_id = ${p(q.tenantId)}`];
    if (q.commandKey !== undefined) where.push(`command_key = ${p(q.commandKey)}`);
    if (b.location === 'DLQ_SET') where.push(`location = 'DLQ_SET'`);
    else {
      where.push(`status = '${b.status}'`);
      if (b.location) where.push(`location = '${b.location}'`);
    }
    if (q.createdAfterMs !== undefined) where.push(`created_at >= ${p(q.createdAfterMs)}`);
    if (q.createdBeforeMs !== undefined) where.push(`created_at < ${p(q.createdBeforeMs)}`);
    if (q.after) where.push(`(created_at, id) < (${p(q.after.createdAtMs)}, ${p(q.after.id)})`);
    return `SELECT * FROM (SELECT ${cols} FROM ${table(b)} WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT ${p(q.limit)}) AS b${i}`;
  });
  if (parts.length === 1) return { text: parts[0]!, values };
  return { text: `${parts.join(' UNION ALL ')} ORDER BY created_at DESC, id DESC LIMIT ${p(q.limit)}`, values };
}
