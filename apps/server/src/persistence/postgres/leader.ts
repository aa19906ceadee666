/**
 * Leader election and the maintenance loop of the PostgreSQL engine: maintenance (delayed
 * promotion, lease expiry, retention) runs on the one replica that holds a session advisory lock
 * on a dedicated connection; when that replica dies its connection drops, PostgreSQL releases the
 * lock and another replica takes over within LEADER_RETRY_MS.
 */
import type pg from 'pg';
import { openSession } from './sql.js';

/** How often a follower tries to take the maintenance lock. */
const LEADER_RETRY_MS = 1000;
/** Longest sleep of the maintenance loop. */
const MAINTENANCE_MAX_MS = 1000;
/** Advisory lock key ("codeq" + purpose). */
const LEADER_LOCK = 0x636f6465_71_02;

export interface LeaderHost {
  closed(): boolean;
  now(): number;
  newClient(): pg.Client;
  /** One maintenance pass; returns the next instant there is work, if known. */
  maintain(): Promise<number | undefined>;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

export class LeaderElection {
  private leaderClient: pg.Client | null = null;
  private leader = false;
  /** Gives up the lock connection (and leadership); idempotent. */
  private dropLeadership: (() => void) | null = null;
  private leaderRetry: NodeJS.Timeout | null = null;
  private maintenanceTimer: NodeJS.Timeout | null = null;
  private maintenanceAt = Infinity;
  private maintenanceRunning = false;

  constructor(private readonly host: LeaderHost) {}

  /** Try to become the maintenance replica; followers retry every LEADER_RETRY_MS. */
  async tryLead(): Promise<void> {
    if (this.host.closed()) return;
    try {
      if (!this.leaderClient) {
        const c = this.host.newClient();
        const lost = () => {
          if (this.leaderClient !== c) return;
          this.leaderClient = null;
          if (this.leader) this.host.log?.warn({}, 'lost the maintenance lock (connection closed)');
          this.leader = false;
          this.clearMaintenance();
          c.end().catch(() => undefined);
          this.scheduleLeaderRetry();
        };
        c.on('error', lost);
        c.on('end', lost);
        this.dropLeadership = lost;
        if (!(await openSession(c, () => this.host.closed()))) return;
        this.leaderClient = c;
        // If this machine vanishes without closing the socket, the server drops the session (and
        // the lock) after ~25 s instead of its 2 h default, so another replica takes over.
        await c.query('SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3').catch(() => undefined);
      }
      const r = await this.leaderClient.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [LEADER_LOCK]);
      if (r.rows[0]?.ok) {
        this.leader = true;
        this.host.log?.info({}, 'this replica runs maintenance (lease expiry, delayed promotion, retention)');
        this.armMaintenance(this.host.now());
        return;
      }
    } catch (e) {
      this.host.log?.warn({ err: (e as Error).message }, 'maintenance lock attempt failed');
    }
    this.scheduleLeaderRetry();
  }

  private scheduleLeaderRetry(): void {
    if (this.host.closed() || this.leaderRetry) return;
    this.leaderRetry = setTimeout(() => {
      this.leaderRetry = null;
      void this.tryLead();
    }, LEADER_RETRY_MS);
  }

  /** True when this replica holds the maintenance lock. */
  isLeader(): boolean {
    return this.leader;
  }

  /** Make sure maintenance runs by `at` (on the leader; at most MAINTENANCE_MAX_MS away). */
  armMaintenance(at: number): void {
    if (this.host.closed() || !this.leader || !Number.isFinite(at)) return;
    const when = Math.min(at, this.host.now() + MAINTENANCE_MAX_MS);
    if (this.maintenanceTimer && when >= this.maintenanceAt) return;
    if (this.maintenanceTimer) clearTimeout(this.maintenanceTimer);
    this.maintenanceAt = when;
    this.maintenanceTimer = setTimeout(() => {
      this.maintenanceTimer = null;
      this.maintenanceAt = Infinity;
      void this.maintain();
    }, Math.max(0, when - this.host.now()));
  }

  clearMaintenance(): void {
    if (this.maintenanceTimer) clearTimeout(this.maintenanceTimer);
    this.maintenanceTimer = null;
    this.maintenanceAt = Infinity;
  }

  private async maintain(): Promise<void> {
    if (this.maintenanceRunning || this.host.closed() || !this.leader) return;
    this.maintenanceRunning = true;
    let next = this.host.now() + MAINTENANCE_MAX_MS;
    try {
      // Still holding the lock? A lock connection that stopped answering (half-open TCP) is closed,
      // which ends the leadership here (the server releases the lock when it drops the session).
      const lc = this.leaderClient;
      if (lc) {
        try {
          const ping: pg.QueryConfig & { query_timeout: number } = { text: 'SELECT 1', query_timeout: 5000 }; // pg reads it; @types/pg omits it
          await lc.query(ping);
        } catch {
          this.dropLeadership?.();
          return;
        }
      }
      const due = await this.host.maintain();
      if (due !== undefined) next = Math.min(next, due);
    } catch (e) {
      if (!this.host.closed()) this.host.log?.error({ err: (e as Error).message }, 'maintenance pass failed');
    } finally {
      this.maintenanceRunning = false;
    }
    this.armMaintenance(Math.max(next, this.host.now() + 5));
  }

  /** Give up leadership and stop (close). */
  async stop(): Promise<void> {
    this.clearMaintenance();
    if (this.leaderRetry) clearTimeout(this.leaderRetry);
    const c = this.leaderClient;
    this.leaderClient = null;
    this.leader = false;
    await c?.end();
  }
}
