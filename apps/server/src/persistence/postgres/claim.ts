/**
 * Claims: claimTask() of domain/rules.ts as one `UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED
 * LIMIT n) RETURNING …` per command, on the partial index of ready rows; across commands the
 * highest ready priority first, then round-robin from this tenant's last served command (ADR 0007).
 */
import type pg from 'pg';
import { leaseIdAt, leaseUntil, type LeaseSpec } from '../../domain/rules.js';
import type { TaskRecord } from '../../domain/task.js';
import { nextCommand } from '../round-robin.js';
import { rowToTask, type Row } from '../schema.js';
import { COLS, type Fetched } from './sql.js';
import type { MissedWakeups } from './notifications.js';

export interface ClaimContext {
  pool: pg.Pool;
  missedWork: MissedWakeups;
  /** Per tenant, the command this replica's last claim served (round-robin across commands). */
  lastServed: Map<string, string>;
  /** Keep a copy of a row this replica leased (a hint for transitions). */
  remember(f: Fetched): void;
}

export async function claim(ctx: ClaimContext, tenantId: string, commandKeys: readonly string[], count: number, lease: LeaseSpec): Promise<TaskRecord[]> {
  if (!commandKeys.length || count <= 0) return [];
  // The lease is data (domain/rules.ts claimTask): one statement leases many rows with the
  // worker, expiry and time of `lease`, and task i of the claim gets lease id leaseIdAt(lease, i).
  // One statement per command: each walks the ready index (tenant, command, priority DESC, seq)
  // and stops after LIMIT rows. A single statement over `command_key = ANY($2)` cannot use that
  // index: it scans and sorts the whole backlog (measured with 100k ready tasks: ~290 ms per
  // claim instead of ~1 ms). With several commands (ADR 0007), one index probe per command
  // first finds the highest ready priority; the commands ready at it are served round-robin
  // from the one after this tenant's last served command (a per-replica cursor).
  const out: TaskRecord[] = [];
  const keys = [...new Set(commandKeys)];
  if (keys.length === 1) {
    out.push(...(await claimFrom(ctx, tenantId, keys[0]!, count, 0, lease, out.length)));
    return out;
  }
  while (out.length < count) {
    const heads = await ctx.missedWork.aroundAll(keys.map((k) => `${tenantId}\u0000${k}`), () => ctx.pool.query<{ key: string; priority: number }>({
      name: 'codeq_claim_heads',
      text: `SELECT k.key, h.priority FROM unnest($2::text[]) AS k(key)
             CROSS JOIN LATERAL (
               SELECT priority FROM codeq_tasks
               WHERE tenant_id = $1 AND command_key = k.key AND location = 'PENDING_LIST'
                 AND NOT EXISTS (SELECT 1 FROM codeq_paused p WHERE p.tenant_id = $1 AND p.command_key = k.key)
               ORDER BY priority DESC, seq LIMIT 1) h`,
      values: [tenantId, keys],
    }));
    if (!heads.rows.length) break;
    const top = Math.max(...heads.rows.map((h) => h.priority));
    const ready = new Set(heads.rows.filter((h) => h.priority === top).map((h) => h.key));
    // Serve the ready commands in turn, starting after the last served one.
    const turn: string[] = [];
    for (let k = nextCommand(ready, ctx.lastServed.get(tenantId), keys); k !== undefined && !turn.includes(k); k = nextCommand(ready, k, keys)) turn.push(k);
    let got = 0;
    for (let i = 0; i < turn.length && out.length < count; i++) {
      const share = Math.ceil((count - out.length) / (turn.length - i));
      const leased = await claimFrom(ctx, tenantId, turn[i]!, share, top, lease, out.length);
      if (leased.length) ctx.lastServed.set(tenantId, turn[i]!);
      got += leased.length;
      out.push(...leased);
    }
    if (!got) {
      // The top tasks were taken by another replica meanwhile: take whatever else is ready (in
      // list order) rather than park while lower priorities wait.
      for (const k of keys) {
        if (out.length >= count) break;
        out.push(...(await claimFrom(ctx, tenantId, k, count - out.length, 0, lease, out.length)));
      }
      break;
    }
  }
  return out;
}

/** Lease up to `n` ready tasks of one command with priority ≥ `minPriority`, in claim order. */
async function claimFrom(ctx: ClaimContext, tenantId: string, key: string, n: number, minPriority: number, lease: LeaseSpec, first: number): Promise<TaskRecord[]> {
  // claimTask() of domain/rules.ts as one statement: row k (claim order) gets lease id k.
  const leaseIds = Array.from({ length: n }, (_, k) => leaseIdAt(lease, first + k));
  const r = await ctx.missedWork.around(`${tenantId}\u0000${key}`, () => ctx.pool.query<Row>({
    name: 'codeq_claim',
    text: `UPDATE codeq_tasks t SET status = 'IN_PROGRESS', location = 'INPROG_SET', worker_id = $3, lease_id = ($8::text[])[s.rn],
             lease_until = $4, attempts = t.attempts + 1, visible_at = NULL, updated_at = $5, version = t.version + 1
           FROM (
             SELECT c.id, row_number() OVER (ORDER BY c.priority DESC, c.seq) AS rn FROM (
               SELECT id, priority, seq FROM codeq_tasks
               WHERE tenant_id = $1 AND command_key = $2 AND location = 'PENDING_LIST' AND priority >= $7
                 AND NOT EXISTS (SELECT 1 FROM codeq_paused p WHERE p.tenant_id = $1 AND p.command_key = $2)
               ORDER BY priority DESC, seq
               LIMIT $6 FOR UPDATE SKIP LOCKED) c) s
           WHERE t.id = s.id
           RETURNING ${COLS.map((c) => `t."${c}"`).join(', ')}, t."version"`,
    values: [tenantId, key, lease.workerId, leaseUntil(lease), lease.now, n, minPriority, leaseIds],
  }));
  const leased = r.rows.map((row) => {
    const task = rowToTask(row);
    ctx.remember({ task: { ...task }, version: row['version'] as number, live: true });
    return task;
  });
  // RETURNING follows no ORDER BY: put this command's tasks back in claim order.
  return leased.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
}
