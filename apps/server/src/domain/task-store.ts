/**
 * The storage port. Services express every state change as a guarded transition computed by
 * domain rules; an engine applies it atomically and durably (acknowledged only once committed).
 * Engines: SqliteTaskStore (embedded, default) and PostgresTaskStore (shared by N replicas); both
 * pass the same contract suite (apps/server/test/task-store.contract.ts).
 */
import type { ListStatus, ResultRecord, TaskRecord } from './task.js';
import type { LogLine, LogLineInput, ProgressRecord } from './task-notes.js';
import type { WebhookOutboxRow } from './webhook-outbox.js';

export interface QueueCounts {
  /** Ready tasks per priority 0..9. */
  readyByPriority: number[];
  delayed: number;
  inProgress: number;
  dlq: number;
}

export interface QueueDepth extends QueueCounts {
  tenantId: string;
  commandKey: string;
  /** The command as first spelled by a producer (for metric labels). */
  command: string;
}

/** What a transition function decides. `next` absent = no change (e.g. an idempotent replay). */
export interface Transition<R> {
  next?: TaskRecord;
  result?: ResultRecord;
  /** A result-webhook delivery to record in the same commit as `next` (ADR 0012). */
  webhook?: WebhookOutboxRow;
  value: R;
}

export interface TransitionContext {
  /** The stored result of this task, if any (loaded lazily). */
  result(): ResultRecord | null;
}

export type TransitionFn<R> = (current: TaskRecord | null, ctx: TransitionContext) => Transition<R>;

export interface CreateOutcome {
  task: TaskRecord;
  /** False when an idempotency key replayed an existing task. */
  created: boolean;
}

/** A page of the operator listing: newest first (createdAt desc, id desc), keyset after `after`. */
export interface ListQuery {
  tenantId: string;
  commandKey?: string;
  /** Any of these (empty/absent = every status). */
  statuses?: readonly ListStatus[];
  /** Only dead-lettered tasks. */
  dlq?: boolean;
  /** created_at >= createdAfterMs. */
  createdAfterMs?: number;
  /** created_at < createdBeforeMs. */
  createdBeforeMs?: number;
  /** Strictly older than this (createdAt, id) position. */
  after?: { createdAtMs: number; id: string };
  limit: number;
}

/** Which dead-lettered tasks to redrive. */
export type RedriveSelection = { ids: readonly string[] } | { commandKey: string; limit: number };

export interface PausedCommand {
  tenantId: string;
  commandKey: string;
  command: string;
}

export interface ExpiredLease {
  tenantId: string;
  taskId: string;
  leaseId: string;
}

export interface TaskStore {
  /** Open the engine, run migrations, rebuild memory indexes. */
  open(): Promise<void>;
  /** Flush pending writes and close. */
  close(): Promise<void>;
  /** True while the engine can serve (for /readyz); false once draining. */
  healthy(): boolean;
  /** Shutdown has begun: wake every long-poll waiter and stop parking new ones. */
  drain(): void;

  /**
   * Insert a task, or — when `task.idempotencyKey` is already used in the same tenant by a stored
   * task — return that task unchanged. Atomic per (tenant, key).
   */
  create(task: TaskRecord): Promise<CreateOutcome>;
  /** A task of this tenant, or null (foreign tasks are invisible). */
  get(tenantId: string, id: string): Promise<TaskRecord | null>;
  /** The result of a task of this tenant, or null. */
  getResult(tenantId: string, id: string): Promise<ResultRecord | null>;

  /**
   * Take up to `count` ready tasks of the tenant from the queues of `commandKeys` and lease each
   * with `lease`. Order (ADR 0007): the highest priority ready in any of the commands first; among
   * commands with ready tasks of that priority, round-robin (a per-tenant cursor rotates the first
   * command after every task taken); FIFO within one command and priority. So a priority-9 task
   * of the second command never waits behind the first command's backlog, and equal-priority
   * backlogs are served in turn.
   */
  claim(tenantId: string, commandKeys: readonly string[], count: number, lease: (t: TaskRecord) => TaskRecord): Promise<TaskRecord[]>;
  /** Resolve when work may be ready on one of the queues, at `deadlineMs`, or on abort. */
  waitForWork(tenantId: string, commandKeys: readonly string[], deadlineMs: number, signal?: AbortSignal): Promise<void>;

  /**
   * Apply a guarded transition atomically. `tenantId` null = system access (reapers).
   * `fn` receives null for unknown or foreign tasks; it throws to refuse (nothing changes).
   * An engine with optimistic concurrency (PostgreSQL) may call `fn` more than once, each time on
   * a newer state; only the last call's outcome counts, so `fn` must not leave effects behind.
   */
  transition<R>(tenantId: string | null, id: string, fn: TransitionFn<R>): Promise<R>;
  /** Resolve when the task's result is stored, at `deadlineMs`, or on abort. */
  waitForResult(tenantId: string, id: string, deadlineMs: number, signal?: AbortSignal): Promise<void>;

  /** Register the handler called with leases whose expiry passed (one timer, no polling). */
  onLeaseExpired(handler: (leases: ExpiredLease[]) => void): void;

  /** Counts for one (tenant, command). */
  counts(tenantId: string, commandKey: string): Promise<QueueCounts>;
  /** Counts of every queue (admin overview, metrics). */
  depths(): Promise<QueueDepth[]>;

  /** One page of tasks of a tenant, read from indexes of the database (never a full scan). */
  list(q: ListQuery): Promise<TaskRecord[]>;
  /**
   * Move dead-lettered tasks of the tenant back to the ready queue (attempts 0, error cleared,
   * stored FAILED result removed), in one transaction. Ids that are not dead-lettered in this
   * tenant are skipped. Returns the tasks moved.
   */
  redrive(tenantId: string, sel: RedriveSelection, now: number): Promise<TaskRecord[]>;
  /** Pause or resume claims of one command (durable; every replica sees it). Resume wakes waiters. */
  setPaused(tenantId: string, commandKey: string, command: string, paused: boolean): Promise<void>;
  /** Paused commands of one tenant, or of all. */
  pausedCommands(tenantId?: string): Promise<PausedCommand[]>;

  /**
   * Task notes (issue 17 item 3), kept apart from the task row (never in memory indexes). The
   * write happens only if `guard` accepts the task's current state (it throws to refuse; the
   * engine passes null for an unknown or foreign task), atomically with respect to lease changes:
   * `progress` replaces the stored value (tagged with the task's current attempt), `logs` are
   * appended and the task keeps its last `maxLines` lines. Deleted with the task (purge).
   */
  writeNotes(
    tenantId: string,
    id: string,
    guard: (t: TaskRecord | null) => TaskRecord,
    notes: { progress?: string; logs?: readonly LogLineInput[]; maxLines: number },
    now: number,
  ): Promise<void>;
  /** The stored progress of a task of this tenant (any attempt), or null. */
  progress(tenantId: string, id: string): Promise<ProgressRecord | null>;
  /** The stored log lines of a task of this tenant, oldest first, after line `afterN` (0 = all). */
  logs(tenantId: string, id: string, afterN: number, limit: number): Promise<LogLine[]>;

  /**
   * Delete up to `limit` terminal tasks (with results and idempotency keys) that ended at or
   * before `terminalBeforeMs` (and their notes), of one tenant or of all. Live tasks are never deleted.
   */
  purgeTerminal(terminalBeforeMs: number, limit: number, tenantId?: string): Promise<number>;
}
