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
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { DataSource } from 'typeorm';
import type { CreateOutcome, ExpiredLease, ListQuery, PausedCommand, QueueCounts, QueueDepth, RedriveSelection, TaskStore, Transition, TransitionFn } from '../../domain/task-store.js';
import { isTerminal, MAX_PRIORITY, type ResultRecord, type TaskRecord } from '../../domain/task.js';
import type { Topic, TopicStore } from '../../domain/topic.js';
import { PostgresSchema1764400000000 } from './migrations/1764400000000-postgres-schema.js';
import { PostgresOperatorApi1764500000000 } from './migrations/1764500000000-operator-api.js';
import { PostgresTaskNotes1764600000000 } from './migrations/1764600000000-task-notes.js';
import type { LogLine, LogLineInput, ProgressRecord } from '../../domain/task-notes.js';
import { nextCommand } from '../round-robin.js';
import { PostgresSchedules1764610000000 } from './migrations/1764610000000-schedules.js';
import { PostgresScheduleStore } from './postgres-schedule-store.js';
import { PostgresWebhookOutbox1764620000000 } from './migrations/1764620000000-webhook-outbox.js';
import { PG_OUTBOX_INSERT, PostgresWebhookOutbox, outboxInsertCte, outboxValues } from './postgres-webhook-outbox.js';
import type { WebhookOutboxRow } from '../../domain/webhook-outbox.js';
import type { ScheduleStore } from '../../domain/schedule.js';
import { PostgresTraceContext1764630000000 } from './migrations/1764630000000-trace-context.js';
import { listBranches, listSql, type ListBranch } from '../list-sql.js';
import { TASK_COLUMNS, resultValues, rowToResult, rowToTask, taskValues, type Row } from '../rows.js';

export interface PostgresStoreOptions {
  url: string;
  poolSize: number;
  /** How often readiness pings the database (default 2000 ms; issue 12 item 14). */
  probeIntervalMs?: number;
  log?: { info(obj: object, msg: string): void; error(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/** Pool timeouts (issue 12 item 14): opening a connection, and any one statement. */
const CONNECT_TIMEOUT_MS = 5000;
const STATEMENT_TIMEOUT_MS = 30_000;

/** Upper bound on how long a parked long-poll waits without re-checking (lost notifications). */
const FALLBACK_MS = 1500;
/** How often a follower tries to take the maintenance lock. */
const LEADER_RETRY_MS = 1000;
/** Longest sleep of the maintenance loop. */
const MAINTENANCE_MAX_MS = 1000;
/** Advisory lock keys ("codeq" + purpose). */
const MIGRATION_LOCK = 0x636f6465_71_01;
const LEADER_LOCK = 0x636f6465_71_02;
const CREATE_BATCH = 500;
/** Bounds of the copy of recently leased rows (entries; payload characters of one entry). */
const RECENT_MAX = 4096;
const RECENT_MAX_PAYLOAD = 16 * 1024;

const COLS = TASK_COLUMNS;
const SQL_TYPES: Record<(typeof COLS)[number], string> = {
  id: 'text', tenant_id: 'text', command: 'text', command_key: 'text', payload: 'text', priority: 'smallint', webhook: 'text',
  status: 'text', location: 'text', worker_id: 'text', lease_id: 'text', lease_until: 'bigint', attempts: 'integer',
  max_attempts: 'integer', error: 'text', result_key: 'text', idempotency_key: 'text', visible_at: 'bigint', seq: 'bigint',
  created_at: 'bigint', updated_at: 'bigint', terminal_at: 'bigint', last_error: 'text', cancel_requested: 'integer',
  trace_parent: 'text', trace_state: 'text',
};
const COL_LIST = COLS.map((c) => `"${c}"`).join(', ');
/** Columns a transition can change (identity, command, payload and creation never change). */
const MUTABLE = ['status', 'location', 'worker_id', 'lease_id', 'lease_until', 'attempts', 'error', 'result_key', 'visible_at', 'updated_at', 'terminal_at', 'last_error', 'cancel_requested'] as const;

/** A task row as read: live rows (codeq_tasks) carry the version their writes are guarded by. */
interface Fetched {
  task: TaskRecord;
  version: number;
  live: boolean;
}

function mutableValues(t: TaskRecord): unknown[] {
  return [t.status, t.location, t.workerId, t.leaseId, t.leaseUntilMs, t.attempts, t.error, t.resultKey, t.visibleAtMs, t.updatedAtMs, t.terminalAtMs, t.lastError, t.cancelRequested ? 1 : 0];
}

/** bigint columns come back as numbers (epoch ms and sequence values stay far below 2^53). */
const parseInt8 = (v: string): number => Number(v);
const TYPES = {
  getTypeParser: ((oid: number, format?: string): unknown => (oid === 20 ? parseInt8 : (pg.types.getTypeParser(oid, format as 'text') as unknown))) as typeof pg.types.getTypeParser,
};

/** `pg_notify` payloads for work that became ready, one per (tenant, command) of the rows in CTE `src`. */
const NOTIFY_WORK = `SELECT pg_notify('codeq_work', tenant_id || ':' || count(*) || ':' || command_key) FROM src WHERE location = 'PENDING_LIST' GROUP BY tenant_id, command_key`;
const NOTIFY_TIMER = `SELECT pg_notify('codeq_timer', min(visible_at)::text) FROM src WHERE location = 'DELAYED_ZSET' HAVING count(*) > 0`;

/** Delayed tasks are due at the start of their second (as in the embedded engine). */
const dueCutoff = (now: number) => (Math.floor(now / 1000) + 1) * 1000;

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the configured URL';
  }
}

/**
 * Closes the gap between a read that found nothing (a claim, a result read) and the waiter its
 * caller parks right after: a notification that arrives while such a read runs, and finds nobody
 * parked, may be about a row committed after that read's snapshot. It is remembered for a short
 * while, and the next waiter on that key returns at once (its caller reads again) instead of
 * sleeping until the fallback re-check.
 */
class MissedWakeups {
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

interface PendingCreate {
  task: TaskRecord;
  resolve: (o: CreateOutcome) => void;
  reject: (e: unknown) => void;
}

export class PostgresTaskStore implements TaskStore {
  private ds: DataSource | null = null;
  private pool!: pg.Pool;
  private listener: pg.Client | null = null;
  private leaderClient: pg.Client | null = null;
  private leader = false;
  /** Gives up the lock connection (and leadership); idempotent. */
  private dropLeadership: (() => void) | null = null;
  private ok = false;
  private closed = false;
  private draining = false;
  private readonly workWaiters = new Map<string, Set<() => void>>();
  private readonly missedWork = new MissedWakeups();
  private readonly missedResults = new MissedWakeups();
  private readonly resultWaiters = new Map<string, Set<() => void>>();
  private leaseHandler: ((leases: ExpiredLease[]) => void) | null = null;
  /** Leases handed to the handler recently (not handed again while it works on them). */
  private readonly expiring = new Map<string, number>();
  /** Live rows this replica leased or wrote last (id → row and version), a hint for transition(). */
  private readonly recent = new Map<string, Fetched>();
  private pendingCreates: PendingCreate[] = [];
  /** (tenant, command key) → first spelling, for queues seen by this replica (bounded). */
  private readonly knownQueues = new Map<string, { tenantId: string; commandKey: string; command: string }>();
  private createFlush: Promise<void> | null = null;
  private readonly inflightCreates = new Set<Promise<void>>();
  private maintenanceTimer: NodeJS.Timeout | null = null;
  private maintenanceAt = Infinity;
  private maintenanceRunning = false;
  private leaderRetry: NodeJS.Timeout | null = null;
  private listenRetry: NodeJS.Timeout | null = null;
  private topicCache = new Map<string, Topic>();
  /** Per tenant, the command this replica's last claim served (round-robin across commands). */
  private readonly lastServed = new Map<string, string>();

