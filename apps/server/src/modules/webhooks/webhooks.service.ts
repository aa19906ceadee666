/**
 * Result callbacks (http-api §7.1, task-model §13.1): when a task finishes, its `webhook` URL
 * receives the result, off the request path, HMAC-signed when a secret is configured, retried with
 * exponential backoff and a per-attempt timeout. At most MAX_WEBHOOKS_IN_FLIGHT requests are open
 * at once (the others wait their turn) and at most MAX_PENDING_WEBHOOKS deliveries are held.
 * Delivery is best effort and not persisted: a delivery refused because too many are pending, or
 * still pending when the server stops, is lost and counted in
 * `codeq_webhook_deliveries_dropped_total{reason="queue_full"|"shutdown"}`; one pending when the
 * process is killed is lost uncounted (README, Webhooks).
 */
import { createHmac } from 'node:crypto';
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { CodeqError } from '@codeq/proto/errors';
import type { Config } from '../../config/config.js';
import { CONFIG, LOGGER } from '../../common/tokens.js';
import type { Logger } from '../../common/logger.js';
import { resultToJson, type ResultRecord, type TaskRecord } from '../../domain/task.js';
import { formatTime } from '../../domain/time.js';
import { RateLimiter } from '../auth/rate-limiter.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { TaskEvents } from '../tasks/task-events.js';
import { isBlocked, webhookFetch } from './address-guard.js';

/** Result webhooks being delivered or waiting to retry; more are dropped (issue 12 item 9). */
export const MAX_PENDING_WEBHOOKS = 10_000;
/** Result webhook requests open at once; further attempts wait for a free slot (issue 12 item 9). */
export const MAX_WEBHOOKS_IN_FLIGHT = 64;
/** A delivery stops retrying this long after its first attempt. */
export const MAX_WEBHOOK_AGE_MS = 3600_000;

export interface WebhookDelivery {
  url: string;
  body: string;
  command: string;
}

