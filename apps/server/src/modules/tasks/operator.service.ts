/** Operator use cases (issue 14): list and search, cancel, pause/resume, dead letters. */
import { Inject, Injectable } from '@nestjs/common';
import { CodeqError } from '@codeq/proto/errors';
import { CLOCK, LOGGER, TASK_STORE, type Clock } from '../../common/tokens.js';
import type { Logger } from '../../common/logger.js';
import type { TaskStore } from '../../domain/task-store.js';
import { commandKeyOf, type TaskRecord } from '../../domain/task.js';
import { cancelTask } from '../../domain/rules.js';
import { encodeCursor, type ListInput, type RedriveInput } from '../../domain/operator.js';
import { MetricsService } from '../metrics/metrics.service.js';

export interface CommandRow {
  command: string;
  ready: number;
  delayed: number;
  inProgress: number;
  dlq: number;
  paused: boolean;
}

@Injectable()
export class OperatorService {
  constructor(
    @Inject(TASK_STORE) private readonly store: TaskStore,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(MetricsService) private readonly metrics: MetricsService,
  ) {}

  /** One page, newest first; `nextCursor` is null on the last page. */
  async list(tenantId: string, input: ListInput): Promise<{ tasks: TaskRecord[]; nextCursor: string | null }> {
    const rows = await this.store.list({ tenantId, ...input, limit: input.limit + 1 });
    const tasks = rows.slice(0, input.limit);
    const last = tasks[tasks.length - 1];
    return { tasks, nextCursor: rows.length > input.limit && last ? encodeCursor({ createdAtMs: last.createdAtMs, id: last.id }) : null };
  }

  /** Cancel (idempotent). PENDING/DELAYED → CANCELLED now; IN_PROGRESS → cancel requested. */
  async cancel(tenantId: string, id: string): Promise<TaskRecord> {
    const now = this.clock.now();
    let cancelled: TaskRecord | null = null;
    const task = await this.store.transition<TaskRecord>(tenantId, id, (t) => {
      cancelled = null; // the engine may run this more than once (after a lost race)
      const out = cancelTask(t, now);
      if (out.kind === 'unchanged') return { value: out.task };
      if (out.kind === 'requested') return { next: out.next, value: out.next };
      cancelled = out.next;
      return { next: out.next, result: out.result, value: out.next };
    });
    if (cancelled) this.countCancelled(cancelled);
    else if (task.cancelRequested && task.status === 'IN_PROGRESS') this.log.info({ taskId: id, tenantId }, 'cancel requested');
    return task;
  }

  /** A task ended CANCELLED (here or in the lease service). */
  countCancelled(t: TaskRecord): void {
    this.metrics.cancelled.inc({ command: t.command });
    this.log.info({ taskId: t.id, tenantId: t.tenantId }, 'task cancelled');
  }

  async setPaused(tenantId: string, command: string, paused: boolean): Promise<{ command: string; paused: boolean }> {
    const c = command.trim();
    if (!c) throw new CodeqError('VALIDATION_FAILED', 'command is required');
    await this.store.setPaused(tenantId, commandKeyOf(c), c, paused);
    this.log.info({ tenantId, command: c, paused }, paused ? 'command paused' : 'command resumed');
    return { command: c, paused };
  }

  async isPaused(tenantId: string, command: string): Promise<boolean> {
    const key = commandKeyOf(command);
    return (await this.store.pausedCommands(tenantId)).some((p) => p.commandKey === key);
  }

  /** One row per command of the tenant (with tasks now or seen before, or paused). */
  async commands(tenantId: string): Promise<CommandRow[]> {
    const [depths, paused] = await Promise.all([this.store.depths(), this.store.pausedCommands(tenantId)]);
    const rows = new Map<string, CommandRow>();
    for (const d of depths) {
      if (d.tenantId !== tenantId) continue;
      const ready = d.readyByPriority.reduce((a, b) => a + b, 0);
      rows.set(d.commandKey, { command: d.command, ready, delayed: d.delayed, inProgress: d.inProgress, dlq: d.dlq, paused: false });
    }
    for (const p of paused) {
      const r = rows.get(p.commandKey);
      if (r) r.paused = true;
      else rows.set(p.commandKey, { command: p.command, ready: 0, delayed: 0, inProgress: 0, dlq: 0, paused: true });
    }
    return [...rows.values()].sort((a, b) => (a.command < b.command ? -1 : a.command > b.command ? 1 : 0));
  }

  async redrive(tenantId: string, input: RedriveInput): Promise<{ redriven: number; ids: string[] }> {
    const moved = await this.store.redrive(tenantId, 'ids' in input ? { ids: input.ids } : { commandKey: commandKeyOf(input.command), limit: input.limit }, this.clock.now());
    for (const t of moved) this.metrics.redriven.inc({ command: t.command });
    if (moved.length) this.log.info({ tenantId, redriven: moved.length }, 'dead letters redriven');
    return { redriven: moved.length, ids: moved.map((t) => t.id) };
  }
}
