/** Prometheus metrics with upstream's names, types, labels and buckets (config-and-ops §6). */
import { Inject, Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { TaskStore } from '../../domain/task-store.js';
import { WEBHOOK_DROP_REASONS } from '../../domain/webhook-outbox.js';
import { CONFIG, TASK_STORE } from '../../common/tokens.js';
import type { Config } from '../../config/config.js';

/** Label value of commands beyond the configured number of distinct ones (issue 12 item 10). */
export const OTHER_COMMAND = 'other';

@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  readonly created: Counter<'command'>;
  readonly claimed: Counter<'command'>;
  readonly completed: Counter<'command' | 'status'>;
  readonly latency: Histogram<'command' | 'status'>;
  readonly leaseExpired: Counter<'command'>;
  readonly webhookDeliveries: Counter<'kind' | 'command' | 'outcome'>;
  /** Result webhook deliveries removed from the outbox without a 2xx, by reason (issue 12 item 9, ADR 0012). */
  readonly webhookDropped: Counter<'reason'>;
  /** Rows of the result-webhook outbox at the dispatcher's last count (set by WebhooksService). */
  readonly webhookOutboxRows: { setSource(f: () => number): void };
  /** Live (unexpired) worker subscriptions per event type, all tenants (set by SubscriptionsService). */
  readonly subscriptionsActive: { setSource(f: () => ReadonlyMap<string, number>): void };
  readonly rateLimitHits: Counter<'scope' | 'operation'>;
  readonly cancelled: Counter<'command'>;
  readonly redriven: Counter<'command'>;

  /**
   * Per-task counts not yet handed to prom-client, by folded command label (and status). They are
   * added on every read of the metrics (the counters' `collect`), so `/metrics` shows exactly the
   * same values; the hot paths pay a Map increment instead of prom-client's label validation and
   * hashing per task (issue 13). Bounded by the label cap.
   */
  private readonly pendingCreated = new Map<string, number>();
  private readonly pendingClaimed = new Map<string, number>();
  private readonly pendingCompleted = new Map<string, { command: string; status: string; n: number }>();

  /** A task was durably enqueued (`codeq_task_created_total`). */
  countCreated(command: string): void {
    const label = this.commandLabel(command);
    this.pendingCreated.set(label, (this.pendingCreated.get(label) ?? 0) + 1);
  }

  /** A task was handed out by a claim (`codeq_task_claimed_total`). */
  countClaimed(command: string): void {
    const label = this.commandLabel(command);
    this.pendingClaimed.set(label, (this.pendingClaimed.get(label) ?? 0) + 1);
  }

  private flushCounts(metric: Counter<'command'>, pending: Map<string, number>): void {
    for (const [command, n] of pending) metric.inc({ command }, n);
    pending.clear();
  }

  private flushCompleted(): void {
    for (const e of this.pendingCompleted.values()) this.completed.inc({ command: e.command, status: e.status }, e.n);
    this.pendingCompleted.clear();
  }

  /** Command label values in use (at most `metricsMaxCommands`). */
  private readonly commandLabels = new Set<string>();
  private readonly maxCommands: number;

  /** The label value for `command`: itself while fewer than the cap are known, else `other`. */
  commandLabel(command: string): string {
    if (this.commandLabels.has(command)) return command;
    if (this.commandLabels.size < this.maxCommands) {
      this.commandLabels.add(command);
      return command;
    }
    return OTHER_COMMAND;
  }

  constructor(@Inject(TASK_STORE) store: TaskStore, @Inject(CONFIG) config?: Config) {
    this.maxCommands = config?.metricsMaxCommands ?? 200;
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.created = new Counter({ name: 'codeq_task_created_total', help: 'Tasks durably enqueued (idempotent replays excluded).', labelNames: ['command'], registers, collect: () => this.flushCounts(this.created, this.pendingCreated) });
    this.claimed = new Counter({ name: 'codeq_task_claimed_total', help: 'Tasks handed out by claims.', labelNames: ['command'], registers, collect: () => this.flushCounts(this.claimed, this.pendingClaimed) });
    this.completed = new Counter({ name: 'codeq_task_completed_total', help: 'Results stored or tasks dead-lettered.', labelNames: ['command', 'status'], registers, collect: () => this.flushCompleted() });
    this.latency = new Histogram({
      name: 'codeq_task_processing_latency_seconds',
      help: 'Completion time minus creation time.',
      labelNames: ['command', 'status'],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    this.leaseExpired = new Counter({ name: 'codeq_lease_expired_total', help: 'Expired leases detected.', labelNames: ['command'], registers });
    this.webhookDeliveries = new Counter({ name: 'codeq_webhook_deliveries_total', help: 'Webhook delivery outcomes.', labelNames: ['kind', 'command', 'outcome'], registers });
    this.webhookDropped = new Counter({
      name: 'codeq_webhook_deliveries_dropped_total',
      help: 'Result webhook deliveries removed from the outbox without a 2xx: max_attempts, max_age, refused (non-public address) or outbox_full (oldest rows beyond CODEQ_WEBHOOK_OUTBOX_MAX_ROWS).',
      labelNames: ['reason'],
      registers,
    });
    for (const r of WEBHOOK_DROP_REASONS) this.webhookDropped.inc({ reason: r }, 0);
    let outboxRows: () => number = () => 0;
    this.webhookOutboxRows = { setSource: (f) => (outboxRows = f) };
    new Gauge({
      name: 'codeq_webhook_outbox_rows',
      help: 'Pending result webhook deliveries in the outbox (all replicas), as last counted by this replica (every 5 s).',
      registers,
      collect() {
        this.set(outboxRows());
      },
    });
    let subscriptions: () => ReadonlyMap<string, number> = () => new Map();
    this.subscriptionsActive = { setSource: (f) => (subscriptions = f) };
    // Like commandLabel, without registering the value (a subscription alone must not add rows to the depth gauges).
    const fold = (c: string): string => (this.commandLabels.has(c) || this.commandLabels.size < this.maxCommands ? c : OTHER_COMMAND);
    new Gauge({
      name: 'codeq_subscriptions_active',
      help: 'Worker subscriptions not yet expired, per subscribed event type ("*" = every command), all tenants.',
      labelNames: ['command'],
      registers,
      collect() {
        this.reset();
        const n = new Map<string, number>();
        for (const [command, v] of subscriptions()) {
          const label = command === '*' ? '*' : fold(command);
          n.set(label, (n.get(label) ?? 0) + v);
        }
        for (const [command, v] of n) this.set({ command }, v);
      },
    });
    for (const m of [this.created, this.claimed, this.completed, this.leaseExpired, this.webhookDeliveries]) foldCommandLabel(m, (c) => this.commandLabel(c));
    foldCommandLabel(this.latency, (c) => this.commandLabel(c));
    this.rateLimitHits = new Counter({ name: 'codeq_rate_limit_hits_total', help: 'Requests refused by a rate limit.', labelNames: ['scope', 'operation'], registers });
    this.cancelled = new Counter({ name: 'codeq_tasks_cancelled_total', help: 'Tasks that ended CANCELLED (operator cancel).', labelNames: ['command'], registers });
    this.redriven = new Counter({ name: 'codeq_tasks_redriven_total', help: 'Dead-lettered tasks moved back to the ready queue.', labelNames: ['command'], registers });
    for (const m of [this.cancelled, this.redriven]) foldCommandLabel(m, (c) => this.commandLabel(c));
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- collect() runs with `this` = the gauge
    const svc = this;
    new Gauge({
      name: 'codeq_queue_paused',
      help: 'Tenants in which the command is paused (0 = claims flow), computed at scrape time.',
      labelNames: ['command'],
      registers,
      async collect() {
        const [depths, paused] = await Promise.all([store.depths(), store.pausedCommands()]);
        this.reset();
        const n = new Map<string, number>();
        for (const d of depths) n.set(svc.commandLabel(d.command), 0);
        // Engines drop empty queues: commands seen before still report 0.
        for (const c of svc.commandLabels) if (!n.has(c)) n.set(c, 0);
        for (const p of paused) {
          const c = svc.commandLabel(p.command);
          n.set(c, (n.get(c) ?? 0) + 1);
        }
        for (const [command, v] of n) this.set({ command }, v);
      },
    });
    // Depth gauges are computed at scrape time from the engine's counters, summed over tenants
    // (tenant-free labels keep cardinality bounded).
    new Gauge({
      name: 'codeq_queue_depth',
      help: 'Tasks per command and queue (ready, delayed, in_progress, dlq), all tenants.',
      labelNames: ['command', 'queue'],
      registers,
      async collect() {
        const depths = await byCommand(store, (c) => svc.commandLabel(c));
        this.reset();
        // Engines drop empty queues: commands seen before still report 0.
        for (const command of svc.commandLabels) if (!depths.has(command)) depths.set(command, { ready: 0, delayed: 0, inProgress: 0, dlq: 0 });
        for (const [command, d] of depths) {
          this.set({ command, queue: 'ready' }, d.ready);
          this.set({ command, queue: 'delayed' }, d.delayed);
          this.set({ command, queue: 'in_progress' }, d.inProgress);
          this.set({ command, queue: 'dlq' }, d.dlq);
        }
      },
    });
    new Gauge({
      name: 'codeq_dlq_depth',
      help: 'Dead-lettered tasks per command, all tenants.',
      labelNames: ['command'],
      registers,
      async collect() {
        const depths = await byCommand(store, (c) => svc.commandLabel(c));
        this.reset();
        for (const command of svc.commandLabels) if (!depths.has(command)) depths.set(command, { ready: 0, delayed: 0, inProgress: 0, dlq: 0 });
        for (const [command, d] of depths) this.set({ command }, d.dlq);
      },
    });
  }

  /** A result was stored or a task dead-lettered. */
  observeCompletion(command: string, status: string, createdAtMs: number, now: number): void {
    const label = this.commandLabel(command);
    const key = `${label}\u0000${status}`;
    const e = this.pendingCompleted.get(key);
    if (e) e.n++;
    else this.pendingCompleted.set(key, { command: label, status, n: 1 });
    this.latency.observe({ command: label, status }, Math.max(0, (now - createdAtMs) / 1000));
  }
}

/** Map the `command` label of every inc/observe through `fold` (bounded label cardinality). */
function foldCommandLabel(metric: Counter<string> | Histogram<string>, fold: (c: string) => string): void {
  const m = metric as unknown as Record<'inc' | 'observe', ((...args: unknown[]) => void) | undefined>;
  for (const method of ['inc', 'observe'] as const) {
    const orig = m[method];
    if (!orig) continue;
    m[method] = (...args: unknown[]) => {
      const labels = args[0];
      if (labels && typeof labels === 'object' && typeof (labels as Record<string, unknown>)['command'] === 'string') {
        const command = (labels as Record<string, string>)['command']!;
        const folded = fold(command);
        // Per task on the hot paths: copy the labels only when the command is folded to `other`.
        if (folded !== command) args[0] = { ...labels, command: folded };
      }
      orig.apply(metric, args);
    };
  }
}

async function byCommand(store: TaskStore, fold: (c: string) => string): Promise<Map<string, { ready: number; delayed: number; inProgress: number; dlq: number }>> {
  const out = new Map<string, { ready: number; delayed: number; inProgress: number; dlq: number }>();
  for (const dep of await store.depths()) {
    const d = { ...dep, command: fold(dep.command) };
    const cur = out.get(d.command) ?? { ready: 0, delayed: 0, inProgress: 0, dlq: 0 };
    cur.ready += d.readyByPriority.reduce((a, b) => a + b, 0);
    cur.delayed += d.delayed;
    cur.inProgress += d.inProgress;
    cur.dlq += d.dlq;
    out.set(d.command, cur);
  }
  return out;
}
