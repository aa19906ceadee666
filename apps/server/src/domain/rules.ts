/**
 * The task state machine (task-model §3) as pure functions: each takes the current record and
 * returns the next one, or throws a CodeqError with upstream's message. Engines apply the result
 * atomically; services add effects (metrics, webhooks).
 */
import { CodeqError } from '@codeq/proto/errors';
import type { ArtifactRef, ResultRecord, TaskRecord } from './task.js';

export interface Actor {
  /** Token subject: the worker id for ownership checks. */
  workerId: string;
  /** Lease fencing (architecture §3.3): when given, must match the task's current lease. */
  leaseId?: string;
}

/** Upstream: a task must be held by the caller (same workerId), and, when given, by this lease. */
function assertHolder(t: TaskRecord, actor: Actor): void {
  if (actor.leaseId !== undefined) {
    if (t.leaseId !== actor.leaseId) {
      if (t.status === 'IN_PROGRESS' && t.workerId && t.workerId !== actor.workerId) throw new CodeqError('NOT_OWNER', 'not-owner', { taskId: t.id });
      throw new CodeqError('LEASE_NOT_HELD', 'lease-mismatch', { taskId: t.id });
    }
    if (t.workerId !== actor.workerId) throw new CodeqError('NOT_OWNER', 'not-owner', { taskId: t.id });
    return;
  }
  if (t.workerId !== actor.workerId) throw new CodeqError('NOT_OWNER', 'not-owner', { taskId: t.id });
}

/**
 * What a claim leases with (the storage port takes it as data, issue 11 item 2): who, for how
 * long, from when, and the claim's fresh lease id. Task `i` of the claim (0-based, claim order)
 * is leased under `leaseIdAt(spec, i)`, so every task of a batch has its own lease id.
 */
