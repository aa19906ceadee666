/** Claims, heartbeats, nack, abandon and lease expiry (use cases over the TaskStore port). */
import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { CodeqError } from '@codeq/proto/errors';
import type { Config } from '../../config/config.js';
import { CLOCK, CONFIG, LOGGER, TASK_STORE, type Clock } from '../../common/tokens.js';
import type { Logger } from '../../common/logger.js';
import type { ExpiredLease, TaskStore } from '../../domain/task-store.js';
import { commandKeyOf, type TaskRecord } from '../../domain/task.js';
import { authorisedCommands } from '../../domain/claims.js';
import { backoffSeconds, nackDelaySeconds } from '../../domain/backoff.js';
import { assertCanReport } from '../../domain/rules.js';
import { MAX_LOG_LINES, type LogLineInput } from '../../domain/task-notes.js';
import { abandon, assertCanNack, cancelForHolder, deadLetterResult, finishCancelled, heartbeat, retryOrDeadLetter, type Actor } from '../../domain/rules.js';
import { resultWebhook } from '../../domain/webhook-outbox.js';
import type { Abandon, Claim, Heartbeat, Nack } from '../../domain/commands.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { TaskEvents } from '../tasks/task-events.js';
import { TopicsService } from '../tenants/topics.service.js';
import { elapsedMs, recordTaskSpan, spansEnabled, stopwatch } from '../../common/tracing.js';

export interface WorkerIdentity {
  tenantId: string;
  workerId: string;
  eventTypes: readonly string[];
}

/** A claim whose commands the worker may take (from {@link LeasesService.authorise}, once per request). */
export interface AuthorisedClaim extends Claim {
  /** Distinct command keys, in request order. */
  readonly keys: readonly string[];
}

const actorOf = (workerId: string, leaseId: string | undefined): Actor => (leaseId ? { workerId, leaseId } : { workerId });
/** Expired leases handled at once (one group commit per slice on the embedded engine). */
const EXPIRE_CONCURRENCY = 256;

@Injectable()
export class LeasesService implements OnApplicationBootstrap {
  constructor(
    @Inject(TASK_STORE) private readonly store: TaskStore,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(MetricsService) private readonly metrics: MetricsService,
    @Inject(TaskEvents) private readonly events: TaskEvents,
    @Inject(TopicsService) private readonly topics: TopicsService,
  ) {}

  /** Queues the worker may take from now, and how many tasks (topic maxConsumers caps in-progress). */
  private async capacity(tenantId: string, keys: string[], count: number): Promise<{ keys: string[]; count: number }> {
    let n = count;
    const open: string[] = [];
    for (const k of keys) {
      const max = this.topics.policyFor(tenantId, k)?.maxConsumers ?? 0;
      if (max <= 0) {
        open.push(k);
        continue;
      }
      const free = max - (await this.store.counts(tenantId, k)).inProgress;
      if (free <= 0) continue;
      open.push(k);
      n = Math.min(n, free);
    }
    return { keys: open, count: n };
  }

  onApplicationBootstrap(): void {
    this.store.onLeaseExpired((leases) => void this.expire(leases));
  }

  /** The commands of a claim the worker may take (403 `event type not allowed` otherwise). */
  authorise(w: WorkerIdentity, claim: Claim): AuthorisedClaim {
    if (!w.workerId) throw new CodeqError('VALIDATION_FAILED', 'workerId is required');
    const cmds = authorisedCommands(w.eventTypes, claim.commands);
    if (!cmds) throw new CodeqError('FORBIDDEN', 'event type not allowed');
    return { ...claim, keys: [...new Set(cmds.map(commandKeyOf))] };
  }

