/** Create, read, results, stats and retention (use cases over the TaskStore port). */
import { currentProgress, type LogLine } from '../../domain/task-notes.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { CodeqError } from '@codeq/proto/errors';
import type { Config } from '../../config/config.js';
import { CLOCK, CONFIG, LOGGER, TASK_STORE, type Clock } from '../../common/tokens.js';
import type { Logger } from '../../common/logger.js';
import { newTaskId } from '../../domain/ids.js';
import type { TaskStore, QueueCounts } from '../../domain/task-store.js';
import { commandKeyOf, type ArtifactRef, type ResultRecord, type TaskRecord } from '../../domain/task.js';
import { bad, type CreateTask, type SubmitResult } from '../../domain/commands.js';
import { assertCanComplete, cancelForHolder, complete, type Actor } from '../../domain/rules.js';
import { resultWebhook } from '../../domain/webhook-outbox.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { elapsedMs, recordTaskSpan, spansEnabled, stopwatch } from '../../common/tracing.js';
import { TaskEvents } from './task-events.js';
import { TopicsService } from '../tenants/topics.service.js';
import { tierPriority } from '../../domain/topic.js';
import { discard, pendingName, publish, removeOrphanArtifacts } from './artifact-files.js';

export type BatchItemOutcome = { task: TaskRecord } | { error: string };

@Injectable()
export class TasksService implements OnModuleInit, OnModuleDestroy {
  private retentionTimer: NodeJS.Timeout | null = null;
  private sweeping = false;

  constructor(
    @Inject(TASK_STORE) private readonly store: TaskStore,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(MetricsService) private readonly metrics: MetricsService,
    @Inject(TaskEvents) private readonly events: TaskEvents,
    @Inject(TopicsService) private readonly topics: TopicsService,
  ) {}

  onModuleInit(): void {
    // Retention: terminal tasks (with results and idempotency keys) are deleted in batches;
    // live tasks are never purged (task-model §18 #4).
    this.retentionTimer = setInterval(() => void this.sweepRetention(), 5_000);
    this.retentionTimer.unref();
    // A topic's deadLetterTopicRef: a dead-lettered task is forwarded, once, as a new task of
    // that command in the same tenant (idempotency key `dlq:<task id>`).
    this.events.onFinished((task) => {
      if (task.location !== 'DLQ_SET') return;
      const ref = this.topics.policyFor(task.tenantId, task.commandKey)?.deadLetterTopicRef;
      if (!ref) return;
      const now = this.clock.now();
      const input: CreateTask = { command: ref, payload: task.payload, priority: task.priority, webhook: null, maxAttempts: 0, idempotencyKey: `dlq:${task.id}`, visibleAtMs: null, traceParent: task.traceParent ?? null, traceState: task.traceState ?? null };
      this.createParsed(task.tenantId, input, now).catch((e: unknown) => this.log.error({ taskId: task.id, err: (e as Error).message }, 'dead-letter forwarding failed'));
    });
  }

  onModuleDestroy(): void {
    if (this.retentionTimer) clearInterval(this.retentionTimer);
  }

