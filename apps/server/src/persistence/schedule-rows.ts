/** Row mapping of the schedules table, shared by both engines. */
import type { MissedPolicy, OverlapPolicy, ScheduleRecord } from '../domain/schedule.js';

export const SCHEDULE_COLUMN_NAMES = [
  'tenant_id', 'name', 'command', 'payload', 'priority', 'max_attempts', 'webhook', 'cron', 'every_seconds', 'timezone', 'overlap',
  'jitter_seconds', 'missed', 'paused', 'next_run_at', 'last_run_at', 'last_task_id', 'pending_slot', 'last_error', 'created_at', 'updated_at',
] as const;

/**
 * Columns an upsert of an existing schedule replaces: the definition, its next slot and updated_at.
 * The loop's state (last run, last task, pending slot, last error) and created_at stay, so an
 * upsert racing with a tick never erases a decided slot.
 */
export const SCHEDULE_UPSERT_COLUMNS = SCHEDULE_COLUMN_NAMES.filter(
  (c) => !['tenant_id', 'name', 'last_run_at', 'last_task_id', 'pending_slot', 'last_error', 'created_at'].includes(c),
);

export function scheduleValues(r: ScheduleRecord): unknown[] {
  return [
    r.tenantId, r.name, r.command, r.payload, r.priority, r.maxAttempts, r.webhook, r.cron, r.everySeconds, r.timezone, r.overlap,
    r.jitterSeconds, r.missed, r.paused ? 1 : 0, r.nextRunAtMs, r.lastRunAtMs, r.lastTaskId, r.pendingSlotMs, r.lastError, r.createdAtMs, r.updatedAtMs,
  ];
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function rowToSchedule(row: Record<string, unknown>): ScheduleRecord {
  return {
    tenantId: row['tenant_id'] as string,
    name: row['name'] as string,
    command: row['command'] as string,
    payload: row['payload'] as string,
    priority: Number(row['priority']),
    maxAttempts: Number(row['max_attempts']),
    webhook: (row['webhook'] as string | null) ?? null,
    cron: (row['cron'] as string | null) ?? null,
    everySeconds: num(row['every_seconds']),
    timezone: row['timezone'] as string,
    overlap: row['overlap'] as OverlapPolicy,
    jitterSeconds: Number(row['jitter_seconds']),
    missed: row['missed'] as MissedPolicy,
    paused: Number(row['paused']) === 1,
    nextRunAtMs: Number(row['next_run_at']),
    lastRunAtMs: num(row['last_run_at']),
    lastTaskId: (row['last_task_id'] as string | null) ?? null,
    pendingSlotMs: num(row['pending_slot']),
    lastError: (row['last_error'] as string | null) ?? null,
    createdAtMs: Number(row['created_at']),
    updatedAtMs: Number(row['updated_at']),
  };
}