  constructor(private readonly opts: PostgresStoreOptions) {}

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
      await this.loadTopics();
      await this.listen();
      await this.tryLead();
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

  /** The LISTEN connection. When it drops, relisten() reconnects until it succeeds. */
  private async listen(): Promise<void> {
    const c = this.newClient();
    c.on('notification', (n) => this.onNotification(n.channel, n.payload ?? ''));
    const lost = (e?: Error) => {
      if (this.listener !== c) return;
      this.listener = null;
      c.removeAllListeners('end');
      c.end().catch(() => undefined);
      if (this.closed) return;
      this.opts.log?.warn({ err: e?.message }, 'postgres LISTEN connection lost; reconnecting');
      this.relisten();
    };
    c.on('error', lost);
    c.on('end', () => lost());
    try {
      await c.connect();
      await c.query('LISTEN codeq_work; LISTEN codeq_result; LISTEN codeq_timer; LISTEN codeq_topics');
    } catch (e) {
      c.end().catch(() => undefined);
      throw e;
    }
    if (this.closed) {
      await c.end().catch(() => undefined);
      return;
    }
    this.listener = c;
  }

  /**
   * Reconnect the LISTEN connection every 500 ms until it succeeds (the database may be down for a
   * while). Notifications sent meanwhile are lost: wake every waiter and reload the topic catalog.
   */
  private relisten(): void {
    if (this.closed || this.listenRetry) return;
    this.listenRetry = setTimeout(() => {
      this.listenRetry = null;
      this.listen()
        .then(async () => {
          this.wakeEverybody();
          await this.loadTopics();
        })
        .catch((e: unknown) => {
          if (this.closed) return;
          if (!this.listener) {
            this.opts.log?.warn({ err: (e as Error).message }, 'postgres LISTEN reconnect failed; retrying');
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
        if (this.leader) this.armMaintenance(Number(payload));
        break;
      case 'codeq_topics':
        this.loadTopics().catch((e: unknown) => this.opts.log?.warn({ err: (e as Error).message }, 'topic catalog reload failed'));
        break;
    }
  }

  /** Try to become the maintenance replica; followers retry every LEADER_RETRY_MS. */
  private async tryLead(): Promise<void> {
    if (this.closed) return;
    try {
      if (!this.leaderClient) {
        const c = this.newClient();
        const lost = () => {
          if (this.leaderClient !== c) return;
          this.leaderClient = null;
          if (this.leader) this.opts.log?.warn({}, 'lost the maintenance lock (connection closed)');
          this.leader = false;
          this.clearMaintenance();
          c.end().catch(() => undefined);
          this.scheduleLeaderRetry();
        };
        c.on('error', lost);
        c.on('end', lost);
        this.dropLeadership = lost;
        try {
          await c.connect();
        } catch (e) {
          c.end().catch(() => undefined);
          throw e;
        }
        if (this.closed) {
          await c.end().catch(() => undefined);
          return;
        }
        this.leaderClient = c;
        // If this machine vanishes without closing the socket, the server drops the session (and
        // the lock) after ~25 s instead of its 2 h default, so another replica takes over.
        await c.query('SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3').catch(() => undefined);
      }
      const r = await this.leaderClient.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [LEADER_LOCK]);
      if (r.rows[0]?.ok) {
        this.leader = true;
        this.opts.log?.info({}, 'this replica runs maintenance (lease expiry, delayed promotion, retention)');
        this.armMaintenance(Date.now());
        return;
      }
    } catch (e) {
      this.opts.log?.warn({ err: (e as Error).message }, 'maintenance lock attempt failed');
    }
    this.scheduleLeaderRetry();
  }

  private scheduleLeaderRetry(): void {
    if (this.closed || this.leaderRetry) return;
    this.leaderRetry = setTimeout(() => {
      this.leaderRetry = null;
      void this.tryLead();
    }, LEADER_RETRY_MS);
  }

  /** True when this replica holds the maintenance lock. */
  isLeader(): boolean {
    return this.leader;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ok = false;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.clearMaintenance();
    if (this.leaderRetry) clearTimeout(this.leaderRetry);
    if (this.listenRetry) clearTimeout(this.listenRetry);
    if (this.pendingCreates.length) this.flushCreates();
    await Promise.allSettled([...this.inflightCreates]);
    this.wakeEverybody();
    await this.shutdownConnections();
  }

  private async shutdownConnections(): Promise<void> {
    const l = this.listener;
    this.listener = null;
    const c = this.leaderClient;
    this.leaderClient = null;
    this.leader = false;
    await Promise.allSettled([l?.end(), c?.end()]);
    if (this.ds?.isInitialized) await this.ds.destroy().catch(() => undefined);
  }

  healthy(): boolean {
    return this.ok && this.reachable && !this.closed && !this.draining;
  }

  drain(): void {
    this.draining = true;
    this.wakeEverybody();
  }

  private wakeEverybody(): void {
    for (const set of [...this.workWaiters.values(), ...this.resultWaiters.values()]) for (const w of [...set]) w();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('store is closed');
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  private async fetch(id: string): Promise<Fetched | null> {
    const r = await this.pool.query<Row>({
      name: 'codeq_fetch',
      text: `SELECT ${COL_LIST}, "version", true AS live FROM codeq_tasks WHERE id = $1
             UNION ALL SELECT ${COL_LIST}, 0 AS version, false AS live FROM codeq_finished WHERE id = $1 LIMIT 1`,
      values: [id],
    });
    const row = r.rows[0];
    return row ? { task: rowToTask(row), version: row['version'] as number, live: row['live'] as boolean } : null;
  }

  async get(tenantId: string, id: string): Promise<TaskRecord | null> {
    const f = await this.fetch(id);
    return f && f.task.tenantId === tenantId ? f.task : null;
  }

  private async fetchResult(id: string): Promise<ResultRecord | null> {
    const r = await this.pool.query<Row>({ name: 'codeq_result', text: 'SELECT * FROM codeq_results WHERE task_id = $1', values: [id] });
    return r.rows[0] ? rowToResult(r.rows[0]) : null;
  }

  async getResult(tenantId: string, id: string): Promise<ResultRecord | null> {
    const r = await this.missedResults.around(id, () => this.fetchResult(id));
    return r && r.tenantId === tenantId ? r : null;
  }

  // ---------------------------------------------------------------------------------------------
  // Create

  private rememberQueue(tenantId: string, commandKey: string, command: string): void {
    const k = `${tenantId}\u0000${commandKey}`;
    if (this.knownQueues.has(k) || this.knownQueues.size >= 10_000) return;
    this.knownQueues.set(k, { tenantId, commandKey, command });
  }

  async create(task: TaskRecord): Promise<CreateOutcome> {
    this.assertOpen();
    this.rememberQueue(task.tenantId, task.commandKey, task.command);
    if (task.idempotencyKey) return this.createKeyed(task);
    return new Promise<CreateOutcome>((resolve, reject) => {
      this.pendingCreates.push({ task, resolve, reject });
      if (this.pendingCreates.length >= CREATE_BATCH) this.flushCreates();
      else if (!this.createFlush) this.createFlush = new Promise<void>((r) => setImmediate(() => r())).then(() => this.flushCreates());
    });
  }

  /** One multi-row INSERT for the creates of this turn (they are independent: one failing row fails the batch). */
  private flushCreates(): void {
    this.createFlush = null;
    const batch = this.pendingCreates;
    this.pendingCreates = [];
    if (!batch.length) return;
    const arrays = COLS.map(() => [] as unknown[]);
    for (const { task } of batch) taskValues(task).forEach((v, i) => arrays[i]!.push(v));
    const seqIndex = COLS.indexOf('seq');
    const cols = COLS.filter((c) => c !== 'seq');
    const params = cols.map((c, i) => `$${i + 1}::${SQL_TYPES[c]}[]`).join(', ');
    const p = this.pool
      .query<{ id: string; seq: number }>({
        name: 'codeq_create_many',
        text: `WITH src AS (
                 INSERT INTO codeq_tasks (${cols.map((c) => `"${c}"`).join(', ')}, "seq")
                 SELECT u.*, nextval('codeq_seq') FROM unnest(${params}) AS u
                 RETURNING id, seq, tenant_id, command_key, location, visible_at),
               n AS (${NOTIFY_WORK}), d AS (${NOTIFY_TIMER})
               SELECT id, seq, (SELECT count(*) FROM n) + (SELECT count(*) FROM d) AS notified FROM src`,
        values: arrays.filter((_, i) => i !== seqIndex),
      })
      .then(
        (r) => {
          const seqs = new Map(r.rows.map((x) => [x.id, x.seq]));
          for (const c of batch) c.resolve({ task: { ...c.task, seq: seqs.get(c.task.id) ?? c.task.seq }, created: true });
        },
        (e: unknown) => {
          for (const c of batch) c.reject(e);
        },
      );
    this.inflightCreates.add(p);
    void p.finally(() => this.inflightCreates.delete(p));
  }

  /** Insert-or-replay, atomic per (tenant, key): the key row and the task go in one statement. */
  private async createKeyed(task: TaskRecord): Promise<CreateOutcome> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const v = taskValues(task);
      const seqIndex = COLS.indexOf('seq');
      const cols = COLS.filter((c) => c !== 'seq');
      const values = v.filter((_, i) => i !== seqIndex);
      const r = await this.pool.query<{ id: string; seq: number }>({
        name: 'codeq_create_keyed',
        text: `WITH k AS (INSERT INTO codeq_idempotency (tenant_id, key, task_id) VALUES ($2, $17, $1) ON CONFLICT DO NOTHING RETURNING task_id),
               src AS (
                 INSERT INTO codeq_tasks (${cols.map((c) => `"${c}"`).join(', ')}, "seq")
                 SELECT ${cols.map((c, i) => `$${i + 1}::${SQL_TYPES[c]}`).join(', ')}, nextval('codeq_seq') WHERE EXISTS (SELECT 1 FROM k)
                 RETURNING id, seq, tenant_id, command_key, location, visible_at),
               n AS (${NOTIFY_WORK}), d AS (${NOTIFY_TIMER})
               SELECT id, seq, (SELECT count(*) FROM n) + (SELECT count(*) FROM d) AS notified FROM src`,
        values,
      });
      if (r.rows[0]) return { task: { ...task, seq: r.rows[0].seq }, created: true };
      const k = await this.pool.query<{ task_id: string }>('SELECT task_id FROM codeq_idempotency WHERE tenant_id = $1 AND key = $2', [task.tenantId, task.idempotencyKey]);
      const existingId = k.rows[0]?.task_id;
      if (existingId) {
        const existing = await this.fetch(existingId);
        if (existing) return { task: existing.task, created: false };
      }
      // The key was purged between the two statements: try again.
    }
    throw new Error('idempotent create did not settle');
  }

  // ---------------------------------------------------------------------------------------------
  // Claim

  async claim(tenantId: string, commandKeys: readonly string[], count: number, lease: (t: TaskRecord) => TaskRecord): Promise<TaskRecord[]> {
    this.assertOpen();
    if (!commandKeys.length || count <= 0) return [];
    // The domain decides the lease (worker, expiry, attempts + 1); the lease id is drawn per row by
    // the database so that one statement can lease many rows.
    const probe = lease(PROBE);
    if (probe.status !== 'IN_PROGRESS' || probe.location !== 'INPROG_SET' || probe.attempts !== PROBE.attempts + 1 || probe.visibleAtMs !== null) {
      throw new Error('unsupported lease transition for the postgres engine');
    }
    // One statement per command: each walks the ready index (tenant, command, priority DESC, seq)
    // and stops after LIMIT rows. A single statement over `command_key = ANY($2)` cannot use that
    // index: it scans and sorts the whole backlog (measured with 100k ready tasks: ~290 ms per
    // claim instead of ~1 ms). With several commands (ADR 0007), one index probe per command
    // first finds the highest ready priority; the commands ready at it are served round-robin
    // from the one after this tenant's last served command (a per-replica cursor).
    const out: TaskRecord[] = [];
    const keys = [...new Set(commandKeys)];
    if (keys.length === 1) {
      out.push(...(await this.claimFrom(tenantId, keys[0]!, count, 0, probe)));
      return out;
    }
    while (out.length < count) {
      const heads = await this.missedWork.aroundAll(keys.map((k) => `${tenantId}\u0000${k}`), () => this.pool.query<{ key: string; priority: number }>({
        name: 'codeq_claim_heads',
        text: `SELECT k.key, h.priority FROM unnest($2::text[]) AS k(key)
               CROSS JOIN LATERAL (
                 SELECT priority FROM codeq_tasks
                 WHERE tenant_id = $1 AND command_key = k.key AND location = 'PENDING_LIST'
                   AND NOT EXISTS (SELECT 1 FROM codeq_paused p WHERE p.tenant_id = $1 AND p.command_key = k.key)
                 ORDER BY priority DESC, seq LIMIT 1) h`,
        values: [tenantId, keys],
      }));
      if (!heads.rows.length) break;
      const top = Math.max(...heads.rows.map((h) => h.priority));
      const ready = new Set(heads.rows.filter((h) => h.priority === top).map((h) => h.key));
      // Serve the ready commands in turn, starting after the last served one.
      const turn: string[] = [];
      for (let k = nextCommand(ready, this.lastServed.get(tenantId), keys); k !== undefined && !turn.includes(k); k = nextCommand(ready, k, keys)) turn.push(k);
      let got = 0;
      for (let i = 0; i < turn.length && out.length < count; i++) {
        const share = Math.ceil((count - out.length) / (turn.length - i));
        const leased = await this.claimFrom(tenantId, turn[i]!, share, top, probe);
        if (leased.length) this.lastServed.set(tenantId, turn[i]!);
        got += leased.length;
        out.push(...leased);
      }
      if (!got) {
        // The top tasks were taken by another replica meanwhile: take whatever else is ready (in
        // list order) rather than park while lower priorities wait.
        for (const k of keys) {
          if (out.length >= count) break;
          out.push(...(await this.claimFrom(tenantId, k, count - out.length, 0, probe)));
        }
        break;
      }
    }
    return out;
  }

  /** Lease up to `n` ready tasks of one command with priority ≥ `minPriority`, in claim order. */
  private async claimFrom(tenantId: string, key: string, n: number, minPriority: number, probe: TaskRecord): Promise<TaskRecord[]> {
    const r = await this.missedWork.around(`${tenantId}\u0000${key}`, () => this.pool.query<Row>({
      name: 'codeq_claim',
      text: `UPDATE codeq_tasks t SET status = 'IN_PROGRESS', location = 'INPROG_SET', worker_id = $3, lease_id = gen_random_uuid()::text,
               lease_until = $4, attempts = t.attempts + 1, visible_at = NULL, updated_at = $5, version = t.version + 1
             WHERE t.id IN (
               SELECT id FROM codeq_tasks
               WHERE tenant_id = $1 AND command_key = $2 AND location = 'PENDING_LIST' AND priority >= $7
                 AND NOT EXISTS (SELECT 1 FROM codeq_paused p WHERE p.tenant_id = $1 AND p.command_key = $2)
               ORDER BY priority DESC, seq
               LIMIT $6 FOR UPDATE SKIP LOCKED)
             RETURNING ${COLS.map((c) => `t."${c}"`).join(', ')}, t."version"`,
      values: [tenantId, key, probe.workerId, probe.leaseUntilMs, probe.updatedAtMs, n, minPriority],
    }));
    const leased = r.rows.map((row) => {
      const task = rowToTask(row);
      this.remember({ task: { ...task }, version: row['version'] as number, live: true });
      return task;
    });
    // RETURNING follows no ORDER BY: put this command's tasks back in claim order.
    return leased.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
  }

  waitForWork(tenantId: string, commandKeys: readonly string[], deadlineMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.closed || this.draining || signal?.aborted) return resolve();
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
      const timer = setTimeout(done, Math.max(0, Math.min(deadlineMs - Date.now(), FALLBACK_MS)));
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

  // ---------------------------------------------------------------------------------------------
  // Transitions

  /**
   * Read, apply `fn`, write guarded by the version read; a lost race re-reads and re-runs `fn`.
   * The first attempt may start from the copy of a row this replica leased or wrote itself (see
   * `recent`), which saves the read on the hot path (claim → heartbeat → result on one replica).
   * A stale copy is harmless: the version guard refuses the write, and an answer that is not a
   * successful write (a refusal, or no change) is only ever given from a fresh read.
   */
  async transition<R>(tenantId: string | null, id: string, fn: TransitionFn<R>): Promise<R> {
    this.assertOpen();
    let f: Fetched | null = this.recent.get(id) ?? null;
    let cached = f !== null;
    for (let attempt = 0; ; attempt++) {
      if (!cached) f = await this.fetch(id);
      const current = f && (tenantId === null || f.task.tenantId === tenantId) ? f : null;
      // Only finished tasks have results (a result is stored by the transition that finishes a task).
      const stored = current && isTerminal(current.task.status) ? await this.fetchResult(id) : null;
      let out: Transition<R>;
      try {
        out = fn(current ? { ...current.task } : null, { result: () => stored });
      } catch (e) {
        if (!cached) throw e;
        out = { value: undefined as R }; // refused on the copy: confirm on a fresh read
      }
      if (!out.next || !current) {
        if (cached) {
          this.recent.delete(id);
          cached = false;
          continue;
        }
        if (!out.next) return out.value;
        throw new Error('a transition cannot create a task');
      }
      if (await this.apply(current, out.next, out.result ?? null, out.webhook)) return out.value;
      this.recent.delete(id);
      cached = false;
      if (attempt >= 20) throw new Error(`task ${id} is changing too fast to update`);
    }
  }

  /** Keep a copy of a live row this replica wrote (bounded; oldest first out; large payloads skipped). */
  private remember(f: Fetched): void {
    this.recent.delete(f.task.id);
    if (!f.live || f.task.payload.length > RECENT_MAX_PAYLOAD) return;
    this.recent.set(f.task.id, f);
    if (this.recent.size > RECENT_MAX) this.recent.delete(this.recent.keys().next().value!);
  }

  /** Write `next` if the row is still the version that was read; false = lost a race (re-read). */
  private async apply(prev: Fetched, next: TaskRecord, result: ResultRecord | null, webhook?: WebhookOutboxRow): Promise<boolean> {
    const newSeq = next.location === 'PENDING_LIST' || next.location === 'DELAYED_ZSET';
    if (prev.live && !isTerminal(next.status)) {
      const r = await this.pool.query({
        name: 'codeq_update',
        text: `WITH src AS (
                 UPDATE codeq_tasks SET ${MUTABLE.map((c, i) => `"${c}" = $${i + 3}`).join(', ')},
                   seq = CASE WHEN $${MUTABLE.length + 3}::boolean THEN nextval('codeq_seq') ELSE seq END, version = version + 1
                 WHERE id = $1 AND version = $2 RETURNING tenant_id, command_key, location, visible_at),
               n AS (${NOTIFY_WORK}), d AS (${NOTIFY_TIMER})
               SELECT (SELECT count(*) FROM src) AS changed, (SELECT count(*) FROM n) + (SELECT count(*) FROM d) AS notified`,
        values: [next.id, prev.version, ...mutableValues(next), newSeq],
      });
      const changed = Number((r.rows[0] as Row)['changed']) === 1;
      // A row that got a new seq (back in a queue) is not kept: the copy would miss its seq.
      if (changed && !newSeq) this.remember({ task: { ...next }, version: prev.version + 1, live: true }); // a copy: callers get `next`
      else this.recent.delete(next.id);
      return changed;
    }
    this.recent.delete(next.id);
    if (prev.live) {
      // Finishing: the row leaves the hot table, and the result (if any) is stored, in one statement.
      const base = COLS.length;
      const r = await this.pool.query({
        name: result ? (webhook ? 'codeq_finish_result_webhook' : 'codeq_finish_result') : webhook ? 'codeq_finish_webhook' : 'codeq_finish',
        text: `WITH gone AS (DELETE FROM codeq_tasks WHERE id = $1 AND version = $${base + 1} RETURNING id),
               f AS (INSERT INTO codeq_finished (${COL_LIST}) SELECT ${COLS.map((c, i) => `$${i + 1}::${SQL_TYPES[c]}`).join(', ')} WHERE EXISTS (SELECT 1 FROM gone) RETURNING id)
               ${result
                 ? `, r AS (INSERT INTO codeq_results (task_id, tenant_id, status, result, error, artifacts, completed_at, lease_id, worker_id)
                     SELECT ${['text', 'text', 'text', 'text', 'text', 'text', 'bigint', 'text', 'text'].map((t, i) => `$${base + 2 + i}::${t}`).join(', ')} WHERE EXISTS (SELECT 1 FROM gone)
                     ON CONFLICT (task_id) DO UPDATE SET status = excluded.status, result = excluded.result, error = excluded.error, artifacts = excluded.artifacts,
                       completed_at = excluded.completed_at, lease_id = excluded.lease_id, worker_id = excluded.worker_id RETURNING task_id),
                   n AS (SELECT pg_notify('codeq_result', task_id) FROM r)`
                 : ', n AS (SELECT 1 WHERE false)'}${webhook ? outboxInsertCte(base + 2 + (result ? 9 : 0)) : ''}
               SELECT (SELECT count(*) FROM f) AS changed, (SELECT count(*) FROM n) AS notified`,
        values: [...taskValues(next), prev.version, ...(result ? resultValues(result) : []), ...(webhook ? outboxValues(webhook) : [])],
      });
      return Number((r.rows[0] as Row)['changed']) === 1;
    }
    // A finished task changing again (not produced by the current rules, kept for completeness):
    // rewrite it in place, or move it back to the hot table.
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const gone = await client.query('DELETE FROM codeq_finished WHERE id = $1 AND updated_at = $2', [next.id, prev.task.updatedAtMs]);
      if (gone.rowCount !== 1) {
        await client.query('ROLLBACK');
        return false;
      }
      const table = isTerminal(next.status) ? 'codeq_finished' : 'codeq_tasks';
      const vals = taskValues(next);
      if (newSeq) vals[COLS.indexOf('seq')] = ((await client.query<{ s: number }>(`SELECT nextval('codeq_seq') AS s`)).rows[0]!).s;
      await client.query(`INSERT INTO ${table} (${COL_LIST}) VALUES (${COLS.map((_, i) => `$${i + 1}`).join(', ')})`, vals);
      if (result) {
        await client.query(
          `INSERT INTO codeq_results (task_id, tenant_id, status, result, error, artifacts, completed_at, lease_id, worker_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (task_id) DO UPDATE SET status = excluded.status, result = excluded.result, error = excluded.error, artifacts = excluded.artifacts,
             completed_at = excluded.completed_at, lease_id = excluded.lease_id, worker_id = excluded.worker_id`,
          resultValues(result),
        );
        await client.query(`SELECT pg_notify('codeq_result', $1)`, [next.id]);
      }
      if (webhook) await client.query(PG_OUTBOX_INSERT, outboxValues(webhook));
      if (next.location === 'PENDING_LIST') await client.query(`SELECT pg_notify('codeq_work', $1)`, [`${next.tenantId}:1:${next.commandKey}`]);
      await client.query('COMMIT');
      return true;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  waitForResult(_tenantId: string, id: string, deadlineMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.closed || this.draining || signal?.aborted || this.missedResults.take(id)) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        const s = this.resultWaiters.get(id);
        if (s) {
          s.delete(done);
          if (!s.size) this.resultWaiters.delete(id);
        }
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, Math.min(deadlineMs - Date.now(), FALLBACK_MS)));
      signal?.addEventListener('abort', done, { once: true });
      let s = this.resultWaiters.get(id);
      if (!s) this.resultWaiters.set(id, (s = new Set()));
      s.add(done);
    });
  }