@Injectable()
export class WebhooksService implements OnModuleInit, OnApplicationShutdown {
  private readonly inflight = new Set<AbortController>();
  private stopped = false;
  private pending = 0;
  /** Caps; fields so tests can lower them. */
  maxPending = MAX_PENDING_WEBHOOKS;
  maxInFlight = MAX_WEBHOOKS_IN_FLIGHT;
  /** Attempts holding a request slot, and the attempts waiting for one (oldest first). */
  private active = 0;
  private readonly slotWaiters: (() => void)[] = [];
  /** Outgoing fetch: public addresses only unless CODEQ_WEBHOOK_ALLOW_PRIVATE (issue 12 item 12). */
  readonly fetch: (url: string, init: RequestInit) => Promise<Response>;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(MetricsService) private readonly metrics: MetricsService,
    @Inject(TaskEvents) private readonly events: TaskEvents,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
  ) {
    this.fetch = webhookFetch(config.webhookAllowPrivate);
  }

  onModuleInit(): void {
    this.events.onFinished((task, result) => {
      if (!task.webhook) return;
      void this.deliver({ url: task.webhook, body: resultCallbackBody(task, result), command: task.command });
    });
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    for (const ac of this.inflight) ac.abort();
    // Waiting attempts get a slot, see `stopped` and give up.
    const waiting = this.slotWaiters.splice(0);
    this.active += waiting.length;
    for (const w of waiting) w();
    // Deliveries live in memory: those not done yet are lost with the process (documented, counted).
    if (this.pending) {
      this.metrics.webhookDropped.inc({ reason: 'shutdown' }, this.pending);
      this.log.warn({ lost: this.pending }, 'result webhooks not delivered before shutdown are dropped');
    }
  }

  /** Headers for one attempt: JSON, plus timestamp and HMAC-SHA256 signature when configured. */
  headers(body: string, nowSeconds = Math.floor(Date.now() / 1000)): Record<string, string> {
    const h: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'codeq-ts-webhook/1' };
    if (this.config.webhookHmacSecret) {
      const ts = String(nowSeconds);
      h['x-codeq-timestamp'] = ts;
      h['x-codeq-signature'] = createHmac('sha256', this.config.webhookHmacSecret).update(`${ts}.${body}`).digest('hex');
    }
    return h;
  }

  /** Deliver with retries; resolves with the final outcome. Never throws. */
  async deliver(d: WebhookDelivery): Promise<'success' | 'failure' | 'dropped'> {
    if (this.pending >= this.maxPending) {
      this.metrics.webhookDeliveries.inc({ kind: 'task_result', command: d.command, outcome: 'dropped' });
      this.metrics.webhookDropped.inc({ reason: 'queue_full' });
      this.log.warn({ host: safeHost(d.url), pending: this.pending }, 'result webhook dropped: too many pending deliveries');
      return 'dropped';
    }
    this.pending++;
    try {
      return await this.attempts(d);
    } finally {
      this.pending--;
    }
  }

  private async attempts(d: WebhookDelivery): Promise<'success' | 'failure'> {
    const max = Math.max(1, this.config.resultWebhookMaxAttempts);
    const giveUpAt = Date.now() + MAX_WEBHOOK_AGE_MS;
    for (let attempt = 1; attempt <= max && !this.stopped && Date.now() < giveUpAt; attempt++) {
      await this.waitForToken(d.url);
      await this.takeSlot();
      if (this.stopped) {
        this.releaseSlot();
        break;
      }
      const ac = new AbortController();
      this.inflight.add(ac);
      const timer = setTimeout(() => ac.abort(), this.config.webhookTimeoutMs);
      let ok = false;
      let why = '';
      try {
        const res = await this.fetch(d.url, { method: 'POST', headers: this.headers(d.body), body: d.body, signal: ac.signal, redirect: 'manual' });
        ok = res.status >= 200 && res.status < 300;
        why = `HTTP ${res.status}`;
        await res.body?.cancel().catch(() => undefined);
      } catch (e) {
        if (isBlocked(e)) {
          // Refused before any connection: no retry, and the same outcome whatever the target.
          clearTimeout(timer);
          this.inflight.delete(ac);
          this.log.warn({ host: safeHost(d.url) }, 'result webhook refused: non-public address');
          this.metrics.webhookDeliveries.inc({ kind: 'task_result', command: d.command, outcome: 'failure' });
          return 'failure';
        }
        why = ac.signal.aborted ? 'timeout' : (e as Error).message;
      } finally {
        clearTimeout(timer);
        this.inflight.delete(ac);
        this.releaseSlot();
      }
      if (ok) {
        this.metrics.webhookDeliveries.inc({ kind: 'task_result', command: d.command, outcome: 'success' });
        return 'success';
      }
      this.log.warn({ attempt, max, reason: why, host: safeHost(d.url) }, 'result webhook attempt failed');
      if (attempt < max) await sleep(this.backoffMs(attempt));
    }
    this.metrics.webhookDeliveries.inc({ kind: 'task_result', command: d.command, outcome: 'failure' });
    return 'failure';
  }

  /** Requests open now and attempts waiting for a slot (tests). */
  get load(): { active: number; waiting: number; pending: number } {
    return { active: this.active, waiting: this.slotWaiters.length, pending: this.pending };
  }

  private takeSlot(): Promise<void> {
    if (this.active < this.maxInFlight) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.slotWaiters.push(resolve));
  }

  /** Hand the slot to the oldest waiting attempt, or free it. */
  private releaseSlot(): void {
    const next = this.slotWaiters.shift();
    if (next) next();
    else this.active--;
  }

  /** Wait after failed attempt k: min(base × 2^(k−1), max) seconds. */
  backoffMs(attempt: number): number {
    const base = Math.max(0, this.config.resultWebhookBaseBackoffSeconds);
    const max = Math.max(base, this.config.resultWebhookMaxBackoffSeconds);
    return Math.min(base * 2 ** (attempt - 1), max) * 1000;
  }

  private async waitForToken(url: string): Promise<void> {
    for (let i = 0; i < 1000 && !this.stopped; i++) {
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

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '?';
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
