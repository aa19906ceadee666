/**
 * The result-webhook outbox (issue 12 item 9, ADR 0012). When a task finishes with a webhook to
 * call, the transition that finishes it carries one delivery row, and the engine writes that row in
 * the same commit as the state change (SQLite group commit, PostgreSQL statement/transaction): an
 * acknowledged completion always has its delivery recorded. A dispatcher (WebhooksService) claims
 * due rows in pages, delivers them, and deletes them on success or on final failure.
 * Plain TypeScript: no NestJS, no TypeORM (conventions §2).
 */
import { randomBytes } from 'node:crypto';
import { resultToJson, type ResultRecord, type TaskRecord } from './task.js';
import { formatTime } from './time.js';

/** One pending result-webhook delivery (a row of the outbox table). Times are epoch ms. */
export interface WebhookOutboxRow {
  /** Delivery id, sent as `X-Codeq-Delivery`; the same for every attempt of this delivery. */
  id: string;
  tenantId: string;
  taskId: string;
  command: string;
  url: string;
  /** The exact callback body (fixed when the task finished; every attempt sends the same bytes). */
  body: string;
  createdAtMs: number;
  /** Attempts started so far (a claimed row counts its attempt at once). */
  attempts: number;
  /** Due time: the row is not claimable before it (backoff, or the lease of a claimed row). */
  nextAttemptAtMs: number;
}

/** Why a row left the outbox without a 2xx (label `reason` of codeq_webhook_deliveries_dropped_total). */
export const WEBHOOK_DROP_REASONS = ['max_attempts', 'max_age', 'refused', 'outbox_full'] as const;
export type WebhookDropReason = (typeof WEBHOOK_DROP_REASONS)[number];

/** The storage side of the outbox; each engine implements it next to its task store. */
export interface WebhookOutbox {
  /**
   * Take up to `limit` rows due at `nowMs` (oldest due first), counting one more attempt on each and
   * hiding them until `leaseUntilMs` (a visibility timeout: a replica that dies mid-attempt leaves
   * its rows to be claimed again after it). Rows taken by one caller are not returned to another
   * before their lease ends (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
   */
  claim(nowMs: number, leaseUntilMs: number, limit: number): Promise<WebhookOutboxRow[]>;
  /** Delete delivered (or finally failed) rows. */
  remove(ids: readonly string[]): Promise<void>;
  /** A failed attempt: the row becomes due again at `nextAttemptAtMs`. */
  retryAt(id: string, nextAttemptAtMs: number): Promise<void>;
  /** Give a claimed row back without counting its attempt (shutdown mid-attempt). */
  release(ids: readonly string[], nowMs: number): Promise<void>;
  /** Rows stored now. */
  count(): Promise<number>;
  /**
   * When more than `maxRows` rows are stored, delete the oldest unclaimed ones beyond the cap and
   * return them (one caller at a time across replicas).
   */
  trim(maxRows: number, nowMs: number): Promise<{ id: string; command: string }[]>;
}

/** An engine that keeps an outbox (both do). */
export interface WebhookOutboxHost {
  webhookOutbox(): WebhookOutbox;
}

export function hasWebhookOutbox(store: unknown): store is WebhookOutboxHost {
  return typeof (store as Partial<WebhookOutboxHost> | null)?.webhookOutbox === 'function';
}

/** The callback body: all seven keys always present (http-api §7.1). */
export function resultCallbackBody(task: TaskRecord, result: ResultRecord): string {
  const r = resultToJson(result);
  return JSON.stringify({
    taskId: task.id,
    eventType: task.command,
    status: result.status,
    result: r['result'] ?? null,
    error: result.error ?? '',
    artifacts: result.artifacts && result.artifacts.length ? result.artifacts : null,
    completedAt: formatTime(result.completedAtMs),
  });
}

/**
 * The delivery a finishing transition writes with its commit: one when the task has a webhook,
 * none otherwise. Called inside transition functions (which may run more than once): it has no
 * side effect, and only the committed run's row is stored.
 */
export function resultWebhook(task: TaskRecord, result: ResultRecord, nowMs: number): WebhookOutboxRow | undefined {
  if (!task.webhook) return undefined;
  return {
    id: `whd_${randomBytes(12).toString('hex')}`,
    tenantId: task.tenantId,
    taskId: task.id,
    command: task.command,
    url: task.webhook,
    body: resultCallbackBody(task, result),
    createdAtMs: nowMs,
    attempts: 0,
    nextAttemptAtMs: nowMs,
  };
}

/** Column names of the outbox tables (both engines), in the order of {@link outboxValues}. */
export const OUTBOX_COLUMNS = ['id', 'tenant_id', 'task_id', 'command', 'url', 'body', 'created_at', 'attempts', 'next_attempt_at'] as const;

export function outboxValues(r: WebhookOutboxRow): unknown[] {
  return [r.id, r.tenantId, r.taskId, r.command, r.url, r.body, r.createdAtMs, r.attempts, r.nextAttemptAtMs];
}

export function rowToOutbox(r: Record<string, unknown>): WebhookOutboxRow {
  return {
    id: String(r['id']),
    tenantId: String(r['tenant_id']),
    taskId: String(r['task_id']),
    command: String(r['command']),
    url: String(r['url']),
    body: String(r['body']),
    createdAtMs: Number(r['created_at']),
    attempts: Number(r['attempts']),
    nextAttemptAtMs: Number(r['next_attempt_at']),
  };
}
