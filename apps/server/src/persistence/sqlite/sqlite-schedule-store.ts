/**
 * Schedules on the embedded engine: rare writes, written directly on the main connection (like the
 * topic catalog; WAL-serialised with the writer thread by SQLite's busy timeout). The single
 * process owning the data directory is the only scheduler, and each statement is atomic, so the
 * compare-and-set on next_run_at is enough (ADR 0008).
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { ScheduleRecord, ScheduleStore } from '../../domain/schedule.js';
import { SCHEDULE_COLUMN_NAMES, SCHEDULE_UPSERT_COLUMNS, rowToSchedule, scheduleValues } from '../schedule-rows.js';

export class SqliteScheduleStore implements ScheduleStore {
  private readonly s: Record<string, BetterSqlite3.Statement>;

  constructor(db: BetterSqlite3.Database) {
    const cols = SCHEDULE_COLUMN_NAMES.join(', ');
    const marks = SCHEDULE_COLUMN_NAMES.map(() => '?').join(', ');
    this.s = {
      get: db.prepare(`SELECT * FROM schedules WHERE tenant_id = ? AND name = ?`),
      list: db.prepare(`SELECT * FROM schedules WHERE tenant_id = ? ORDER BY name`),
      count: db.prepare(`SELECT count(*) AS n FROM schedules WHERE tenant_id = ?`),
      put: db.prepare(`INSERT INTO schedules (${cols}) VALUES (${marks}) ON CONFLICT (tenant_id, name) DO UPDATE SET ${SCHEDULE_UPSERT_COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ')}`),
      remove: db.prepare(`DELETE FROM schedules WHERE tenant_id = ? AND name = ?`),
      due: db.prepare(
        `SELECT * FROM (SELECT * FROM schedules WHERE paused = 0 AND next_run_at <= ? ORDER BY next_run_at LIMIT ?)
         UNION SELECT * FROM schedules WHERE pending_slot IS NOT NULL`,
      ),
      advance: db.prepare(
        `UPDATE schedules SET next_run_at = ?, pending_slot = ?, last_run_at = coalesce(?, last_run_at)
         WHERE tenant_id = ? AND name = ? AND next_run_at = ? AND pending_slot IS NULL`,
      ),
      settle: db.prepare(
        `UPDATE schedules SET pending_slot = NULL, last_task_id = coalesce(?, last_task_id), last_error = ?
         WHERE tenant_id = ? AND name = ? AND pending_slot = ?`,
      ),
      noteError: db.prepare(`UPDATE schedules SET last_error = ? WHERE tenant_id = ? AND name = ?`),
    };
  }

  async get(tenantId: string, name: string): Promise<ScheduleRecord | null> {
    const r = this.s['get']!.get(tenantId, name) as Record<string, unknown> | undefined;
    return r ? rowToSchedule(r) : null;
  }

  async list(tenantId: string): Promise<ScheduleRecord[]> {
    return (this.s['list']!.all(tenantId) as Record<string, unknown>[]).map(rowToSchedule);
  }

  async count(tenantId: string): Promise<number> {
    return (this.s['count']!.get(tenantId) as { n: number }).n;
  }

  async put(rec: ScheduleRecord): Promise<void> {
    this.s['put']!.run(...scheduleValues(rec));
  }

  async remove(tenantId: string, name: string): Promise<boolean> {
    return this.s['remove']!.run(tenantId, name).changes > 0;
  }

  async due(nowMs: number, limit: number): Promise<ScheduleRecord[]> {
    return (this.s['due']!.all(nowMs, limit) as Record<string, unknown>[]).map(rowToSchedule);
  }

  async advance(tenantId: string, name: string, expect: number, next: { nextRunAtMs: number; pendingSlotMs: number | null; lastRunAtMs: number | null }): Promise<boolean> {
    return this.s['advance']!.run(next.nextRunAtMs, next.pendingSlotMs, next.lastRunAtMs, tenantId, name, expect).changes === 1;
  }

  async settle(tenantId: string, name: string, slotMs: number, taskId: string | null, error: string | null): Promise<boolean> {
    return this.s['settle']!.run(taskId, error, tenantId, name, slotMs).changes === 1;
  }

  async noteError(tenantId: string, name: string, error: string): Promise<void> {
    this.s['noteError']!.run(error, tenantId, name);
  }
}
