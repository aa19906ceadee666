/**
 * The shared engine (architecture §3.2): N stateless replicas on one PostgreSQL database.
 *
 *  - No authoritative memory state: every read and write goes to the database. TypeORM owns the
 *    connection pool and runs the migrations (under an advisory lock, so replicas starting together
 *    do not race); hot paths are single SQL statements on that pool (no entity hydration).
 *  - Live tasks sit in `codeq_tasks`, the table claims scan, behind partial indexes; a task that
 *    finishes moves to `codeq_finished` in the statement that finishes it, so the hot table stays
 *    small whatever the retention.
 *  - Claim = one `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT n) RETURNING …` per
 *    requested command, in the caller's order, on the partial index of ready rows.
 *  - Every other change is an optimistic, guarded statement (`WHERE id = $1 AND version = $v`):
 *    a reaper or worker acting on a stale read changes nothing and re-reads. The read is skipped
 *    when this replica holds a copy of the row from its own claim or last write (a hint only: the
 *    guard decides, and refusals are confirmed on a fresh read).
 *  - Creates that arrive in the same event-loop turn are inserted by one multi-row statement.
 *  - Wake-ups: statements that make work ready send `NOTIFY codeq_work` (tenant, count, command);
 *    results send `NOTIFY codeq_result`; one LISTEN connection per replica wakes its long-polls,
 *    with a bounded fallback re-check (FALLBACK_MS) for notifications lost on reconnects. A
 *    notification that lands while a claim or result read is running is remembered, so the
 *    waiter parked right after that read does not sleep through it (MissedWakeups).
 *  - Maintenance (delayed promotion, lease expiry, retention) runs on the one replica that holds
 *    a session advisory lock on a dedicated connection; when that replica dies its connection drops,
 *    PostgreSQL releases the lock and another replica takes over within LEADER_RETRY_MS.
 * Connections per replica: `poolSize` + 2 (LISTEN, maintenance lock).
 *
 * The parts: sql.ts (columns, NOTIFY fragments, reads by id), one file per statement family —
 * create.ts, claim.ts, transition.ts, promote.ts, expire.ts, counts.ts, purge.ts, operator.ts,
 * notes.ts — notifications.ts (LISTEN, long-poll waiters), leader.ts (maintenance lock and loop),
 * and the catalogs (postgres-topic-store.ts, postgres-schedule-store.ts). This file opens and
 * closes the engine and applies the port (domain/task-store.ts) with them.
 */
import pg from 'pg';
import { DataSource } from 'typeorm';
import type {
  CreateOutcome, ExpiredLease, ListQuery, PausedCommand, QueueCounts, QueueDepth, RedriveSelection, TaskStore, TransitionFn,
} from '../../domain/task-store.js';
import type { LeaseSpec } from '../../domain/rules.js';
import type { ResultRecord, TaskRecord } from '../../domain/task.js';
import type { LogLine, LogLineInput, ProgressRecord } from '../../domain/task-notes.js';
import type { ScheduleStore } from '../../domain/schedule.js';
import type { TopicStore } from '../../domain/topic.js';
import { PostgresSchema1764400000000 } from './migrations/1764400000000-postgres-schema.js';
import { PostgresOperatorApi1764500000000 } from './migrations/1764500000000-operator-api.js';
import { PostgresTaskNotes1764600000000 } from './migrations/1764600000000-task-notes.js';
import { PostgresSchedules1764610000000 } from './migrations/1764610000000-schedules.js';
import { PostgresWebhookOutbox1764620000000 } from './migrations/1764620000000-webhook-outbox.js';
import { PostgresTraceContext1764630000000 } from './migrations/1764630000000-trace-context.js';
import { PostgresWebhookOutbox } from './postgres-webhook-outbox.js';
import { PostgresScheduleStore } from './postgres-schedule-store.js';
import { PostgresTopicStore } from './postgres-topic-store.js';
import { TYPES, fetchResult, fetchTask, redact } from './sql.js';
import { CreateBatcher } from './create.js';
import { claim } from './claim.js';
import { Transitions } from './transition.js';
import { promoteDue } from './promote.js';
import { expiredLeases, nextDueAt } from './expire.js';
import { KnownQueues, counts, depths } from './counts.js';
import { purgeTerminal } from './purge.js';
import * as operator from './operator.js';
import * as taskNotes from './notes.js';
import { Notifications } from './notifications.js';
import { LeaderElection } from './leader.js';