  /**
   * Claim up to `input.count` tasks; with `waitSeconds` a single claim parks until a create or a
   * promotion wakes it (no polling).
   */
  async claim(w: WorkerIdentity, input: AuthorisedClaim, signal?: AbortSignal | (() => AbortSignal)): Promise<TaskRecord[]> {
    const keys = [...input.keys];
    const deadline = this.clock.now() + input.waitSeconds * 1000;
    for (;;) {
      const now = this.clock.now();
      const cap = await this.capacity(w.tenantId, keys, input.count);
      const sw = stopwatch();
      const tasks = cap.keys.length ? await this.store.claim(w.tenantId, cap.keys, cap.count, { workerId: w.workerId, leaseSeconds: input.leaseSeconds, now, leaseId: randomUUID() }) : [];
      if (tasks.length) {
        const commitMs = elapsedMs(sw);
        const spans = spansEnabled();
        for (const t of tasks) {
          this.metrics.countClaimed(t.command);
          if (spans) recordTaskSpan('claim', t, sw, commitMs, { 'codeq.worker_id': w.workerId, 'codeq.attempt': t.attempts, 'codeq.claim.batch_size': tasks.length });
        }
        return tasks;
      }
      if (typeof signal === 'function') signal = signal(); // created only when the claim must wait
      if (this.clock.now() >= deadline || signal?.aborted || !this.store.healthy()) return [];
      await this.store.waitForWork(w.tenantId, keys, deadline, signal);
      // A caller that went away while waiting must not get a task leased to a dead connection.
      if (signal?.aborted) return [];
    }
  }

  /**
   * Heartbeat. On a cancel-requested task the holder is answered 409 CANCELLED and the task ends
   * CANCELLED (result waiters finish with status CANCELLED).
   */
  async heartbeat(tenantId: string, workerId: string, cmd: Heartbeat): Promise<TaskRecord> {
    const { taskId: id, extendSeconds } = cmd;
    const actor = actorOf(workerId, cmd.leaseId);
    const now = this.clock.now();
    const out = await this.store.transition<{ task: TaskRecord; cancelled: boolean }>(tenantId, id, (t) => {
      const c = cancelIfRequested(t, actor, now);
      if (c) return { next: c.next, result: c.result, value: { task: c.next, cancelled: true } };
      const next = heartbeat(t, actor, extendSeconds, now);
      return { next, value: { task: next, cancelled: false } };
    });
    if (out.cancelled) throw this.cancelled(out.task);
    return out.task;
  }

  /** Store the holder's progress value (JSON text) on the task; lease-fenced like a heartbeat. */
  async progress(tenantId: string, actor: Actor, id: string, value: string): Promise<void> {
    await this.store.writeNotes(tenantId, id, (t) => assertCanReport(t, actor), { progress: value, maxLines: MAX_LOG_LINES }, this.clock.now());
  }

  /** Append the holder's log lines to the task's log (the last MAX_LOG_LINES are kept). */
  async appendLogs(tenantId: string, actor: Actor, id: string, lines: readonly LogLineInput[]): Promise<void> {
    await this.store.writeNotes(tenantId, id, (t) => assertCanReport(t, actor), { logs: lines, maxLines: MAX_LOG_LINES }, this.clock.now());
  }

  /** Abandon: back to the ready queue, or CANCELLED when a cancel was requested. */
  async abandon(tenantId: string, workerId: string, cmd: Abandon): Promise<'requeued' | 'cancelled'> {
    const id = cmd.taskId;
    const actor = actorOf(workerId, cmd.leaseId);
    const now = this.clock.now();
    const out = await this.store.transition<{ task: TaskRecord; cancelled: boolean }>(tenantId, id, (t) => {
      const c = cancelIfRequested(t, actor, now);
      if (c) return { next: c.next, result: c.result, value: { task: c.next, cancelled: true } };
      const next = abandon(t, actor, now);
      return { next, value: { task: next, cancelled: false } };
    });
    if (out.cancelled) {
      this.metrics.cancelled.inc({ command: out.task.command });
      return 'cancelled';
    }
    return 'requeued';
  }

  /** The holder learns its task was cancelled; the task has just ended CANCELLED. */
  private cancelled(t: TaskRecord): CodeqError {
    this.metrics.cancelled.inc({ command: t.command });
    this.log.info({ taskId: t.id, tenantId: t.tenantId }, 'task cancelled (holder told)');
    return new CodeqError('CANCELLED', 'cancelled', { taskId: t.id });
  }

