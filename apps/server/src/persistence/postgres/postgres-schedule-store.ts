/**
 * Schedules on the PostgreSQL engine: every replica may run the schedule loop; each decision is a
 * single guarded UPDATE (compare-and-set on next_run_at with no pending slot), so exactly one
 * replica wins a slot, and the slot's idempotency key makes its task unique even when a winner
 * dies between the claim and the create (ADR 0008).
 */
import type pg from 'pg';
import type { ScheduleRecord, ScheduleStore } from '../../domain/schedule.js';
import { SCHEDULE_COLUMN_NAMES, SCHEDULE_UPSERT_COLUMNS, rowToSchedule, scheduleValues } from '../schedule-rows.js';

const COLS = SCHEDULE_COLUMN_NAMES.join(', ');
const MARKS = SCHEDULE_COLUMN_NAMES.map((_, i) => `$${i + 1}`).join(', ');
const UPDATES = SCHEDULE_UPSERT_COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ');

export class PostgresScheduleStore implements ScheduleStore {
  constructor(private readonly pool: pg.Pool) {}

  async get(tenantId: string, name: string): Promise<ScheduleRecord | null> {
    const r = await this.pool.query('SELECT * FROM codeq_schedules WHERE tenant_id = $1 AND name = $2', [tenantId, name]);
    return r.rows[0] ? rowToSchedule(r.rows[0] as Record<string, unknown>) : null;
  }

  async list(tenantId: string): Promise<ScheduleRecord[]> {
    const r = await this.pool.query('SELECT * FROM codeq_schedules WHERE tenant_id = $1 ORDER BY name', [tenantId]);
    return r.rows.map((x) => rowToSchedule(x as Record<string, unknown>));
  }

  async count(tenantId: string): Promise<number> {
    const r = await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM codeq_schedules WHERE tenant_id = $1', [tenantId]);
    return Number(r.rows[0]?.n ?? 0);
  }

  async put(rec: ScheduleRecord): Promise<void> {
    await this.pool.query(`INSERT INTO codeq_schedules (${COLS}) VALUES (${MARKS}) ON CONFLICT (tenant_id, name) DO UPDATE SET ${UPDATES}`, scheduleValues(rec));
  }

  async remove(tenantId: string, name: string): Promise<boolean> {
    const r = await this.pool.query('DELETE FROM codeq_schedules WHERE tenant_id = $1 AND name = $2', [tenantId, name]);
    return (r.rowCount ?? 0) > 0;
  }

  async due(nowMs: number, limit: number): Promise<ScheduleRecord[]> {
    const r = await this.pool.query(
      `(SELECT * FROM codeq_schedules WHERE paused = 0 AND next_run_at <= $1 ORDER BY next_run_at LIMIT $2)
       UNION SELECT * FROM codeq_schedules WHERE pending_slot IS NOT NULL`,
      [nowMs, limit],
    );
    return r.rows.map((x) => rowToSchedule(x as Record<string, unknown>));
  }

  async advance(tenantId: string, name: string, expect: number, next: { nextRunAtMs: number; pendingSlotMs: number | null; lastRunAtMs: number | null }): Promise<boolean> {
    const r = await this.pool.query(
      `UPDATE codeq_schedules SET next_run_at = $1, pending_slot = $2, last_run_at = coalesce($3, last_run_at)
       WHERE tenant_id = $4 AND name = $5 AND next_run_at = $6 AND pending_slot IS NULL`,
      [next.nextRunAtMs, next.pendingSlotMs, next.lastRunAtMs, tenantId, name, expect],
    );
    return r.rowCount === 1;
  }

  async settle(tenantId: string, name: string, slotMs: number, taskId: string | null, error: string | null): Promise<boolean> {
    const r = await this.pool.query(
      `UPDATE codeq_schedules SET pending_slot = NULL, last_task_id = coalesce($1, last_task_id), last_error = $2
       WHERE tenant_id = $3 AND name = $4 AND pending_slot = $5`,
      [taskId, error, tenantId, name, slotMs],
    );
    return r.rowCount === 1;
  }

  async noteError(tenantId: string, name: string, error: string): Promise<void> {
    await this.pool.query('UPDATE codeq_schedules SET last_error = $1 WHERE tenant_id = $2 AND name = $3', [error, tenantId, name]);
  }
}
