/**
 * The task model: states, locations, the stored record and its JSON shape.
 * Plain TypeScript: no NestJS, no TypeORM (conventions §2).
 */
import { formatTime, formatLeaseUntil } from './time.js';

export const TASK_STATUSES = ['PENDING', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const LOCATIONS = ['PENDING_LIST', 'DELAYED_ZSET', 'INPROG_SET', 'DLQ_SET', 'NONE'] as const;
export type Location = (typeof LOCATIONS)[number];

/** Priorities are 0..9, higher first. */
export const MAX_PRIORITY = 9;

/** The stored task. Times are epoch milliseconds. */
export interface TaskRecord {
  id: string;
  tenantId: string;
  command: string;
  /** Lower-cased command: the queue identity (upstream: `Foo` and `foo` share a queue). */
  commandKey: string;
  /** JSON text of the producer's payload (Go encoding/json style). */
  payload: string;
  priority: number;
  webhook: string | null;
  status: TaskStatus;
  location: Location;
  workerId: string | null;
  leaseId: string | null;
  leaseUntilMs: number | null;
  /** Deliveries so far (architecture §2: attempts count deliveries). */
  attempts: number;
  maxAttempts: number;
  error: string | null;
  resultKey: string | null;
  idempotencyKey: string | null;
  /** When a scheduled (DELAYED_ZSET) task becomes claimable. */
  visibleAtMs: number | null;
  /** Arrival order in the ready index (FIFO within a priority). */
  seq: number;
  createdAtMs: number;
  updatedAtMs: number;
  /** When the task reached a terminal state (drives retention). */
  terminalAtMs: number | null;
  /** The last failure seen (nack reason, lease expiry, failed result, dead-letter reason); kept across retries. */
  lastError: string | null;
  /** A producer asked to cancel this IN_PROGRESS task; its holder is told at its next heartbeat/result. */
  cancelRequested: boolean;
  /** W3C `traceparent` of the producer's submit span, stored at creation (never changes); null when none. */
  traceParent?: string | null;
  /** W3C `tracestate` that came with {@link traceParent}. */
  traceState?: string | null;
}

export interface ArtifactRef {
  name: string;
  url: string;
}

/** The stored outcome of a task. */
export interface ResultRecord {
  taskId: string;
  tenantId: string;
  status: 'COMPLETED' | 'FAILED' | 'CANCELLED';
  /** JSON text of the worker's result object, or null. */
  result: string | null;
  error: string | null;
  artifacts: ArtifactRef[] | null;
  completedAtMs: number;
  /** Lease that produced the result (makes resubmission idempotent). */
  leaseId: string | null;
  workerId: string | null;
}

export function isTerminal(status: TaskStatus): boolean {
  return status === 'COMPLETED' || status === 'FAILED' || status === 'CANCELLED';
}

/** Queue identity of a command. */
export function commandKeyOf(command: string): string {
  return command.toLowerCase();
}

/** Task JSON in upstream's field order with omitempty semantics (http-api §4.1). */
export function taskToJson(t: TaskRecord): Record<string, unknown> {
  const o: Record<string, unknown> = { id: t.id, command: t.command, payload: t.payload };
  if (t.priority) o['priority'] = t.priority;
  if (t.webhook) o['webhook'] = t.webhook;
  o['status'] = t.status;
  o['lastKnownLocation'] = t.location;
  if (t.workerId) o['workerId'] = t.workerId;
  if (t.leaseUntilMs != null) o['leaseUntil'] = formatLeaseUntil(t.leaseUntilMs);
  if (t.leaseId) o['leaseId'] = t.leaseId;
  if (t.attempts) o['attempts'] = t.attempts;
  if (t.maxAttempts) o['maxAttempts'] = t.maxAttempts;
  if (t.error) o['error'] = t.error;
  if (t.resultKey) o['resultKey'] = t.resultKey;
  if (t.tenantId) o['tenantId'] = t.tenantId;
  o['createdAt'] = formatTime(t.createdAtMs);
  o['updatedAt'] = formatTime(t.updatedAtMs);
  if (t.cancelRequested) o['cancelRequested'] = true;
  // codeQ-TS addition: the W3C trace context the task was created with (omitted when none).
  if (t.traceParent) o['traceParent'] = t.traceParent;
  if (t.traceState) o['traceState'] = t.traceState;
  return o;
}

/** Status names of the operator listing: a scheduled PENDING task is DELAYED there. */
export const LIST_STATUSES = ['PENDING', 'DELAYED', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type ListStatus = (typeof LIST_STATUSES)[number];

/** A task as the operator listing shows it: the task JSON plus attempts (always) and the last error. */
export function taskToListJson(t: TaskRecord): Record<string, unknown> {
  const o = taskToJson(t);
  o['attempts'] = t.attempts;
  const lastError = t.lastError ?? t.error;
  if (lastError) o['lastError'] = lastError;
  return o;
}

/** ResultRecord JSON (http-api §4.2). */
export function resultToJson(r: ResultRecord): Record<string, unknown> {
  const o: Record<string, unknown> = { taskId: r.taskId, status: r.status };
  if (r.result != null) o['result'] = JSON.parse(r.result) as unknown;
  if (r.error) o['error'] = r.error;
  if (r.artifacts && r.artifacts.length) o['artifacts'] = r.artifacts;
  o['completedAt'] = formatTime(r.completedAtMs);
  return o;
}