  /**
   * Delete finished tasks past retention, in batches of 512, until none is left or 100 batches ran
   * (so a backlog drains at up to ~10k tasks/s without holding the event loop for long).
   */
  async sweepRetention(): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    try {
      return await this.sweepBatches();
    } finally {
      this.sweeping = false;
    }
  }

  private async sweepBatches(): Promise<number> {
    let total = 0;
    for (let i = 0; i < 100 && this.store.healthy(); i++) {
      let n = 0;
      try {
        n = await this.store.purgeTerminal(this.clock.now() - this.config.retentionSeconds * 1000, 512);
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'retention sweep failed');
        break;
      }
      total += n;
      if (n < 512) break;
    }
    if (total) {
      this.log.debug({ deleted: total }, 'retention sweep');
      await this.removeOrphanArtifacts();
    }
    return total;
  }

  private newTask(tenantId: string, input: CreateTask, now: number): TaskRecord {
    const policy = this.topics.policyFor(tenantId, commandKeyOf(input.command));
    const maxAttempts = input.maxAttempts > 0 ? input.maxAttempts : (policy?.maxAttempts ?? this.config.maxAttemptsDefault);
    const priority = policy ? tierPriority(policy, input.priority) : input.priority;
    return {
      id: newTaskId(),
      tenantId,
      command: input.command,
      commandKey: commandKeyOf(input.command),
      payload: input.payload,
      priority,
      webhook: input.webhook,
      status: 'PENDING',
      location: input.visibleAtMs !== null ? 'DELAYED_ZSET' : 'PENDING_LIST',
      workerId: null,
      leaseId: null,
      leaseUntilMs: null,
      attempts: 0,
      maxAttempts,
      error: null,
      resultKey: null,
      idempotencyKey: input.idempotencyKey,
      visibleAtMs: input.visibleAtMs,
      seq: 0,
      createdAtMs: now,
      updatedAtMs: now,
      terminalAtMs: null,
      lastError: null,
      cancelRequested: false,
      traceParent: input.traceParent ?? null,
      traceState: input.traceState ?? null,
    };
  }

  /** Create one task (idempotent per tenant and key) from a validated command (HTTP or stream). */
  create(tenantId: string, cmd: CreateTask): Promise<TaskRecord> {
    return this.createParsed(tenantId, cmd, this.clock.now());
  }

  private async createParsed(tenantId: string, input: CreateTask, now: number): Promise<TaskRecord> {
    const rec = this.newTask(tenantId, input, now);
    const sw = stopwatch();
    let out: Awaited<ReturnType<TaskStore['create']>>;
    try {
      out = await this.store.create(rec);
    } catch (e) {
      recordTaskSpan('create', rec, sw, elapsedMs(sw), {}, e);
      throw e;
    }
    // The span hangs under the producer's submit span of this request (not of an idempotent replay's original).
    if (spansEnabled()) recordTaskSpan('create', { ...out.task, traceParent: rec.traceParent, traceState: rec.traceState }, sw, elapsedMs(sw), { 'codeq.created': out.created });
    if (out.created) {
      this.metrics.countCreated(input.command);
      this.events.emitCreated(out.task);
      if (out.task.location === 'PENDING_LIST') this.events.emitCreatedReady(out.task);
    }
    return out.task;
  }

  /**
   * Batch create: items are independent; each yields a task or an error (http-api §6.2). Items were
   * all validated before any is applied (issue 12 item 4): an item is created whole or reported.
   */
  async createBatch(tenantId: string, items: (CreateTask | { error: string })[]): Promise<BatchItemOutcome[]> {
    const now = this.clock.now();
    return Promise.all(
      items.map(async (input): Promise<BatchItemOutcome> => {
        if ('error' in input) return input;
        try {
          return { task: await this.createParsed(tenantId, input, now) };
        } catch (e) {
          return { error: (e as Error).message };
        }
      }),
    );
  }

  async get(tenantId: string, id: string): Promise<TaskRecord> {
    const t = await this.store.get(tenantId, id);
    if (!t) throw new CodeqError('NOT_FOUND', 'not found', { taskId: id });
    return t;
  }

  /** The task and its current delivery's progress (undefined when none was reported). */
  async getWithProgress(tenantId: string, id: string): Promise<{ task: TaskRecord; progress: unknown }> {
    // Both reads at once (one round trip on PostgreSQL); the progress only counts for this task's tenant.
    const [t, p] = await Promise.all([this.store.get(tenantId, id), this.store.progress(tenantId, id)]);
    if (!t) throw new CodeqError('NOT_FOUND', 'not found', { taskId: id });
    return { task: t, progress: currentProgress(p, t.attempts) };
  }

  /** Log lines of a task of this tenant (404 for unknown and foreign tasks). */
  async logs(tenantId: string, id: string, afterN: number, limit: number): Promise<LogLine[]> {
    const task = await this.store.get(tenantId, id);
    if (!task) throw new CodeqError('TASK_NOT_FOUND', 'task not found', { taskId: id });
    return this.store.logs(tenantId, id, afterN, limit);
  }

  /** Task and result, optionally waiting up to `waitSeconds` for the result. */
  async getResult(tenantId: string, id: string, waitSeconds: number, signal?: AbortSignal): Promise<{ task: TaskRecord; result: ResultRecord }> {
    const deadline = this.clock.now() + waitSeconds * 1000;
    for (;;) {
      const task = await this.store.get(tenantId, id);
      if (!task) throw new CodeqError('TASK_NOT_FOUND', 'task not found', { taskId: id });
      const result = await this.store.getResult(tenantId, id);
      if (result) return { task, result };
      if (this.clock.now() >= deadline || signal?.aborted) throw new CodeqError('RESULT_NOT_FOUND', 'result not found', { taskId: id });
      if (!this.store.healthy()) throw new CodeqError('UNAVAILABLE', 'server is shutting down', { taskId: id });
      await this.store.waitForResult(tenantId, id, deadline, signal);
    }
  }

  /** Submit a result (http-api §6.8), fenced by lease when `leaseId` is given. */
  async submitResult(tenantId: string, workerId: string, input: SubmitResult): Promise<ResultRecord> {
    const id = input.taskId;
    const actor: Actor = input.leaseId ? { workerId, leaseId: input.leaseId } : { workerId };
    let artifacts: ArtifactRef[] = input.artifacts.filter((a) => a.url).map((a) => ({ name: a.name, url: a.url! }));
    if (input.artifacts.some((a) => a.content)) {
      // Check the guards before writing files, then write, then apply (guards re-checked atomically).
      const current = await this.store.get(tenantId, id);
      // A resubmission for the same lease replays the stored result (no files written again).
      const stored = current && current.status !== 'IN_PROGRESS' ? await this.store.getResult(tenantId, id) : null;
      const { replay } = assertCanComplete(current, actor, () => stored);
      if (replay) return replay;
      // A cancel-requested task is refused below (409 CANCELLED): write no files for it.
      if (current?.cancelRequested) return this.finish(tenantId, id, actor, input, artifacts);
      const written = await this.writeArtifacts(id, input);
      artifacts = artifacts.concat(written.refs);
      let record: ResultRecord;
      try {
        record = await this.finish(tenantId, id, actor, input, artifacts);
      } catch (e) {
        await discard(written.files);
        throw e;
      }
      if (record.artifacts?.some((a) => written.refs.some((w) => w.url === a.url))) await publish(written.files);
      else await discard(written.files); // a replay of an earlier result: its own files stay
      return record;
    }
    return this.finish(tenantId, id, actor, input, artifacts);
  }

  /** Delete artifact directories of tasks that retention or cleanup removed. */
  async removeOrphanArtifacts(): Promise<number> {
    try {
      return await removeOrphanArtifacts(resolve(this.config.localArtifactsDir), this.store);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'artifact cleanup failed');
      return 0;
    }
  }

  private async finish(tenantId: string, id: string, actor: Actor, input: SubmitResult, artifacts: ArtifactRef[]): Promise<ResultRecord> {
    const now = this.clock.now();
    let finished: { task: TaskRecord; result: ResultRecord } | null = null;
    let cancelled: TaskRecord | null = null;
    const sw = stopwatch();
    const record = await this.store.transition(tenantId, id, (t, ctx) => {
      finished = null; // the engine may run this more than once (after a lost race)
      cancelled = null;
      // The holder of a cancel-requested task: the result is refused and the task ends CANCELLED.
      const c = t && t.status === 'IN_PROGRESS' ? cancelForHolder(t, actor, now) : null;
      if (c) {
        cancelled = c.next;
        return { next: c.next, result: c.result, value: c.result };
      }
      const { replay } = assertCanComplete(t, actor, () => ctx.result());
      if (replay) return { value: replay };
      const { next, result } = complete(t!, actor, { status: input.status, result: input.result, error: input.error, artifacts }, now);
      finished = { task: next, result };
      return { next, result, webhook: resultWebhook(next, result, now), value: result };
    });
    const commitMs = elapsedMs(sw);
    if (cancelled) {
      const t = cancelled as TaskRecord;
      recordTaskSpan('result', t, sw, commitMs, { 'codeq.result.status': 'CANCELLED' });
      this.metrics.cancelled.inc({ command: t.command });
      throw new CodeqError('CANCELLED', 'cancelled', { taskId: t.id });
    }
    if (finished) {
      const f = finished as { task: TaskRecord; result: ResultRecord };
      recordTaskSpan('result', f.task, sw, commitMs, { 'codeq.result.status': f.result.status, 'codeq.task.location': f.task.location });
      this.metrics.observeCompletion(f.task.command, f.result.status, f.task.createdAtMs, now);
      this.events.emitFinished(f.task, f.result);
    }
    return record;
  }

  /** Write uploaded artifacts under temporary names; publish() renames them after the commit. */
  private async writeArtifacts(taskId: string, input: SubmitResult): Promise<{ refs: ArtifactRef[]; files: { tmp: string; final: string }[] }> {
    const root = resolve(this.config.localArtifactsDir);
    const dir = join(root, 'results', taskId);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const refs: ArtifactRef[] = [];
    const files: { tmp: string; final: string }[] = [];
    for (const a of input.artifacts) {
      if (!a.content) continue;
      const file = resolve(dir, a.name);
      if (!file.startsWith(dir + sep)) throw bad(`artifact ${a.name} upload: path escapes the artifacts directory`);
      const tmp = pendingName(file);
      try {
        await writeFile(tmp, a.content, { mode: 0o600 });
      } catch (e) {
        await discard(files);
        throw bad(`artifact ${a.name} upload: ${(e as Error).message}`);
      }
      files.push({ tmp, final: file });
      // Served back to the task's tenant by GET /v1/codeq/tasks/:id/artifacts/:name.
      refs.push({ name: a.name, url: `/v1/codeq/tasks/${taskId}/artifacts/${encodeURIComponent(a.name)}` });
    }
    return { refs, files };
  }

  /** An uploaded artifact of a task of this tenant (path confined to the artifacts directory). */
  async artifact(tenantId: string, id: string, name: string): Promise<{ file: string }> {
    const task = await this.store.get(tenantId, id);
    if (!task) throw new CodeqError('TASK_NOT_FOUND', 'task not found', { taskId: id });
    const dir = join(resolve(this.config.localArtifactsDir), 'results', id);
    const file = resolve(dir, name);
    if (!file.startsWith(dir + sep) || name.includes('/') || name.includes('\\')) throw new CodeqError('NOT_FOUND', 'artifact not found');
    return { file };
  }

  /** Batch results: each item validated (before any is applied) and applied on its own (http-api §6.9). */
  async submitResults(tenantId: string, workerId: string, items: (SubmitResult | { taskId: string; rejected: string })[]): Promise<({ taskId: string; result: ResultRecord } | { taskId: string; error: string })[]> {
    return Promise.all(
      items.map(async (p) => {
        const { taskId } = p;
        if ('rejected' in p) return { taskId, error: p.rejected };
        try {
          const actor: Actor = p.leaseId ? { workerId, leaseId: p.leaseId } : { workerId };
          return { taskId, result: await this.finish(tenantId, taskId, actor, p, []) };
        } catch (e) {
          if (CodeqError.is(e)) return { taskId, error: e.message };
          throw e;
        }
      }),
    );
  }

  async stats(tenantId: string, command: string): Promise<{ command: string; ready: number; delayed: number; inProgress: number; dlq: number }> {
    const c: QueueCounts = await this.store.counts(tenantId, commandKeyOf(command));
    return { command, ready: c.readyByPriority.reduce((a, b) => a + b, 0), delayed: c.delayed, inProgress: c.inProgress, dlq: c.dlq };
  }

  /**
   * Index counts in upstream's label format (http-api §6.14), restricted to the caller's tenant
   * (upstream shows all tenants; architecture §2).
   */
  async queueBuckets(tenantId: string): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const d of await this.store.depths()) {
      if (d.tenantId !== tenantId) continue;
      const prefix = `codeq:q:${d.commandKey}:${d.tenantId}`;
      d.readyByPriority.forEach((n, p) => {
        if (n > 0) out[`${prefix}:pending:${p}`] = n;
      });
      if (d.inProgress > 0) out[`${prefix}:inprog`] = d.inProgress;
      if (d.delayed > 0) out[`${prefix}:delayed`] = d.delayed;
      if (d.dlq > 0) out[`${prefix}:dlq`] = d.dlq;
    }
    return out;
  }

  /**
   * Admin cleanup: delete the tenant's terminal tasks whose retention ended by `before`
   * (never live ones; upstream purges every tenant, architecture §2).
   */
  async cleanup(tenantId: string, beforeMs: number, limit: number): Promise<number> {
    const n = await this.store.purgeTerminal(beforeMs - this.config.retentionSeconds * 1000, limit, tenantId);
    if (n) await this.removeOrphanArtifacts();
    return n;
  }
}
