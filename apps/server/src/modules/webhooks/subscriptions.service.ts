/**
 * Worker subscriptions and queue-ready notifications (http-api §6.12, task-model §13.2): a worker
 * registers a callback URL for commands; when a create makes a task of one of them immediately
 * ready, matching subscriptions of the same tenant are notified (fanout, group round-robin, or
 * hash rotation), throttled per subscription, off the request path.
 *
 * Subscriptions live in memory: they are short leases (default 60 s) that workers renew, and a
 * worker whose renewal answers 404 after a restart simply subscribes again.
 */
import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { CodeqError } from '@codeq/proto/errors';
import type { Config } from '../../config/config.js';
import { CLOCK, CONFIG, LOGGER, type Clock } from '../../common/tokens.js';
import type { Logger } from '../../common/logger.js';
import type { TaskRecord } from '../../domain/task.js';
import { formatTime } from '../../domain/time.js';
import { authorisedCommands, LEGACY_DEFAULT_COMMANDS } from '../../domain/claims.js';
import { bad, validWebhook } from '../../domain/requests.js';
import { RateLimiter } from '../auth/rate-limiter.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { TaskEvents } from '../tasks/task-events.js';
import { WebhooksService } from './webhooks.service.js';

export type DeliveryMode = 'fanout' | 'group' | 'hash';

export interface Subscription {
  id: string;
  tenantId: string;
  callbackUrl: string;
  eventTypes: string[];
  deliveryMode: DeliveryMode;
  groupId: string | null;
  minIntervalSeconds: number;
  createdAtMs: number;
  expiresAtMs: number;
  lastNotifiedAtMs: number;
}

const DEFAULT_TTL_SECONDS = 60;

