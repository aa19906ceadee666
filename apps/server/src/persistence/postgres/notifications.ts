/**
 * Wake-ups of the PostgreSQL engine: statements that make work ready send `NOTIFY codeq_work`
 * (tenant, count, command); results send `NOTIFY codeq_result`; one LISTEN connection per replica
 * wakes its long-polls, with a bounded fallback re-check (FALLBACK_MS) for notifications lost on
 * reconnects. A notification that lands while a claim or result read is running is remembered,
 * so the waiter parked right after that read does not sleep through it (MissedWakeups).
 */
import type pg from 'pg';
import { openSession } from './sql.js';
import { ResultWaiters } from '../waiters.js';

/** Upper bound on how long a parked long-poll waits without re-checking (lost notifications). */
export const FALLBACK_MS = 1500;

/**
 * Closes the gap between a read that found nothing (a claim, a result read) and the waiter its
 * caller parks right after: a notification that arrives while such a read runs, and finds nobody
 * parked, may be about a row committed after that read's snapshot. It is remembered for a short
 * while, and the next waiter on that key returns at once (its caller reads again) instead of
 * sleeping until the fallback re-check.
 */
export class MissedWakeups {
  private readonly reading = new Map<string, number>();
  private readonly missed = new Map<string, { n: number; at: number }>();

  /** `around` for several keys at once. */
  aroundAll<T>(keys: readonly string[], read: () => Promise<T>): Promise<T> {
    if (!keys.length) return read();
    return this.around(keys[0]!, () => this.aroundAll(keys.slice(1), read));
  }

  async around<T>(key: string, read: () => Promise<T>): Promise<T> {
    this.reading.set(key, (this.reading.get(key) ?? 0) + 1);
    try {
      return await read();
    } finally {
      const n = (this.reading.get(key) ?? 1) - 1;
      if (n > 0) this.reading.set(key, n);
      else this.reading.delete(key);
    }
  }

  /** A notification for `key` that `unserved` parked waiters were missing for. */
  notified(key: string, unserved: number): void {
    const reading = this.reading.get(key) ?? 0;
    if (unserved <= 0 || reading === 0) return;
    const now = Date.now();
    if (this.missed.size >= 1000) for (const [k, m] of this.missed) if (now - m.at >= FALLBACK_MS) this.missed.delete(k);
    const cur = this.missed.get(key);
    const before = cur && now - cur.at < FALLBACK_MS ? cur.n : 0;
    this.missed.set(key, { n: Math.min(reading, before + unserved), at: now });
  }

  /** True, once per remembered wake-up, when a waiter on `key` should not park. */
  take(key: string): boolean {
    const m = this.missed.get(key);
    if (!m) return false;
    const fresh = Date.now() - m.at < FALLBACK_MS;
    if (!fresh || m.n <= 1) this.missed.delete(key);
    else m.n--;
    return fresh;
  }
}

/** What the notifications need from their engine. */
export interface NotificationHost {
  closed(): boolean;
  draining(): boolean;
  now(): number;
  newClient(): pg.Client;
  /** NOTIFY codeq_timer: a delayed task is due at `at`. */
  onTimer(at: number): void;
  /** NOTIFY codeq_topics, or notifications may have been lost: reload the topic catalog. */
  reloadTopics(): Promise<void>;
  log?: { warn(obj: object, msg: string): void };
}

export class Notifications {
  private listener: pg.Client | null = null;
  private listenRetry: NodeJS.Timeout | null = null;
  private readonly workWaiters = new Map<string, Set<() => void>>();
  readonly missedWork = new MissedWakeups();
  readonly missedResults = new MissedWakeups();
  private readonly results: ResultWaiters;

  constructor(private readonly host: NotificationHost) {
    this.results = new ResultWaiters(() => host.now(), FALLBACK_MS);
  }