  /** Nack: retry after a delay, or dead-letter when the deliveries are used up. */
  async nack(tenantId: string, workerId: string, cmd: Nack): Promise<{ status: 'requeued' | 'dlq'; delaySeconds: number }> {
    const { taskId: id, delaySeconds, reason } = cmd;
    const actor = actorOf(workerId, cmd.leaseId);
    const now = this.clock.now();
    let dead: { task: TaskRecord; error: string } | null = null;
    let cancelled: TaskRecord | null = null;
    const out = await this.store.transition<{ status: 'requeued' | 'dlq'; delaySeconds: number }>(tenantId, id, (t) => {
      dead = null; // the engine may run this more than once (after a lost race)
      cancelled = null;
      const c = cancelIfRequested(t, actor, now);
      if (c) {
        cancelled = c.next;
        return { next: c.next, result: c.result, value: { status: 'requeued', delaySeconds: 0 } };
      }
      const cur = assertCanNack(t, actor);
      const delay = nackDelaySeconds(this.config.backoff, delaySeconds, cur.attempts);
      const { next, outcome } = retryOrDeadLetter(cur, delay, reason || 'MAX_ATTEMPTS', now, reason || null);
      if (outcome.kind === 'dlq') {
        next.resultKey = 'codeq:results';
        dead = { task: next, error: outcome.error };
        const result = deadLetterResult(next, outcome.error, now);
        return { next, result, webhook: resultWebhook(next, result, now), value: { status: 'dlq', delaySeconds: 0 } };
      }
      return { next, value: { status: 'requeued', delaySeconds: outcome.delaySeconds } };
    });
    if (cancelled) throw this.cancelled(cancelled);
    if (dead) this.afterDeadLetter(dead, now);
    return out;
  }

  private afterDeadLetter(dead: { task: TaskRecord; error: string }, now: number): void {
    this.metrics.observeCompletion(dead.task.command, 'FAILED', dead.task.createdAtMs, now);
    this.events.emitFinished(dead.task, deadLetterResult(dead.task, dead.error, now));
  }

  /** Lease expiry: retry with backoff, or dead-letter with `LEASE_EXPIRED`. */
  async expire(leases: ExpiredLease[]): Promise<void> {
    // Slices run concurrently, so an embedded engine commits a slice in one group commit (after
    // downtime, thousands of leases expire at once; one commit each took seconds).
    for (let i = 0; i < leases.length; i += EXPIRE_CONCURRENCY) {
      await Promise.all(leases.slice(i, i + EXPIRE_CONCURRENCY).map((l) => this.expireOne(l)));
    }
  }

  private async expireOne(l: ExpiredLease): Promise<void> {
    const now = this.clock.now();
    let dead: { task: TaskRecord; error: string } | null = null;
    let cancelled: TaskRecord | null = null;
    try {
      const expired = await this.store.transition<string | null>(null, l.taskId, (t) => {
        dead = null; // the engine may run this more than once (after a lost race)
        cancelled = null;
        // Guard with the current state and lease: a task finished meanwhile is left alone.
        if (!t || t.status !== 'IN_PROGRESS' || t.leaseId !== l.leaseId || (t.leaseUntilMs ?? 0) > now) return { value: null };
        // A cancel-requested task whose holder went silent ends CANCELLED, not retried.
        if (t.cancelRequested) {
          const c = finishCancelled(t, now);
          cancelled = c.next;
          return { next: c.next, result: c.result, value: t.command };
        }
        const delay = backoffSeconds(this.config.backoff, t.attempts);
        const { next, outcome } = retryOrDeadLetter(t, delay, 'LEASE_EXPIRED', now);
        if (outcome.kind === 'dlq') {
          next.resultKey = 'codeq:results';
          dead = { task: next, error: outcome.error };
          const result = deadLetterResult(next, outcome.error, now);
          return { next, result, webhook: resultWebhook(next, result, now), value: t.command };
        }
        return { next, value: t.command };
      });
      if (expired !== null) {
        this.metrics.leaseExpired.inc({ command: expired });
        this.log.warn({ taskId: l.taskId, tenantId: l.tenantId }, 'lease expired');
      }
      if (dead) this.afterDeadLetter(dead, now);
      if (cancelled) this.metrics.cancelled.inc({ command: (cancelled as TaskRecord).command });
    } catch (e) {
      this.log.error({ taskId: l.taskId, err: (e as Error).message }, 'lease expiry failed');
    }
  }
}

/** A cancel-requested task called by its holder ends CANCELLED; a CANCELLED task refuses (409). */
function cancelIfRequested(t: TaskRecord | null, actor: Actor, now: number): ReturnType<typeof cancelForHolder> {
  if (t && t.status === 'CANCELLED') throw new CodeqError('CANCELLED', 'cancelled', { taskId: t.id });
  return cancelForHolder(t, actor, now);
}