  private wakeResult(id: string): void {
    const s = this.resultWaiters.get(id);
    if (s) for (const w of [...s]) w();
    else this.missedResults.notified(id, 1);
  }

  // ---------------------------------------------------------------------------------------------
  // Maintenance (the replica holding LEADER_LOCK)

  onLeaseExpired(handler: (leases: ExpiredLease[]) => void): void {
    this.leaseHandler = handler;
    if (this.leader) this.armMaintenance(Date.now());
  }

  private armMaintenance(at: number): void {
    if (this.closed || !this.leader || !Number.isFinite(at)) return;
    const when = Math.min(at, Date.now() + MAINTENANCE_MAX_MS);
    if (this.maintenanceTimer && when >= this.maintenanceAt) return;
    if (this.maintenanceTimer) clearTimeout(this.maintenanceTimer);
    this.maintenanceAt = when;
    this.maintenanceTimer = setTimeout(() => {
      this.maintenanceTimer = null;
      this.maintenanceAt = Infinity;
      void this.maintain();
    }, Math.max(0, when - Date.now()));
  }

  private clearMaintenance(): void {
    if (this.maintenanceTimer) clearTimeout(this.maintenanceTimer);
    this.maintenanceTimer = null;
    this.maintenanceAt = Infinity;
  }

