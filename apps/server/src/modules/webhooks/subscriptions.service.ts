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
/** Live subscriptions one tenant may hold (issue 12 item 9; 429 above). */
export const MAX_SUBSCRIPTIONS_PER_TENANT = 1000;
/** Queue-ready notifications being sent at once; more are dropped (and counted). */
export const MAX_NOTIFICATIONS_IN_FLIGHT = 64;

/** Index key of a subscription's event type within its tenant ('*' = every command). */
const indexKey = (tenantId: string, eventType: string) => `${tenantId}\u0000${eventType === '*' ? '*' : eventType.toLowerCase()}`;

@Injectable()
export class SubscriptionsService implements OnModuleInit, OnApplicationShutdown {
  private readonly subs = new Map<string, Subscription>();
  private readonly groupCursor = new Map<string, number>();
  private sweeper: NodeJS.Timeout | null = null;
  /** (tenant, command or '*') → subscriptions, in creation order (issue 12 item 9). */
  private readonly index = new Map<string, Set<Subscription>>();
  private readonly perTenant = new Map<string, number>();
  private readonly order = new WeakMap<Subscription, number>();
  private created = 0;
  private sending = 0;

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
    this.metrics.subscriptionsActive.setSource(() => this.activeByEventType());
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
    this.sweep();
    if ((this.perTenant.get(tenantId) ?? 0) >= MAX_SUBSCRIPTIONS_PER_TENANT) {
      throw new CodeqError('RATE_LIMITED', `too many subscriptions for this tenant (at most ${MAX_SUBSCRIPTIONS_PER_TENANT})`, { retryAfterSeconds: DEFAULT_TTL_SECONDS });
    }
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
    this.order.set(sub, this.created++);
    this.perTenant.set(tenantId, (this.perTenant.get(tenantId) ?? 0) + 1);
    for (const e of new Set(eventTypes.map((x) => indexKey(tenantId, x)))) {
      let set = this.index.get(e);
      if (!set) this.index.set(e, (set = new Set()));
      set.add(sub);
    }
    return sub;
  }

  private remove(s: Subscription): void {
    this.subs.delete(s.id);
    const n = (this.perTenant.get(s.tenantId) ?? 1) - 1;
    if (n > 0) this.perTenant.set(s.tenantId, n);
    else this.perTenant.delete(s.tenantId);
    for (const e of new Set(s.eventTypes.map((x) => indexKey(s.tenantId, x)))) {
      const set = this.index.get(e);
      set?.delete(s);
      if (set && !set.size) this.index.delete(e);
    }
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

  /** Unexpired subscriptions per event type, summed over tenants (`codeq_subscriptions_active`). */
  activeByEventType(): Map<string, number> {
    const now = this.clock.now();
    const out = new Map<string, number>();
    for (const s of this.subs.values()) {
      if (s.expiresAtMs <= now) continue;
      for (const e of s.eventTypes) out.set(e, (out.get(e) ?? 0) + 1);
    }
    return out;
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const s of [...this.subs.values()]) if (s.expiresAtMs <= now) this.remove(s);
  }

  /** Subscriptions to notify for a newly ready task. */
  recipients(task: TaskRecord): Subscription[] {
    const now = this.clock.now();
    const candidates = new Set([...(this.index.get(indexKey(task.tenantId, task.commandKey)) ?? []), ...(this.index.get(indexKey(task.tenantId, '*')) ?? [])]);
    const matching = [...candidates].filter((s) => s.expiresAtMs > now).sort((a, b) => (this.order.get(a) ?? 0) - (this.order.get(b) ?? 0));
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
    if (this.sending >= MAX_NOTIFICATIONS_IN_FLIGHT) {
      this.metrics.webhookDeliveries.inc({ kind: 'queue_ready', command: task.command, outcome: 'dropped' });
      return; // bounded outbound concurrency: a notification is only a hint
    }
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
    this.sending++;
    try {
      const res = await this.webhooks.fetch(s.callbackUrl, { method: 'POST', headers: this.webhooks.headers(body), body, signal: ac.signal, redirect: 'manual' });
      outcome = res.status >= 200 && res.status < 300 ? 'success' : 'failure';
      await res.body?.cancel().catch(() => undefined);
    } catch (e) {
      this.log.debug({ err: (e as Error).message, subscriptionId: s.id }, 'queue-ready notification failed');
    } finally {
      clearTimeout(timer);
      this.sending--;
    }
    this.metrics.webhookDeliveries.inc({ kind: 'queue_ready', command: task.command, outcome });
  }

  toJson(s: Subscription): Record<string, unknown> {
    return { expiresAt: formatTime(s.expiresAtMs), subscriptionId: s.id };
  }
}