export interface PostgresStoreOptions {
  url: string;
  poolSize: number;
  /** How often readiness pings the database (default 2000 ms; issue 12 item 14). */
  probeIntervalMs?: number;
  /** Time source (default: the system clock); maintenance and timers read it. */
  clock?: { now(): number };
  log?: { info(obj: object, msg: string): void; error(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/** Pool timeouts (issue 12 item 14): opening a connection, and any one statement. */
const CONNECT_TIMEOUT_MS = 5000;
const STATEMENT_TIMEOUT_MS = 30_000;
/** Advisory lock key ("codeq" + purpose). */
const MIGRATION_LOCK = 0x636f6465_71_01;

export class PostgresTaskStore implements TaskStore {
  private ds: DataSource | null = null;
  private pool!: pg.Pool;
  private ok = false;
  private closed = false;
  private draining = false;
  private leaseHandler: ((leases: ExpiredLease[]) => void) | null = null;
  /** Leases handed to the handler recently (not handed again while it works on them). */
  private readonly expiring = new Map<string, number>();
  private readonly knownQueues = new KnownQueues();
  /** Per tenant, the command this replica's last claim served (round-robin across commands). */
  private readonly lastServed = new Map<string, string>();
  private readonly now: () => number;
  private readonly creates = new CreateBatcher(() => this.pool);
  private readonly transitions = new Transitions(() => this.pool);
  private readonly topicStore = new PostgresTopicStore(() => this.pool);
  private readonly notes: Notifications;
  private readonly leaderElection: LeaderElection;

  constructor(private readonly opts: PostgresStoreOptions) {
    const clock = opts.clock;
    this.now = clock ? () => clock.now() : Date.now;
    const host = { closed: () => this.closed, now: () => this.now(), newClient: () => this.newClient(), log: opts.log };
    this.notes = new Notifications({
      ...host,
      draining: () => this.draining,
      onTimer: (at) => this.leaderElection.armMaintenance(at),
      reloadTopics: () => this.topicStore.load(),
    });
    this.leaderElection = new LeaderElection({ ...host, maintain: () => this.maintain() });
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  async open(): Promise<void> {
    const ds = new DataSource({
      type: 'postgres',
      url: this.opts.url,
      poolSize: this.opts.poolSize,
      extra: {
        max: this.opts.poolSize,
        types: TYPES,
        application_name: 'codeq',
        connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
        statement_timeout: STATEMENT_TIMEOUT_MS,
        query_timeout: STATEMENT_TIMEOUT_MS + 5000,
      },
      migrations: [PostgresSchema1764400000000, PostgresOperatorApi1764500000000, PostgresTaskNotes1764600000000, PostgresSchedules1764610000000, PostgresWebhookOutbox1764620000000, PostgresTraceContext1764630000000],
      migrationsTableName: 'codeq_migrations',
      synchronize: false,
      logging: false,
    });
    try {
      await ds.initialize();
    } catch (e) {
      throw new Error(`cannot connect to PostgreSQL at ${redact(this.opts.url)}: ${(e as Error).message}`);
    }
    this.ds = ds;
    this.pool = (ds.driver as unknown as { master: pg.Pool }).master;
    // An idle pooled connection that dies (server restart, failover) is dropped by the pool; the
    // next query opens a new one. Without a listener the error would end the process.
    this.pool.on('error', (e) => this.opts.log?.warn({ err: e.message }, 'idle postgres connection closed'));
    try {
      await this.migrate();
      await this.topicStore.load();
      await this.notes.listen();
      await this.leaderElection.tryLead();
    } catch (e) {
      await this.shutdownConnections();
      throw e;
    }
    this.ok = true;
    this.reachable = true;
    this.scheduleProbe();
  }

  /** Last outcome of the readiness ping: /readyz follows the database's reachability. */
  private reachable = false;
  private probeTimer: NodeJS.Timeout | null = null;

  private scheduleProbe(): void {
    if (this.closed) return;
    this.probeTimer = setTimeout(() => void this.probe(), this.opts.probeIntervalMs ?? 2000);
    this.probeTimer.unref();
  }

  private async probe(): Promise<void> {
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('ping timed out')), CONNECT_TIMEOUT_MS).unref());
    try {
      await Promise.race([this.pool.query('SELECT 1'), timeout]);
      if (!this.reachable) this.opts.log?.info({}, 'postgres reachable again');
      this.reachable = true;
    } catch (e) {
      if (this.reachable) this.opts.log?.warn({ err: (e as Error).message }, 'postgres unreachable: readiness down');
      this.reachable = false;
    }
    this.scheduleProbe();
  }

  /** Migrations under a session advisory lock: one replica migrates, the others wait and find nothing to do. */
  private async migrate(): Promise<void> {
    // The lock is held on a connection of its own: TypeORM runs the migrations on a pool
    // connection, and with poolSize 1 a pooled lock holder would leave it none (start-up hangs).
    const c = this.newClient();
    c.on('error', () => undefined); // reported by the failing query
    await c.connect();
    try {
      await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      await this.ds!.runMigrations({ transaction: 'all' });
    } finally {
      // Ending the session releases the advisory lock.
      await c.end().catch(() => undefined);
    }
  }

  /** A connection outside the pool (LISTEN, locks); TCP keepalive notices a vanished peer. */
  private newClient(): pg.Client {
    return new pg.Client({ connectionString: this.opts.url, types: TYPES, application_name: 'codeq', keepAlive: true, keepAliveInitialDelayMillis: 10_000 });
  }

  /** True when this replica holds the maintenance lock. */
  isLeader(): boolean {
    return this.leaderElection.isLeader();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ok = false;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.leaderElection.clearMaintenance();
    await this.creates.settle();
    this.notes.wakeEverybody();
    await this.shutdownConnections();
  }

  private async shutdownConnections(): Promise<void> {
    await Promise.allSettled([this.notes.stop(), this.leaderElection.stop()]);
    if (this.ds?.isInitialized) await this.ds.destroy().catch(() => undefined);
  }

  healthy(): boolean {
    return this.ok && this.reachable && !this.closed && !this.draining;
  }

  drain(): void {
    this.draining = true;
    this.notes.wakeEverybody();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('store is closed');
  }

  /** One maintenance pass (on the leader): promotions, expired leases, then the next due instant. */
  private async maintain(): Promise<number | undefined> {
    await promoteDue(this.pool, this.now);
    if (this.leaseHandler) {
      const leases = await expiredLeases(this.pool, this.now(), this.expiring);
      if (leases.length) this.leaseHandler(leases);
    }
    return nextDueAt(this.pool);
  }

  onLeaseExpired(handler: (leases: ExpiredLease[]) => void): void {
    this.leaseHandler = handler;
    if (this.leaderElection.isLeader()) this.leaderElection.armMaintenance(this.now());
  }

  // ---------------------------------------------------------------------------------------------
  // The port

  async get(tenantId: string, id: string): Promise<TaskRecord | null> {
    const f = await fetchTask(this.pool, id);
    return f && f.task.tenantId === tenantId ? f.task : null;
  }

  async getResult(tenantId: string, id: string): Promise<ResultRecord | null> {
    const r = await this.notes.missedResults.around(id, () => fetchResult(this.pool, id));
    return r && r.tenantId === tenantId ? r : null;
  }

  async create(task: TaskRecord): Promise<CreateOutcome> {
    this.assertOpen();
    this.knownQueues.remember(task.tenantId, task.commandKey, task.command);
    return this.creates.create(task);
  }

  async claim(tenantId: string, commandKeys: readonly string[], count: number, lease: LeaseSpec): Promise<TaskRecord[]> {
    this.assertOpen();
    if (!commandKeys.length || count <= 0) return [];
    return claim({ pool: this.pool, missedWork: this.notes.missedWork, lastServed: this.lastServed, remember: (f) => this.transitions.remember(f) }, tenantId, commandKeys, count, lease);
  }

  waitForWork(tenantId: string, commandKeys: readonly string[], deadlineMs: number, signal?: AbortSignal): Promise<void> {
    return this.notes.waitForWork(tenantId, commandKeys, deadlineMs, signal);
  }

  transition<R>(tenantId: string | null, id: string, fn: TransitionFn<R>): Promise<R> {
    this.assertOpen();
    return this.transitions.run(tenantId, id, fn);
  }

  waitForResult(_tenantId: string, id: string, deadlineMs: number, signal?: AbortSignal): Promise<void> {
    return this.notes.waitForResult(id, deadlineMs, signal);
  }

  counts(tenantId: string, commandKey: string): Promise<QueueCounts> {
    return counts(this.pool, tenantId, commandKey);
  }

  depths(): Promise<QueueDepth[]> {
    return depths(this.pool, this.knownQueues);
  }

  list(q: ListQuery): Promise<TaskRecord[]> {
    this.assertOpen();
    return operator.list(this.pool, q);
  }

  /** EXPLAIN of the listing's SQL (tests check every branch uses an index). */
  explainList(q: ListQuery): Promise<string[]> {
    return operator.explainList(this.pool, q);
  }

  redrive(tenantId: string, sel: RedriveSelection, now: number): Promise<TaskRecord[]> {
    this.assertOpen();
    return operator.redrive(this.pool, tenantId, sel, now);
  }

  /** Stored in codeq_paused, which every replica's claim statement checks; resume notifies codeq_work. */
  async setPaused(tenantId: string, commandKey: string, command: string, paused: boolean): Promise<void> {
    this.assertOpen();
    this.knownQueues.remember(tenantId, commandKey, command);
    await operator.setPaused(this.pool, tenantId, commandKey, command, paused, this.now());
  }

  pausedCommands(tenantId?: string): Promise<PausedCommand[]> {
    return operator.pausedCommands(this.pool, tenantId);
  }

  writeNotes(
    tenantId: string,
    id: string,
    guard: (t: TaskRecord | null) => TaskRecord,
    notes: { progress?: string; logs?: readonly LogLineInput[]; maxLines: number },
    now: number,
  ): Promise<void> {
    this.assertOpen();
    return taskNotes.writeNotes(this.pool, tenantId, id, guard, notes, now, () => this.transitions.forget(id));
  }

  progress(tenantId: string, id: string): Promise<ProgressRecord | null> {
    return taskNotes.progress(this.pool, tenantId, id);
  }

  logs(tenantId: string, id: string, afterN: number, limit: number): Promise<LogLine[]> {
    return taskNotes.logs(this.pool, tenantId, id, afterN, limit);
  }

  /**
   * Deletes finished tasks, their results and idempotency keys. The server-wide sweep (no tenant)
   * runs on the maintenance replica only; a tenant's admin cleanup runs wherever it arrives.
   */
  async purgeTerminal(terminalBeforeMs: number, limit: number, tenantId?: string): Promise<number> {
    this.assertOpen();
    if (tenantId === undefined && !this.leaderElection.isLeader()) return 0;
    return purgeTerminal(this.pool, terminalBeforeMs, limit, tenantId);
  }

  /** Schedules (issue 17 item 4): their own table, guarded statements on the pool. */
  schedules(): ScheduleStore {
    return new PostgresScheduleStore(this.pool);
  }

  /** The result-webhook outbox shared by the replicas (ADR 0012). */
  webhookOutbox(): PostgresWebhookOutbox {
    return new PostgresWebhookOutbox(this.pool);
  }

  topics(): TopicStore {
    return this.topicStore;
  }
}