  private async maintain(): Promise<void> {
    if (this.maintenanceRunning || this.closed || !this.leader) return;
    this.maintenanceRunning = true;
    let next = Date.now() + MAINTENANCE_MAX_MS;
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
      await this.promoteDue();
      await this.expireLeases();
      const r = await this.pool.query<{ d: number | null; l: number | null }>({
        name: 'codeq_next_due',
        text: `SELECT (SELECT min(visible_at) FROM codeq_tasks WHERE location = 'DELAYED_ZSET') AS d,
                      (SELECT min(lease_until) FROM codeq_tasks WHERE location = 'INPROG_SET') AS l`,
      });
      const d = r.rows[0]?.d;
      const l = r.rows[0]?.l;
      if (d !== null && d !== undefined) next = Math.min(next, Math.floor(d / 1000) * 1000);
      if (l !== null && l !== undefined) next = Math.min(next, l + 1);
    } catch (e) {
      if (!this.closed) this.opts.log?.error({ err: (e as Error).message }, 'maintenance pass failed');
    } finally {
      this.maintenanceRunning = false;
    }
    this.armMaintenance(Math.max(next, Date.now() + 5));
  }

  private async promoteDue(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const now = Date.now();
      const r = await this.pool.query<{ moved: number }>({
        name: 'codeq_promote',
        text: `WITH src AS (
                 UPDATE codeq_tasks SET status = 'PENDING', location = 'PENDING_LIST', worker_id = NULL, lease_id = NULL, lease_until = NULL,
                   visible_at = NULL, updated_at = $2, seq = nextval('codeq_seq'), version = version + 1
                 WHERE id IN (SELECT id FROM codeq_tasks WHERE location = 'DELAYED_ZSET' AND visible_at < $1 ORDER BY visible_at, seq LIMIT 1000 FOR UPDATE SKIP LOCKED)
                 RETURNING tenant_id, command_key, location),
               n AS (${NOTIFY_WORK})
               SELECT (SELECT count(*) FROM src)::int AS moved, (SELECT count(*) FROM n) AS notified`,
        values: [dueCutoff(now), now],
      });
      if ((r.rows[0]?.moved ?? 0) < 1000) return;
    }
  }

  private async expireLeases(): Promise<void> {
    if (!this.leaseHandler) return;
    const now = Date.now();
    for (const [id, at] of this.expiring) if (at < now - 10_000) this.expiring.delete(id);
    const r = await this.pool.query<{ tenant_id: string; id: string; lease_id: string }>({
      name: 'codeq_expired',
      text: `SELECT tenant_id, id, lease_id FROM codeq_tasks WHERE location = 'INPROG_SET' AND lease_until <= $1 ORDER BY lease_until LIMIT 1000`,
      values: [now],
    });
    const leases: ExpiredLease[] = [];
    for (const row of r.rows) {
      const k = `${row.id}\u0000${row.lease_id}`;
      if (this.expiring.has(k)) continue;
      this.expiring.set(k, now);
      leases.push({ tenantId: row.tenant_id, taskId: row.id, leaseId: row.lease_id });
    }
    if (leases.length) this.leaseHandler(leases);
  }

  // ---------------------------------------------------------------------------------------------
  // Counts and retention

  async counts(tenantId: string, commandKey: string): Promise<QueueCounts> {
    const r = await this.pool.query<{ location: string; priority: number; n: number }>({
      name: 'codeq_counts',
      text: `SELECT location, priority, count(*)::int AS n FROM codeq_tasks WHERE tenant_id = $1 AND command_key = $2 GROUP BY location, priority
             UNION ALL SELECT 'DLQ_SET', 0, count(*)::int FROM codeq_finished WHERE tenant_id = $1 AND command_key = $2 AND location = 'DLQ_SET'`,
      values: [tenantId, commandKey],
    });
    const c = emptyCounts();
    for (const row of r.rows) addCount(c, row.location, row.priority, row.n);
    return c;
  }

  async depths(): Promise<QueueDepth[]> {
    const r = await this.pool.query<{ tenant_id: string; command_key: string; command: string; location: string; priority: number; n: number }>({
      name: 'codeq_depths',
      text: `SELECT tenant_id, command_key, min(command) AS command, location, priority, count(*)::int AS n FROM codeq_tasks GROUP BY tenant_id, command_key, location, priority
             UNION ALL SELECT tenant_id, command_key, min(command), 'DLQ_SET', 0, count(*)::int FROM codeq_finished WHERE location = 'DLQ_SET' GROUP BY tenant_id, command_key`,
    });
    const out = new Map<string, QueueDepth>();
    // Queues this replica has seen stay listed (with zeros) once they drain, as on the embedded engine.
    for (const [k, q] of this.knownQueues) out.set(k, { tenantId: q.tenantId, commandKey: q.commandKey, command: q.command, ...emptyCounts() });
    for (const row of r.rows) {
      const k = `${row.tenant_id}\u0000${row.command_key}`;
      let d = out.get(k);
      if (!d) out.set(k, (d = { tenantId: row.tenant_id, commandKey: row.command_key, command: row.command, ...emptyCounts() }));
      if (row.command < d.command) d.command = row.command;
      addCount(d, row.location, row.priority, row.n);
      this.rememberQueue(row.tenant_id, row.command_key, d.command);
    }
    return [...out.values()];
  }

  // ---------------------------------------------------------------------------------------------
  // Operator API

  async list(q: ListQuery): Promise<TaskRecord[]> {
    this.assertOpen();
    const branches = listBranches(q);
    if (!branches.length || q.limit <= 0) return [];
    const { text, values } = listSql(q, branches, listTable, (i) => `$${i}`);
    // Named (prepared once per connection): the few shapes of listing SQL are planned once.
    const r = await this.pool.query<Row>({ name: `codeq_list_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`, text, values });
    return r.rows.map(rowToTask);
  }

  /** EXPLAIN of the listing's SQL (tests check every branch uses an index). */
  async explainList(q: ListQuery): Promise<string[]> {
    const { text, values } = listSql(q, listBranches(q), listTable, (i) => `$${i}`);
    const r = await this.pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`, values);
    return r.rows.map((x) => x['QUERY PLAN']);
  }

  /**
   * One statement (one transaction): dead-lettered rows leave codeq_finished, come back to
   * codeq_tasks ready (attempts 0, error cleared, new seq), their FAILED result is deleted, and
   * waiting workers are notified. Concurrent redrives of the same rows cannot both move them: the
   * DELETE locks each row, and the second finds it gone.
   */
  async redrive(tenantId: string, sel: RedriveSelection, now: number): Promise<TaskRecord[]> {
    this.assertOpen();
    const pick =
      'ids' in sel
        ? `SELECT id FROM codeq_finished WHERE tenant_id = $1 AND location = 'DLQ_SET' AND id = ANY($3::text[]) ORDER BY id FOR UPDATE`
        : `SELECT id FROM codeq_finished WHERE tenant_id = $1 AND command_key = $3 AND location = 'DLQ_SET' ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED`;
    const reset: Record<string, string> = {
      status: `'PENDING'`, location: `'PENDING_LIST'`, worker_id: 'NULL', lease_id: 'NULL', lease_until: 'NULL', attempts: '0', error: 'NULL',
      result_key: 'NULL', visible_at: 'NULL', seq: `nextval('codeq_seq')`, updated_at: '$2::bigint', terminal_at: 'NULL', cancel_requested: '0',
    };
    const r = await this.pool.query<Row>(
      `WITH moved AS (DELETE FROM codeq_finished WHERE id IN (${pick}) RETURNING *),
            src AS (INSERT INTO codeq_tasks (${COL_LIST}) SELECT ${COLS.map((c) => reset[c] ?? `"${c}"`).join(', ')} FROM moved RETURNING ${COL_LIST}),
            r AS (DELETE FROM codeq_results WHERE task_id IN (SELECT id FROM moved)),
            pr AS (DELETE FROM codeq_progress WHERE task_id IN (SELECT id FROM moved)),
            n AS (${NOTIFY_WORK})
       SELECT *, (SELECT count(*) FROM n) AS notified FROM src`,
      'ids' in sel ? [tenantId, now, [...new Set(sel.ids)]] : [tenantId, now, sel.commandKey, sel.limit],
    );
    return r.rows.map(rowToTask).sort((a, b) => a.seq - b.seq);
  }

  // ---------------------------------------------------------------------------------------------
  // Task notes (progress, log lines)

  /**
   * Checked against a read of the task; written by one statement that locks the task row at the
   * version read (a lease change in between makes it write nothing, and the check runs again on
   * a fresh read). The row lock also orders concurrent appends to one task's log.
   */
  async writeNotes(
    tenantId: string,
    id: string,
    guard: (t: TaskRecord | null) => TaskRecord,
    notes: { progress?: string; logs?: readonly LogLineInput[]; maxLines: number },
    now: number,
  ): Promise<void> {
    this.assertOpen();
    const logs = notes.logs ?? [];
    for (let attempt = 0; attempt < 20; attempt++) {
      const f = await this.fetch(id);
      const current = f && f.task.tenantId === tenantId ? f : null;
      const t = guard(current ? { ...current.task } : null);
      const r = await this.pool.query<{ ok: number }>({
        name: 'codeq_notes',
        text: `WITH t AS (SELECT id FROM codeq_tasks WHERE id = $1 AND version = $2 FOR NO KEY UPDATE),
               p AS (INSERT INTO codeq_progress (task_id, tenant_id, attempt, progress, updated_at)
                     SELECT $1, $3, $4, $5::text, $6 FROM t WHERE $5::text IS NOT NULL
                     ON CONFLICT (task_id) DO UPDATE SET attempt = excluded.attempt, progress = excluded.progress, updated_at = excluded.updated_at),
               base AS (SELECT coalesce(max(n), 0) AS n FROM codeq_logs WHERE task_id = $1),
               l AS (INSERT INTO codeq_logs (task_id, n, tenant_id, attempt, level, message, at)
                     SELECT $1, base.n + u.ord, $3, $4, u.level, u.message, u.at
                     FROM t, base, unnest($7::text[], $8::text[], $9::bigint[]) WITH ORDINALITY AS u(level, message, at, ord)),
               d AS (DELETE FROM codeq_logs WHERE task_id = $1 AND EXISTS (SELECT 1 FROM t) AND n <= (SELECT n FROM base) + $10 - $11)
               SELECT count(*)::int AS ok FROM t`,
        values: [
          id, current!.version, t.tenantId, t.attempts, notes.progress ?? null, now,
          logs.map((l) => l.level), logs.map((l) => l.message), logs.map((l) => l.atMs), logs.length, notes.maxLines,
        ],
      });
      if (r.rows[0]?.ok === 1) return;
      this.recent.delete(id);
    }
    throw new Error(`task ${id} is changing too fast to update`);
  }

  async progress(tenantId: string, id: string): Promise<ProgressRecord | null> {
    const r = await this.pool.query<Row>({ name: 'codeq_progress_get', text: 'SELECT * FROM codeq_progress WHERE task_id = $1', values: [id] });
    const row = r.rows[0];
    if (!row || row['tenant_id'] !== tenantId) return null;
    return { value: row['progress'] as string, attempt: row['attempt'] as number, updatedAtMs: Number(row['updated_at']) };
  }

  async logs(tenantId: string, id: string, afterN: number, limit: number): Promise<LogLine[]> {
    const r = await this.pool.query<Row>({
      name: 'codeq_logs_get',
      text: 'SELECT * FROM codeq_logs WHERE task_id = $1 AND tenant_id = $2 AND n > $3 ORDER BY n LIMIT $4',
      values: [id, tenantId, afterN, limit],
    });
    return r.rows.map((row) => ({ n: row['n'] as number, attempt: row['attempt'] as number, level: row['level'] as LogLine['level'], message: row['message'] as string, atMs: Number(row['at']) }));
  }

  /** Stored in codeq_paused, which every replica's claim statement checks; resume notifies codeq_work. */
  async setPaused(tenantId: string, commandKey: string, command: string, paused: boolean): Promise<void> {
    this.assertOpen();
    this.rememberQueue(tenantId, commandKey, command);
    if (paused) {
      await this.pool.query(`INSERT INTO codeq_paused (tenant_id, command_key, command, paused_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, [tenantId, commandKey, command, Date.now()]);
    } else {
      // Wake every parked claimer of the command on every replica (they claim again).
      await this.pool.query(
        `WITH gone AS (DELETE FROM codeq_paused WHERE tenant_id = $1 AND command_key = $2 RETURNING tenant_id, command_key)
         SELECT pg_notify('codeq_work', tenant_id || ':1000000:' || command_key) FROM gone`,
        [tenantId, commandKey],
      );
    }
  }

  async pausedCommands(tenantId?: string): Promise<PausedCommand[]> {
    const r = await this.pool.query<{ tenant_id: string; command_key: string; command: string }>(
      tenantId === undefined ? `SELECT tenant_id, command_key, command FROM codeq_paused` : `SELECT tenant_id, command_key, command FROM codeq_paused WHERE tenant_id = $1`,
      tenantId === undefined ? [] : [tenantId],
    );
    return r.rows.map((x) => ({ tenantId: x.tenant_id, commandKey: x.command_key, command: x.command }));
  }

  /**
   * Deletes finished tasks, their results and idempotency keys. The server-wide sweep (no tenant)
   * runs on the maintenance replica only; a tenant's admin cleanup runs wherever it arrives.
   */
  async purgeTerminal(terminalBeforeMs: number, limit: number, tenantId?: string): Promise<number> {
    this.assertOpen();
    if (tenantId === undefined && !this.leader) return 0;
    const r = await this.pool.query<{ n: number }>({
      name: tenantId === undefined ? 'codeq_purge' : 'codeq_purge_tenant',
      text: `WITH gone AS (
               DELETE FROM codeq_finished WHERE id IN (
                 SELECT id FROM codeq_finished WHERE terminal_at <= $1 ${tenantId === undefined ? '' : 'AND tenant_id = $3'}
                 ORDER BY terminal_at LIMIT $2 FOR UPDATE SKIP LOCKED)
               RETURNING id, tenant_id, idempotency_key),
             r AS (DELETE FROM codeq_results WHERE task_id IN (SELECT id FROM gone)),
             k AS (DELETE FROM codeq_idempotency i USING gone WHERE i.tenant_id = gone.tenant_id AND i.key = gone.idempotency_key AND i.task_id = gone.id),
             pr AS (DELETE FROM codeq_progress WHERE task_id IN (SELECT id FROM gone)),
             lg AS (DELETE FROM codeq_logs WHERE task_id IN (SELECT id FROM gone))
             SELECT count(*)::int AS n FROM gone`,
      values: tenantId === undefined ? [terminalBeforeMs, limit] : [terminalBeforeMs, limit, tenantId],
    });
    return r.rows[0]?.n ?? 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Topic catalog: a memory copy on every replica, reloaded on NOTIFY codeq_topics.

  private async loadTopics(): Promise<void> {
    const r = await this.pool.query<Row>('SELECT * FROM codeq_topics');
    const m = new Map<string, Topic>();
    for (const row of r.rows) {
      m.set(row['topic_id'] as string, {
        topicId: row['topic_id'] as string,
        tenantId: row['tenant_id'] as string,
        topicName: row['topic_name'] as string,
        policy: JSON.parse(row['policy'] as string) as Topic['policy'],
        version: row['version'] as number,
        createdAtMs: row['created_at'] as number,
        updatedAtMs: row['updated_at'] as number,
      });
    }
    this.topicCache = m;
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
    return {
      get: (tenantId, name) => this.topicCache.get(`${tenantId}.${name}`) ?? null,
      all: () => [...this.topicCache.values()],
      put: async (t) => {
        await this.pool.query(
          `WITH w AS (INSERT INTO codeq_topics (topic_id, tenant_id, topic_name, policy, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (topic_id) DO UPDATE SET policy = excluded.policy, version = excluded.version, updated_at = excluded.updated_at RETURNING topic_id)
           SELECT pg_notify('codeq_topics', topic_id) FROM w`,
          [t.topicId, t.tenantId, t.topicName, JSON.stringify(t.policy), t.version, t.createdAtMs, t.updatedAtMs],
        );
        this.topicCache.set(t.topicId, t);
      },
      delete: async (tenantId, name) => {
        await this.pool.query(`WITH w AS (DELETE FROM codeq_topics WHERE topic_id = $1 RETURNING topic_id) SELECT pg_notify('codeq_topics', topic_id) FROM w`, [`${tenantId}.${name}`]);
        this.topicCache.delete(`${tenantId}.${name}`);
      },
    };
  }
}

