/**
 * Result callbacks (http-api §7.1, task-model §13.1) through a durable outbox (issue 12 item 9,
 * ADR 0012). The transition that finishes a task with a webhook writes its delivery row in the same
 * commit (see domain/webhook-outbox.ts); this dispatcher delivers the rows:
 *  - it claims due rows in pages (never more than free request slots, at most MAX_WEBHOOKS_IN_FLIGHT
 *    requests open at once), each claim hiding the row for a lease (a visibility timeout), so on
 *    PostgreSQL any replica delivers and a row is with one replica at a time;
 *  - each attempt is signed as before (HMAC over `<timestamp>.<body>`) and carries
 *    `X-Codeq-Delivery` (the row id, the same on every attempt) for receivers to dedupe: delivery is
 *    at least once (a replica dying between the receiver's 2xx and the delete sends it again);
 *  - a 2xx deletes the row; a failure makes it due again after the backoff; the row is deleted and
 *    counted (`codeq_webhook_deliveries_dropped_total{reason}`) when its attempts are used up, when
 *    it is older than the maximum age, when the target is a refused address, or when the outbox
 *    holds more than the configured maximum (the oldest beyond the cap);
 *  - it looks for due rows when a task finishes on this replica, when a retry falls due, and every
 *    `webhookOutboxPollMs` (retries and rows written by other replicas, rows left by a restart).
 */
import { createHmac } from 'node:crypto';
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { CodeqError } from '@codeq/proto/errors';
import type { Config } from '../../config/config.js';
import { CONFIG, LOGGER, TASK_STORE } from '../../common/tokens.js';
import type { Logger } from '../../common/logger.js';
import type { TaskStore } from '../../domain/task-store.js';
import { hasWebhookOutbox, type WebhookDropReason, type WebhookOutbox, type WebhookOutboxRow } from '../../domain/webhook-outbox.js';
import { RateLimiter } from '../auth/rate-limiter.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { TaskEvents } from '../tasks/task-events.js';
import { isBlocked, webhookFetch } from './address-guard.js';

export { resultCallbackBody } from '../../domain/webhook-outbox.js';

/** Result webhook requests open at once per replica (issue 12 item 9). */
export const MAX_WEBHOOKS_IN_FLIGHT = 64;
/** Rows claimed by one statement at most. */
const PAGE = 64;
/** A claim hides its rows for the attempt timeout plus this much (rate-limit waits, slow deletes). */
const LEASE_MARGIN_MS = 30_000;
/** How often the row count is refreshed (and the outbox trimmed to its cap). */
const COUNT_INTERVAL_MS = 5000;