  /** The LISTEN connection. When it drops, relisten() reconnects until it succeeds. */
  async listen(): Promise<void> {
    const c = this.host.newClient();
    c.on('notification', (n) => this.onNotification(n.channel, n.payload ?? ''));
    const lost = (e?: Error) => {
      if (this.listener !== c) return;
      this.listener = null;
      c.removeAllListeners('end');
      c.end().catch(() => undefined);
      if (this.host.closed()) return;
      this.host.log?.warn({ err: e?.message }, 'postgres LISTEN connection lost; reconnecting');
      this.relisten();
    };
    c.on('error', lost);
    c.on('end', () => lost());
    if (!(await openSession(c, () => this.host.closed(), 'LISTEN codeq_work; LISTEN codeq_result; LISTEN codeq_timer; LISTEN codeq_topics'))) return;
    this.listener = c;
  }

  /**
   * Reconnect the LISTEN connection every 500 ms until it succeeds (the database may be down for a
   * while). Notifications sent meanwhile are lost: wake every waiter and reload the topic catalog.
   */
  private relisten(): void {
    if (this.host.closed() || this.listenRetry) return;
    this.listenRetry = setTimeout(() => {
      this.listenRetry = null;
      this.listen()
        .then(async () => {
          this.wakeEverybody();
          await this.host.reloadTopics();
        })
        .catch((e: unknown) => {
          if (this.host.closed()) return;
          if (!this.listener) {
            this.host.log?.warn({ err: (e as Error).message }, 'postgres LISTEN reconnect failed; retrying');
            this.relisten();
          }
        });
    }, 500);
  }

  private onNotification(channel: string, payload: string): void {
    switch (channel) {
      case 'codeq_work': {
        const a = payload.indexOf(':');
        const b = payload.indexOf(':', a + 1);
        if (a < 0 || b < 0) return;
        this.wakeWork(`${payload.slice(0, a)}\u0000${payload.slice(b + 1)}`, Number(payload.slice(a + 1, b)) || 1);
        break;
      }
      case 'codeq_result':
        this.wakeResult(payload);
        break;
      case 'codeq_timer':
        this.host.onTimer(Number(payload));
        break;
      case 'codeq_topics':
        this.host.reloadTopics().catch((e: unknown) => this.host.log?.warn({ err: (e as Error).message }, 'topic catalog reload failed'));
        break;
    }
  }

  /** Stop listening (close). */
  async stop(): Promise<void> {
    if (this.listenRetry) clearTimeout(this.listenRetry);
    const l = this.listener;
    this.listener = null;
    await l?.end();
  }

  wakeEverybody(): void {
    for (const set of [...this.workWaiters.values()]) for (const w of [...set]) w();
    this.results.wakeAll();
  }

  waitForWork(tenantId: string, commandKeys: readonly string[], deadlineMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.host.closed() || this.host.draining() || signal?.aborted) return resolve();
      const keys = commandKeys.map((k) => `${tenantId}\u0000${k}`);
      if (keys.some((k) => this.missedWork.take(k))) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        for (const k of keys) {
          const s = this.workWaiters.get(k);
          if (s) {
            s.delete(done);
            if (!s.size) this.workWaiters.delete(k);
          }
        }
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, Math.min(deadlineMs - this.host.now(), FALLBACK_MS)));
      signal?.addEventListener('abort', done, { once: true });
      for (const k of keys) {
        let s = this.workWaiters.get(k);
        if (!s) this.workWaiters.set(k, (s = new Set()));
        s.add(done);
      }
    });
  }

  private wakeWork(key: string, n: number): void {
    const parked = [...(this.workWaiters.get(key) ?? [])].slice(0, n);
    for (const w of parked) w();
    this.missedWork.notified(key, n - parked.length);
  }

  waitForResult(id: string, deadlineMs: number, signal?: AbortSignal): Promise<void> {
    if (this.host.closed() || this.host.draining() || signal?.aborted || this.missedResults.take(id)) return Promise.resolve();
    return this.results.wait(id, deadlineMs, signal);
  }

  private wakeResult(id: string): void {
    if (this.results.has(id)) this.results.notify(id);
    else this.missedResults.notified(id, 1);
  }
}