export interface LeaseSpec {
  workerId: string;
  leaseSeconds: number;
  now: number;
  /** A fresh random UUID per claim. */
  leaseId: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The lease id of task `i` of a claim: the claim's id for the first task; for the next ones the
 * same UUID with its last 32 bits XOR `i` (still a UUID; the other 90 random bits keep it unique).
 */
export function leaseIdAt(spec: Pick<LeaseSpec, 'leaseId'>, i: number): string {
  if (i === 0) return spec.leaseId;
  const base = spec.leaseId;
  if (!UUID.test(base)) return `${base}.${i}`;
  const low = (parseInt(base.slice(28), 16) ^ i) >>> 0;
  return base.slice(0, 28) + low.toString(16).padStart(8, '0');
}

/** The lease expiry of a claim. */
export function leaseUntil(spec: Pick<LeaseSpec, 'leaseSeconds' | 'now'>): number {
  return spec.now + spec.leaseSeconds * 1000;
}

/** Task `i` of a claim (a ready task) leased to the claimer: IN_PROGRESS, one more attempt. */
export function claimTask(t: TaskRecord, spec: LeaseSpec, i: number): TaskRecord {
  return leaseTask(t, spec.workerId, leaseIdAt(spec, i), spec.leaseSeconds, spec.now);
}

/** Delayed tasks are due at the start of their second (upstream compares whole Unix seconds). */
export function dueAt(visibleAtMs: number): number {
  return Math.floor(visibleAtMs / 1000) * 1000;
}

/** True when a delayed task is due at `now` (see dueAt). */
export function isDue(visibleAtMs: number, now: number): boolean {
  return dueAt(visibleAtMs) <= now;
}

/** Every delayed task with visible_at below this is due at `now` (the SQL form of isDue). */
export function dueBefore(now: number): number {
  return (Math.floor(now / 1000) + 1) * 1000;
}

/** A due delayed task → ready (PENDING_LIST); any other task is returned unchanged. */
export function promote(t: TaskRecord, now: number): TaskRecord {
  if (t.status !== 'PENDING' || t.location !== 'DELAYED_ZSET' || t.visibleAtMs === null || !isDue(t.visibleAtMs, now)) return t;
  return { ...t, status: 'PENDING', location: 'PENDING_LIST', workerId: null, leaseId: null, leaseUntilMs: null, visibleAtMs: null, updatedAtMs: now };
}

export function leaseTask(t: TaskRecord, workerId: string, leaseId: string, leaseSeconds: number, now: number): TaskRecord {
  return {
    ...t,
    status: 'IN_PROGRESS',
    location: 'INPROG_SET',
    workerId,
    leaseId,
    leaseUntilMs: now + leaseSeconds * 1000,
    attempts: t.attempts + 1,
    visibleAtMs: null,
    updatedAtMs: now,
  };
}

export function heartbeat(t: TaskRecord | null, actor: Actor, extendSeconds: number, now: number): TaskRecord {
  if (!t) throw new CodeqError('TASK_NOT_FOUND', 'not-found');
  assertNotCancelled(t);
  assertHolder(t, actor);
  if (t.status !== 'IN_PROGRESS') throw new CodeqError('NOT_IN_PROGRESS', 'not-in-progress', { taskId: t.id });
  return { ...t, location: 'INPROG_SET', leaseUntilMs: now + extendSeconds * 1000, updatedAtMs: now };
}

/**
 * Progress and log lines: accepted from the lease holder of an IN_PROGRESS task only, with the
 * heartbeat's checks and error codes (no change to the task itself).
 */
export function assertCanReport(t: TaskRecord | null, actor: Actor): TaskRecord {
  if (!t) throw new CodeqError('TASK_NOT_FOUND', 'not-found');
  assertNotCancelled(t);
  assertHolder(t, actor);
  if (t.status !== 'IN_PROGRESS') throw new CodeqError('NOT_IN_PROGRESS', 'not-in-progress', { taskId: t.id });
  return t;
}

export function abandon(t: TaskRecord | null, actor: Actor, now: number): TaskRecord {
  if (!t) throw new CodeqError('TASK_NOT_FOUND', 'not-found');
  assertNotCancelled(t);
  assertHolder(t, actor);
  if (t.status !== 'IN_PROGRESS') throw new CodeqError('NOT_IN_PROGRESS', 'not-in-progress', { taskId: t.id });
  return { ...t, status: 'PENDING', location: 'PENDING_LIST', workerId: null, leaseId: null, leaseUntilMs: null, updatedAtMs: now };
}

export type RetryOutcome = { kind: 'requeued'; delaySeconds: number } | { kind: 'dlq'; error: string };

/**
 * After a failed delivery (nack or lease expiry): dead-letter when the deliveries used up
 * maxAttempts, else schedule the next delivery after `delaySeconds`.
 */
export function retryOrDeadLetter(t: TaskRecord, delaySeconds: number, deadReason: string, now: number, reason: string | null = deadReason): { next: TaskRecord; outcome: RetryOutcome } {
  const base = { ...t, workerId: null, leaseId: null, leaseUntilMs: null, updatedAtMs: now, lastError: reason ?? t.lastError };
  if (t.attempts >= t.maxAttempts) {
    return {
      next: { ...base, status: 'FAILED', location: 'DLQ_SET', error: deadReason, lastError: deadReason, visibleAtMs: null, terminalAtMs: now },
      outcome: { kind: 'dlq', error: deadReason },
    };
  }
  return {
    next: { ...base, status: 'PENDING', location: 'DELAYED_ZSET', error: null, visibleAtMs: now + delaySeconds * 1000 },
    outcome: { kind: 'requeued', delaySeconds },
  };
}

/** Nack check order (http-api §6.7): not-found → not-owner → not-in-progress. */
export function assertCanNack(t: TaskRecord | null, actor: Actor): TaskRecord {
  if (!t) throw new CodeqError('TASK_NOT_FOUND', 'not-found');
  assertNotCancelled(t);
  assertHolder(t, actor);
  if (t.status !== 'IN_PROGRESS') throw new CodeqError('NOT_IN_PROGRESS', 'not-in-progress', { taskId: t.id });
  return t;
}

export interface ResultSubmission {
  status: 'COMPLETED' | 'FAILED';
  /** JSON text of the result object, or null. */
  result: string | null;
  error: string | null;
  artifacts: ArtifactRef[];
}

/** Result check order (http-api §6.8): task not found → not-owner → not-in-progress. */
export function assertCanComplete(t: TaskRecord | null, actor: Actor, stored: () => ResultRecord | null): { replay: ResultRecord | null } {
  if (!t) throw new CodeqError('TASK_NOT_FOUND', 'task not found');
  assertNotCancelled(t);
  // Idempotent resubmission for the same lease (architecture §3.3).
  if (actor.leaseId !== undefined && t.status !== 'IN_PROGRESS') {
    const r = stored();
    if (r && r.leaseId === actor.leaseId && r.workerId === actor.workerId) return { replay: r };
  }
  if (actor.leaseId !== undefined) assertHolder(t, actor);
  else if (t.workerId && actor.workerId && t.workerId !== actor.workerId) throw new CodeqError('NOT_OWNER', 'not-owner', { taskId: t.id });
  if (t.status !== 'IN_PROGRESS') throw new CodeqError('NOT_IN_PROGRESS', 'not-in-progress', { taskId: t.id });
  return { replay: null };
}

export function complete(t: TaskRecord, actor: Actor, s: ResultSubmission, now: number): { next: TaskRecord; result: ResultRecord } {
  const result: ResultRecord = {
    taskId: t.id,
    tenantId: t.tenantId,
    status: s.status,
    result: s.result,
    error: s.error,
    artifacts: s.artifacts.length ? s.artifacts : null,
    completedAtMs: now,
    leaseId: t.leaseId,
    workerId: actor.workerId,
  };
  const next: TaskRecord = {
    ...t,
    status: s.status,
    location: 'NONE',
    workerId: null,
    leaseId: null,
    leaseUntilMs: null,
    error: s.error ? s.error : t.error,
    lastError: s.error ? s.error : t.lastError,
    resultKey: 'codeq:results',
    updatedAtMs: now,
    terminalAtMs: now,
  };
  return { next, result };
}

/** The FAILED record written when a task is dead-lettered, so result waiters finish (architecture §2). */
export function deadLetterResult(t: TaskRecord, error: string, now: number): ResultRecord {
  return { taskId: t.id, tenantId: t.tenantId, status: 'FAILED', result: null, error, artifacts: null, completedAtMs: now, leaseId: null, workerId: null };
}

// ---------------------------------------------------------------------------------------------
// Cancellation (operator API)

/** A cancelled task refuses every worker call with 409 CANCELLED. */
export function assertNotCancelled(t: TaskRecord): void {
  if (t.status === 'CANCELLED') throw new CodeqError('CANCELLED', 'cancelled', { taskId: t.id });
}

/** The terminal CANCELLED state and the result record that finishes result waiters. */
export function finishCancelled(t: TaskRecord, now: number): { next: TaskRecord; result: ResultRecord } {
  const next: TaskRecord = {
    ...t,
    status: 'CANCELLED',
    location: 'NONE',
    workerId: null,
    leaseId: null,
    leaseUntilMs: null,
    visibleAtMs: null,
    resultKey: 'codeq:results',
    updatedAtMs: now,
    terminalAtMs: now,
  };
  const result: ResultRecord = { taskId: t.id, tenantId: t.tenantId, status: 'CANCELLED', result: null, error: 'cancelled', artifacts: null, completedAtMs: now, leaseId: null, workerId: null };
  return { next, result };
}

export type CancelOutcome =
  | { kind: 'cancelled'; next: TaskRecord; result: ResultRecord }
  | { kind: 'requested'; next: TaskRecord }
  | { kind: 'unchanged'; task: TaskRecord };

/**
 * A producer cancels a task: PENDING (ready or scheduled) → CANCELLED at once; IN_PROGRESS →
 * cancel requested (the holder is told at its next heartbeat/result/nack); CANCELLED → unchanged
 * (idempotent); COMPLETED/FAILED → 409 TASK_FINISHED.
 */
export function cancelTask(t: TaskRecord | null, now: number): CancelOutcome {
  if (!t) throw new CodeqError('TASK_NOT_FOUND', 'task not found');
  switch (t.status) {
    case 'CANCELLED':
      return { kind: 'unchanged', task: t };
    case 'COMPLETED':
    case 'FAILED':
      throw new CodeqError('TASK_FINISHED', 'task already finished', { taskId: t.id, status: t.status });
    case 'PENDING':
      return { kind: 'cancelled', ...finishCancelled(t, now) };
    case 'IN_PROGRESS':
      if (t.cancelRequested) return { kind: 'unchanged', task: t };
      return { kind: 'requested', next: { ...t, cancelRequested: true, updatedAtMs: now } };
  }
}

/**
 * When the holder of a cancel-requested task calls (heartbeat, result, nack, abandon), the task
 * ends CANCELLED. Returns null when the task is not cancel-requested. Holder checks first: another
 * worker still gets NOT_OWNER / LEASE_NOT_HELD.
 */
export function cancelForHolder(t: TaskRecord | null, actor: Actor, now: number): { next: TaskRecord; result: ResultRecord } | null {
  if (!t || t.status !== 'IN_PROGRESS' || !t.cancelRequested) return null;
  assertHolder(t, actor);
  return finishCancelled(t, now);
}

/** Dead-lettered task back to the ready queue: attempts reset, error cleared (lastError kept as history). */
export function redriveTask(t: TaskRecord, now: number): TaskRecord {
  return {
    ...t,
    status: 'PENDING',
    location: 'PENDING_LIST',
    workerId: null,
    leaseId: null,
    leaseUntilMs: null,
    attempts: 0,
    error: null,
    resultKey: null,
    visibleAtMs: null,
    updatedAtMs: now,
    terminalAtMs: null,
    cancelRequested: false,
  };
}