@Injectable()
export class WebhooksService implements OnModuleInit, OnApplicationShutdown {
  /** Cap on open requests; a field so tests can lower it. */
  maxInFlight = MAX_WEBHOOKS_IN_FLIGHT;
  /** Outgoing fetch: public addresses only unless CODEQ_WEBHOOK_ALLOW_PRIVATE (issue 12 item 12). */
  readonly fetch: (url: string, init: RequestInit) => Promise<Response>;
  private outbox: WebhookOutbox | null = null;
  private stopped = false;
  /** Attempts running now (claimed rows), by delivery id. */
  private readonly attempts = new Map<string, { ac: AbortController; done: Promise<void> }>();
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private ticking = false;
  private again = false;
  /** The last claim filled its page: more rows may be due as soon as a slot frees. */
  private backlog = false;
  private countedAt = 0;
  /** Rows in the outbox at the last count (gauge `codeq_webhook_outbox_rows`). */
  private rows = 0;
  /** Delivered rows waiting for their (batched) delete. */
  private delivered: string[] = [];
  private deleting: Promise<void> | null = null;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(MetricsService) private readonly metrics: MetricsService,
    @Inject(TaskEvents) private readonly events: TaskEvents,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
    @Inject(TASK_STORE) private readonly store: TaskStore,
  ) {
    this.fetch = webhookFetch(config.webhookAllowPrivate);
  }

  onModuleInit(): void {
    if (!hasWebhookOutbox(this.store)) return;
    this.outbox = this.store.webhookOutbox();
    this.metrics.webhookOutboxRows.setSource(() => this.rows);
    // A delivery was just committed on this replica: look for it soon (a few finishes share a claim).
    this.events.onFinished((task) => {
      if (task.webhook) this.wake(5);
    });
    // Rows left by an earlier run (restart, crash) or written by other replicas.
    this.wake(0);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    // Attempts still running are aborted and their rows given back (due now, attempt not counted):
    // they are delivered after the restart, or by another replica. Nothing is lost.
    for (const a of this.attempts.values()) a.ac.abort();
    await Promise.race([Promise.allSettled([...this.attempts.values()].map((a) => a.done)), sleep(5000)]);
    // Delivered rows not deleted yet: a failure here only means a duplicate after the restart.
    await this.flushDeletes().catch((e: Error) => this.log.warn({ err: e.message }, 'result webhook outbox: delete at shutdown failed'));
  }

  /** Headers for one attempt: JSON, the delivery id, plus timestamp and HMAC-SHA256 signature when configured. */
  headers(body: string, nowSeconds = Math.floor(Date.now() / 1000), deliveryId?: string): Record<string, string> {
    const h: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'codeq-ts-webhook/1' };
    if (deliveryId) h['x-codeq-delivery'] = deliveryId;
    if (this.config.webhookHmacSecret) {
      const ts = String(nowSeconds);
      h['x-codeq-timestamp'] = ts;
      h['x-codeq-signature'] = createHmac('sha256', this.config.webhookHmacSecret).update(`${ts}.${body}`).digest('hex');
    }
    return h;
  }

  /** Requests open now and the outbox rows at the last count (tests, diagnostics). */
  get load(): { active: number; rows: number } {
    return { active: this.attempts.size, rows: this.rows };
  }

  /** Count the rows now (and trim to the cap); resolves with the count. */
  async refreshCount(): Promise<number> {
    if (!this.outbox) return 0;
    await this.trim();
    this.rows = await this.outbox.count();
    this.countedAt = Date.now();
    return this.rows;
  }

  /** Look for due rows in `ms` (or sooner if already planned). */
  private wake(ms: number): void {
    if (this.stopped || !this.outbox) return;
    const at = Date.now() + ms;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      void this.tick();
    }, ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const outbox = this.outbox;
    if (this.stopped || !outbox) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = true;
    try {
      do {
        this.again = false;
        if (Date.now() - this.countedAt >= COUNT_INTERVAL_MS) await this.refreshCount();
        const free = Math.min(PAGE, this.maxInFlight - this.attempts.size);
        if (free <= 0 || this.stopped) break; // a finishing attempt wakes the dispatcher
        const now = Date.now();
        const leaseUntil = now + this.config.webhookTimeoutMs + LEASE_MARGIN_MS;
        const rows = await outbox.claim(now, leaseUntil, free);
        this.backlog = rows.length === free;
        for (const r of rows) this.start(r, leaseUntil);
        if (this.backlog) this.again = true;
      } while (this.again && !this.stopped);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'result webhook outbox unavailable; retrying');
    } finally {
      this.ticking = false;
    }
    this.wake(this.config.webhookOutboxPollMs);
  }

  private start(row: WebhookOutboxRow, leaseUntil: number): void {
    const ac = new AbortController();
    const done = this.attempt(row, ac, leaseUntil)
      .catch((e: unknown) => this.log.warn({ err: (e as Error).message, host: safeHost(row.url) }, 'result webhook bookkeeping failed; the row is retried after its lease'))
      .finally(() => {
        this.attempts.delete(row.id);
        if (this.backlog) this.wake(0);
      });
    this.attempts.set(row.id, { ac, done });
  }

  /** One attempt of a claimed row (its `attempts` already counts this one). */
  private async attempt(row: WebhookOutboxRow, ac: AbortController, leaseUntil: number): Promise<void> {
    const outbox = this.outbox!;
    const max = Math.max(1, this.config.resultWebhookMaxAttempts);
    if (Date.now() - row.createdAtMs >= this.config.webhookMaxAgeSeconds * 1000) return this.giveUp(row, 'max_age');
    // Attempts counted by claims whose replica died mid-attempt may have used the budget up.
    if (row.attempts > max) return this.giveUp(row, 'max_attempts');
    await this.waitForToken(row.url, ac.signal);
    // Stopping, or a rate-limit wait ate the lease (the attempt could outlive it): give the row back.
    if (this.stopped || Date.now() + this.config.webhookTimeoutMs > leaseUntil) return outbox.release([row.id], Date.now());
    const timer = setTimeout(() => ac.abort(), this.config.webhookTimeoutMs);
    let ok = false;
    let why = '';
    try {
      const res = await this.fetch(row.url, { method: 'POST', headers: this.headers(row.body, undefined, row.id), body: row.body, signal: ac.signal, redirect: 'manual' });
      ok = res.status >= 200 && res.status < 300;
      why = `HTTP ${res.status}`;
      await res.body?.cancel().catch(() => undefined);
    } catch (e) {
      // Refused before any connection: no retry, and the same outcome whatever the target.
      if (isBlocked(e)) {
        this.log.warn({ host: safeHost(row.url) }, 'result webhook refused: non-public address');
        return this.giveUp(row, 'refused');
      }
      why = ac.signal.aborted ? 'timeout' : (e as Error).message;
    } finally {
      clearTimeout(timer);
    }
    if (ok) {
      this.metrics.webhookDeliveries.inc({ kind: 'task_result', command: row.command, outcome: 'success' });
      return this.deleteSoon(row.id);
    }
    // Aborted by shutdown: give the row back, the attempt does not count.
    if (this.stopped) return outbox.release([row.id], Date.now());
    this.log.warn({ attempt: row.attempts, max, reason: why, host: safeHost(row.url) }, 'result webhook attempt failed');
    if (row.attempts >= max) return this.giveUp(row, 'max_attempts');
    const wait = this.backoffMs(row.attempts);
    await outbox.retryAt(row.id, Date.now() + wait);
    this.wake(wait);
  }

  /** Final failure: the row is deleted and counted. */
  private async giveUp(row: WebhookOutboxRow, reason: WebhookDropReason): Promise<void> {
    await this.outbox!.remove([row.id]);
    this.metrics.webhookDeliveries.inc({ kind: 'task_result', command: row.command, outcome: 'failure' });
    this.metrics.webhookDropped.inc({ reason });
    this.log.warn({ host: safeHost(row.url), taskId: row.taskId, attempts: row.attempts, reason }, 'result webhook given up');
  }

  /** Delivered rows are deleted in batches (one statement for the rows of a turn). */
  private deleteSoon(id: string): Promise<void> {
    this.delivered.push(id);
    return (this.deleting ??= new Promise<void>((r) => setImmediate(r)).then(() => this.flushDeletes()));
  }

  private async flushDeletes(): Promise<void> {
    this.deleting = null;
    const ids = this.delivered.splice(0);
    if (ids.length && this.outbox) await this.outbox.remove(ids);
  }

  /** The oldest rows beyond the cap are deleted and counted (issue 12 item 9: bounded outbox). */
  private async trim(): Promise<void> {
    const dropped = await this.outbox!.trim(this.config.webhookOutboxMaxRows, Date.now());
    if (!dropped.length) return;
    for (const d of dropped) {
      this.metrics.webhookDeliveries.inc({ kind: 'task_result', command: d.command, outcome: 'dropped' });
      this.metrics.webhookDropped.inc({ reason: 'outbox_full' });
    }
    this.log.warn({ dropped: dropped.length, max: this.config.webhookOutboxMaxRows }, 'result webhook outbox over its cap: oldest deliveries dropped');
  }

  /** Wait after failed attempt k: min(base × 2^(k−1), max) seconds. */
  backoffMs(attempt: number): number {
    const base = Math.max(0, this.config.resultWebhookBaseBackoffSeconds);
    const max = Math.max(base, this.config.resultWebhookMaxBackoffSeconds);
    return Math.min(base * 2 ** (attempt - 1), max) * 1000;
  }

  private async waitForToken(url: string, signal: AbortSignal): Promise<void> {
    for (let i = 0; i < 1000 && !this.stopped && !signal.aborted; i++) {
      try {
        this.limiter.take('webhook', 'task_result', url);
        return;
      } catch (e) {
        if (!CodeqError.is(e)) return; // fail open
        this.metrics.rateLimitHits.inc({ scope: 'webhook', operation: 'task_result' });
        await sleep(Number(e.details['retryAfterSeconds'] ?? 1) * 1000);
      }
    }
  }
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '?';
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