@Injectable()
export class SubscriptionsService implements OnModuleInit, OnApplicationShutdown {
  private readonly subs = new Map<string, Subscription>();
  private readonly groupCursor = new Map<string, number>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(MetricsService) private readonly metrics: MetricsService,
    @Inject(TaskEvents) private readonly events: TaskEvents,
    @Inject(WebhooksService) private readonly webhooks: WebhooksService,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
  ) {}

  onModuleInit(): void {
    this.events.onCreatedReady((t) => this.notify(t));
    this.sweeper = setInterval(() => this.sweep(), Math.max(1, this.config.subscriptionCleanupIntervalSeconds) * 1000);
    this.sweeper.unref();
  }

  onApplicationShutdown(): void {
    if (this.sweeper) clearInterval(this.sweeper);
  }

  create(tenantId: string, tokenEventTypes: readonly string[], body: unknown): Subscription {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('invalid body');
    const o = body as Record<string, unknown>;
    const str = (k: string) => {
      if (o[k] === undefined || o[k] === null) return undefined;
      if (typeof o[k] !== 'string') throw bad('invalid body', { field: k });
      return o[k];
    };
    const int = (k: string) => {
      if (o[k] === undefined || o[k] === null) return undefined;
      if (typeof o[k] !== 'number' || !Number.isInteger(o[k])) throw bad('invalid body', { field: k });
      return o[k];
    };
    const callbackUrl = str('callbackUrl');
    if (!callbackUrl) throw bad('invalid body', { reason: 'callbackUrl is required' });
    let eventTypes: string[] = [...LEGACY_DEFAULT_COMMANDS];
    if (o['eventTypes'] !== undefined && o['eventTypes'] !== null) {
      if (!Array.isArray(o['eventTypes']) || o['eventTypes'].some((e) => typeof e !== 'string')) throw bad('invalid body', { field: 'eventTypes' });
      if ((o['eventTypes'] as string[]).length) eventTypes = o['eventTypes'] as string[];
    }
    const ttl = int('ttlSeconds') ?? 0;
    const mode = str('deliveryMode') ?? 'fanout';
    const groupId = str('groupId') ?? '';
    const minIntervalSeconds = Math.max(0, int('minIntervalSeconds') ?? 0);
    if (!validWebhook(callbackUrl)) throw bad('invalid callback url');
    if (mode !== 'fanout' && mode !== 'group' && mode !== 'hash') throw bad('invalid deliveryMode');
    if (mode === 'group' && !groupId.trim()) throw bad('groupId is required');
    // Restricted to the commands the worker may claim (upstream does not check; architecture §2).
    if (!authorisedCommands(tokenEventTypes, eventTypes)) throw new CodeqError('FORBIDDEN', 'event type not allowed');
    const now = this.clock.now();
    const sub: Subscription = {
      id: randomUUID(),
      tenantId,
      callbackUrl,
      eventTypes,
      deliveryMode: mode,
      groupId: mode === 'group' ? groupId : null,
      minIntervalSeconds,
      createdAtMs: now,
      expiresAtMs: now + (ttl > 0 ? Math.min(ttl, 86400) : DEFAULT_TTL_SECONDS) * 1000,
      lastNotifiedAtMs: 0,
    };
    this.subs.set(sub.id, sub);
    return sub;
  }

  heartbeat(tenantId: string, id: string, body: unknown): Subscription {
    const sub = this.subs.get(id);
    const now = this.clock.now();
    if (!sub || sub.tenantId !== tenantId || sub.expiresAtMs <= now) throw new CodeqError('NOT_FOUND', 'not-found');
    const ttlRaw = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['ttlSeconds'] : undefined;
    const ttl = typeof ttlRaw === 'number' && Number.isInteger(ttlRaw) && ttlRaw > 0 ? Math.min(ttlRaw, 86400) : DEFAULT_TTL_SECONDS;
    sub.expiresAtMs = now + ttl * 1000;
    return sub;
  }

  active(): number {
    const now = this.clock.now();
    let n = 0;
    for (const s of this.subs.values()) if (s.expiresAtMs > now) n++;
    return n;
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [id, s] of this.subs) if (s.expiresAtMs <= now) this.subs.delete(id);
  }

  /** Subscriptions to notify for a newly ready task. */
  recipients(task: TaskRecord): Subscription[] {
    const now = this.clock.now();
    const matching = [...this.subs.values()].filter((s) => s.tenantId === task.tenantId && s.expiresAtMs > now && s.eventTypes.some((e) => e === '*' || e.toLowerCase() === task.commandKey));
    const out: Subscription[] = matching.filter((s) => s.deliveryMode === 'fanout');
    const groups = new Map<string, Subscription[]>();
    for (const s of matching) if (s.deliveryMode === 'group') groups.set(s.groupId ?? '', [...(groups.get(s.groupId ?? '') ?? []), s]);
    for (const [gid, members] of groups) {
      const key = `${task.tenantId}\u0000${task.commandKey}\u0000${gid}`;
      const i = this.groupCursor.get(key) ?? 0;
      this.groupCursor.set(key, i + 1);
      out.push(members[i % members.length]!);
    }
    const hashed = matching.filter((s) => s.deliveryMode === 'hash');
    if (hashed.length) out.push(hashed[Math.floor(now / 60_000) % hashed.length]!);
    // Throttle the chosen member (upstream checked the first member only).
    return out.filter((s) => s.minIntervalSeconds <= 0 || now - s.lastNotifiedAtMs >= s.minIntervalSeconds * 1000);
  }

  private notify(task: TaskRecord): void {
    if (!this.subs.size) return;
    for (const s of this.recipients(task)) {
      s.lastNotifiedAtMs = this.clock.now();
      void this.send(s, task);
    }
  }

  private async send(s: Subscription, task: TaskRecord): Promise<void> {
    try {
      this.limiter.take('webhook', 'queue_ready', s.callbackUrl);
    } catch {
      this.metrics.rateLimitHits.inc({ scope: 'webhook', operation: 'queue_ready' });
      return; // a limited notification is dropped
    }
    const body = JSON.stringify({
      eventType: task.command,
      available: true,
      queueDepth: 0,
      claimUrl: '/v1/codeq/tasks/claim',
      sentAt: new Date(Math.floor(this.clock.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z'),
      notificationId: `ntf-${s.id}`,
    });
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), this.config.webhookTimeoutMs);
    let outcome: 'success' | 'failure' = 'failure';
    try {
      const res = await this.webhooks.fetch(s.callbackUrl, { method: 'POST', headers: this.webhooks.headers(body), body, signal: ac.signal, redirect: 'manual' });
      outcome = res.status >= 200 && res.status < 300 ? 'success' : 'failure';
      await res.body?.cancel().catch(() => undefined);
    } catch (e) {
      this.log.debug({ err: (e as Error).message, subscriptionId: s.id }, 'queue-ready notification failed');
    } finally {
      clearTimeout(timer);
    }
    this.metrics.webhookDeliveries.inc({ kind: 'queue_ready', command: task.command, outcome });
  }

  toJson(s: Subscription): Record<string, unknown> {
    return { expiresAt: formatTime(s.expiresAtMs), subscriptionId: s.id };
  }
}