/** Live statuses are in codeq_tasks, terminal ones in codeq_finished: each listing branch reads one table. */
function listTable(b: ListBranch): string {
  return b.status === 'PENDING' || b.status === 'IN_PROGRESS' ? 'codeq_tasks' : 'codeq_finished';
}

const PROBE: TaskRecord = {
  id: '', tenantId: '', command: '', commandKey: '', payload: '', priority: 0, webhook: null, status: 'PENDING', location: 'PENDING_LIST',
  workerId: null, leaseId: null, leaseUntilMs: null, attempts: 0, maxAttempts: 1, error: null, resultKey: null, idempotencyKey: null,
  visibleAtMs: null, seq: 0, createdAtMs: 0, updatedAtMs: 0, terminalAtMs: null, lastError: null, cancelRequested: false,
};

function emptyCounts(): QueueCounts {
  return { readyByPriority: new Array<number>(MAX_PRIORITY + 1).fill(0), delayed: 0, inProgress: 0, dlq: 0 };
}

function addCount(c: QueueCounts, location: string, priority: number, n: number): void {
  if (location === 'PENDING_LIST') c.readyByPriority[priority] = (c.readyByPriority[priority] ?? 0) + n;
  else if (location === 'DELAYED_ZSET') c.delayed += n;
  else if (location === 'INPROG_SET') c.inProgress += n;
  else if (location === 'DLQ_SET') c.dlq += n;
}
