/**
 * The storage schema declared once for both engines (issue 11 item 1): both store a task in the
 * same columns (SQLite `tasks`, PostgreSQL `codeq_tasks` / `codeq_finished`) and a result in the
 * same columns; the row mappers, the columns a transition may change, and the result upsert live here.
 */
import type { Location, ResultRecord, TaskRecord } from '../domain/task.js';
import type { Topic } from '../domain/topic.js';

export type Row = Record<string, unknown>;

/** Task columns in the order of taskValues(). */
export const TASK_COLUMNS = [
  'id', 'tenant_id', 'command', 'command_key', 'payload', 'priority', 'webhook', 'status', 'location',
  'worker_id', 'lease_id', 'lease_until', 'attempts', 'max_attempts', 'error', 'result_key',
  'idempotency_key', 'visible_at', 'seq', 'created_at', 'updated_at', 'terminal_at', 'last_error', 'cancel_requested',
  'trace_parent', 'trace_state',
] as const;

/** Columns a transition can change (identity, command, payload and creation never change), in the order of mutableValues(). */
export const MUTABLE_COLUMNS = [
  'status', 'location', 'worker_id', 'lease_id', 'lease_until', 'attempts', 'error', 'result_key',
  'visible_at', 'updated_at', 'terminal_at', 'last_error', 'cancel_requested',
] as const;

export function mutableValues(t: TaskRecord): unknown[] {
  return [t.status, t.location, t.workerId, t.leaseId, t.leaseUntilMs, t.attempts, t.error, t.resultKey, t.visibleAtMs, t.updatedAtMs, t.terminalAtMs, t.lastError, t.cancelRequested ? 1 : 0];
}

/** Result columns in the order of resultValues(). */
export const RESULT_COLUMNS = ['task_id', 'tenant_id', 'status', 'result', 'error', 'artifacts', 'completed_at', 'lease_id', 'worker_id'] as const;

export function rowToTask(r: Row): TaskRecord {
  return {
    id: r['id'] as string,
    tenantId: r['tenant_id'] as string,
    command: r['command'] as string,
    commandKey: r['command_key'] as string,
    payload: r['payload'] as string,
    priority: r['priority'] as number,
    webhook: (r['webhook'] as string | null) ?? null,
    status: r['status'] as TaskRecord['status'],
    location: r['location'] as Location,
    workerId: (r['worker_id'] as string | null) ?? null,
    leaseId: (r['lease_id'] as string | null) ?? null,
    leaseUntilMs: (r['lease_until'] as number | null) ?? null,
    attempts: r['attempts'] as number,
    maxAttempts: r['max_attempts'] as number,
    error: (r['error'] as string | null) ?? null,
    resultKey: (r['result_key'] as string | null) ?? null,
    idempotencyKey: (r['idempotency_key'] as string | null) ?? null,
    visibleAtMs: (r['visible_at'] as number | null) ?? null,
    seq: r['seq'] as number,
    createdAtMs: r['created_at'] as number,
    updatedAtMs: r['updated_at'] as number,
    terminalAtMs: (r['terminal_at'] as number | null) ?? null,
    lastError: (r['last_error'] as string | null) ?? null,
    cancelRequested: !!r['cancel_requested'],
    traceParent: (r['trace_parent'] as string | null) ?? null,
    traceState: (r['trace_state'] as string | null) ?? null,
  };
}

export function taskValues(t: TaskRecord): unknown[] {
  return [
    t.id, t.tenantId, t.command, t.commandKey, t.payload, t.priority, t.webhook, t.status, t.location,
    t.workerId, t.leaseId, t.leaseUntilMs, t.attempts, t.maxAttempts, t.error, t.resultKey,
    t.idempotencyKey, t.visibleAtMs, t.seq, t.createdAtMs, t.updatedAtMs, t.terminalAtMs, t.lastError, t.cancelRequested ? 1 : 0,
    t.traceParent ?? null, t.traceState ?? null,
  ];
}

export function rowToResult(r: Row): ResultRecord {
  return {
    taskId: r['task_id'] as string,
    tenantId: r['tenant_id'] as string,
    status: r['status'] as ResultRecord['status'],
    result: (r['result'] as string | null) ?? null,
    error: (r['error'] as string | null) ?? null,
    artifacts: r['artifacts'] ? (JSON.parse(r['artifacts'] as string) as ResultRecord['artifacts']) : null,
    completedAtMs: r['completed_at'] as number,
    leaseId: (r['lease_id'] as string | null) ?? null,
    workerId: (r['worker_id'] as string | null) ?? null,
  };
}

export function resultValues(r: ResultRecord): unknown[] {
  return [r.taskId, r.tenantId, r.status, r.result, r.error, r.artifacts ? JSON.stringify(r.artifacts) : null, r.completedAtMs, r.leaseId, r.workerId];
}

/** The result upsert of both engines (one row; a stored result of the task is replaced); `where` = INSERT … SELECT … WHERE. */
export function resultUpsertSql(table: string, param: (i: number) => string, where?: string): string {
  const values = RESULT_COLUMNS.map((_, i) => param(i + 1)).join(', ');
  return `INSERT INTO ${table} (${RESULT_COLUMNS.join(', ')}) ${where ? `SELECT ${values} ${where}` : `VALUES (${values})`}
   ON CONFLICT(task_id) DO UPDATE SET ${RESULT_COLUMNS.filter((c) => c !== 'task_id' && c !== 'tenant_id').map((c) => `${c} = excluded.${c}`).join(', ')}`;
}

export function rowToTopic(r: Row): Topic {
  return {
    topicId: r['topic_id'] as string,
    tenantId: r['tenant_id'] as string,
    topicName: r['topic_name'] as string,
    policy: JSON.parse(r['policy'] as string) as Topic['policy'],
    version: r['version'] as number,
    createdAtMs: r['created_at'] as number,
    updatedAtMs: r['updated_at'] as number,
  };
}
