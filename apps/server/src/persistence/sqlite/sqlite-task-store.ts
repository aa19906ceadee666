/**
 * The embedded engine (architecture §3.1): SQLite through TypeORM (schema + migrations) and
 * prepared statements on the same better-sqlite3 connection (hot path), with
 *  - group commit: every change marks records dirty; once per event-loop turn the changed rows are
 *    handed to a writer thread (writer-thread.cjs) that commits them in one transaction, and every
 *    caller of that turn is answered after that commit. Commits run on another core, in order;
 *  - one process per data directory: an exclusive lock on `codeq.lock`, released by the kernel
 *    when the process dies;
 *  - memory indexes rebuilt at start: ready FIFOs per (tenant, command, priority), a heap of
 *    delayed tasks and a heap of leases, each with one timer; long-poll waiters woken directly;
 *  - memory holds only what ordering, routing and expiry need (issue 12 item 6): a MemTask per
 *    live task (id, tenant, command, priority, location, seq, due time, lease id). Payloads,
 *    webhook URLs, error texts and every other column stay on disk: a record is read back by id
 *    when it is handed out or changed (one statement for a whole claim batch); results are never
 *    held. Uncommitted records are full and are read from the dirty / in-flight batches.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import { DataSource } from 'typeorm';
import type {
  CreateOutcome,
  ExpiredLease,
  ListQuery,
  PausedCommand,
  QueueCounts,
  RedriveSelection,
  QueueDepth,
  TaskStore,
  TransitionFn,
} from '../../domain/task-store.js';
import { isTerminal, LOCATIONS, MAX_PRIORITY, type Location, type ResultRecord, type TaskRecord } from '../../domain/task.js';
import { Alarm, Deque, MinHeap } from '../structures.js';
import { nextCommand } from '../round-robin.js';
import { TASK_COLUMNS, rowToResult, rowToTask, taskValues, type Row } from '../rows.js';
import { MetaEntity, PausedCommandEntity, ResultEntity, TaskEntity, TopicEntity } from './entities.js';
import { OperatorApi1764500000000 } from './migrations/1764500000000-operator-api.js';
import { TraceContext1764630000000 } from './migrations/1764630000000-trace-context.js';
import { listBranches, listSql } from '../list-sql.js';
import { redriveTask } from '../../domain/rules.js';
import { InitialSchema1764300000000 } from './migrations/1764300000000-initial-schema.js';
import { Topics1764310000000 } from './migrations/1764310000000-topics.js';
import { TaskNotes1764600000000 } from './migrations/1764600000000-task-notes.js';
import type { LogLine, LogLineInput, ProgressRecord } from '../../domain/task-notes.js';
import { Schedules1764610000000 } from './migrations/1764610000000-schedules.js';
import { SqliteScheduleStore } from './sqlite-schedule-store.js';
import { WebhookOutbox1764620000000 } from './migrations/1764620000000-webhook-outbox.js';
import { OutboxBatch, SQLITE_OUTBOX_INSERT, SqliteWebhookOutbox } from './sqlite-webhook-outbox.js';
import type { ScheduleStore } from '../../domain/schedule.js';
import type { Topic, TopicStore } from '../../domain/topic.js';
import { CodeqError } from '@codeq/proto/errors';

/**
 * What memory keeps of a live (non-terminal) task: enough to order, route and expire it (issue 12
 * item 6). Everything else is read from the database by id when the task is handed out or changed.
 * Index entries (ready FIFOs, heaps) point at the MemTask they were made for: a replaced one makes
 * them stale.
 */
interface MemTask {
  id: string;
  tenantId: string;
  commandKey: string;
  command: string;
  priority: number;
  location: Location;
  /** FIFO position in the ready index (ties in the heaps). */
  seq: number;
  /** Due time: visible_at of a delayed task, lease_until of a leased one, else 0. */
  at: number;
  leaseId: string | null;
}

/** Columns loaded into MemTasks at start-up, in the order read (raw rows). */
const MEM_COLUMNS = ['id', 'tenant_id', 'command_key', 'command', 'priority', 'location', 'seq', 'visible_at', 'lease_until', 'lease_id'] as const;
/** One canonical string per location, so a million MemTasks share them. */
const LOCATION_OF = new Map<string, Location>(LOCATIONS.map((l) => [l, l]));

function dueOf(t: { location: Location; visibleAtMs: number | null; leaseUntilMs: number | null }): number {
  if (t.location === 'DELAYED_ZSET') return t.visibleAtMs ?? 0;
  if (t.location === 'INPROG_SET') return t.leaseUntilMs ?? 0;
  return 0;
}

/** Pause between attempts to recover from a failed commit (ADR 0005). */
const RECOVERY_RETRY_MS = 250;

/** The answer to every request while the engine refuses writes after a failed commit. */
function storageUnavailable(reason: string): CodeqError {
  return new CodeqError('UNAVAILABLE', `storage unavailable: ${reason}; retry later`);
}

export interface SqliteStoreOptions {
  /** Directory holding the database files (created if missing). */
  path: string;
  /** fsync every group commit (synchronous=FULL) instead of WAL-NORMAL. */
  fsyncOnCommit: boolean;
  /**
   * Most idempotency keys kept in memory (LRU; a miss reads the database). Default 100,000. A key
   * is looked up in memory before its insert is committed, so the cap must exceed the keys created
   * within one commit (≤ a few thousand in practice).
   */
  idempotencyCacheSize?: number;
  /** Logger for engine events. */
  log?: { info(obj: object, msg: string): void; error(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

interface Dirty {
  rec: TaskRecord | null;
  /** Not in the database yet: INSERT instead of UPDATE. */
  insert: boolean;
}

interface Waiter {
  done: boolean;
  resolve: () => void;
  /** Queues this waiter is parked on (it leaves all of them when it settles). */
  queues: Queue[];
}

interface Queue extends QueueCounts {
  /** False while the queue exists only because a worker waits on it. */
  named: boolean;
  tenantId: string;
  commandKey: string;
  command: string;
  ready: Deque<MemTask>[];
  /** Parked long-polls, oldest first; a waiter leaves as soon as it settles (issue 12 item 7). */
  waiters: Set<Waiter>;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Columns a transition can change (identity, command, payload and creation never change). */
const MUTABLE_COLUMNS = [
  'status', 'location', 'worker_id', 'lease_id', 'lease_until', 'attempts', 'error', 'result_key',
  'visible_at', 'seq', 'updated_at', 'terminal_at', 'last_error', 'cancel_requested',
] as const;

function updateParams(t: TaskRecord): unknown[] {
  return [
    t.status, t.location, t.workerId, t.leaseId, t.leaseUntilMs, t.attempts, t.error, t.resultKey,
    t.visibleAtMs, t.seq, t.updatedAtMs, t.terminalAtMs, t.lastError, t.cancelRequested ? 1 : 0, t.id,
  ];
}

/** Raised when the data directory is owned by another process. */
export class StoreLockedError extends Error {}

/** Batches handed to the writer thread at once; later changes wait and join the next batch. */
const MAX_INFLIGHT_COMMITS = 1;

export class SqliteTaskStore implements TaskStore {
  private ds: DataSource | null = null;
  /** Main-thread connection: migrations and reads of rows not held in memory. */
  private db!: BetterSqlite3.Database;
  private lockDb: BetterSqlite3.Database | null = null;
  private writer: Worker | null = null;
  private batchId = 0;
  /** Batches handed to the writer, oldest first, until their commit is acknowledged. */
  private inflight: { id: number; tasks: Map<string, Dirty>; results: Map<string, ResultRecord | null>; done: Deferred; after: (() => void)[] }[] = [];
  private lastCommit: Promise<void> = Promise.resolve();
  private stmts!: {
    getTask: BetterSqlite3.Statement;
    getResult: BetterSqlite3.Statement;
    findIdempotent: BetterSqlite3.Statement;
    expiredTerminal: BetterSqlite3.Statement;
    expiredTerminalOfTenant: BetterSqlite3.Statement;
    getProgress: BetterSqlite3.Statement;
    getLogs: BetterSqlite3.Statement;
    getTasks: BetterSqlite3.Statement;
  };

  /** Non-terminal tasks: only their MemTask (issue 12 item 6). */
  private readonly live = new Map<string, MemTask>();
  /** Records changed since the last commit (null = delete). */
  private dirty = new Map<string, Dirty>();
  private dirtyResults = new Map<string, ResultRecord | null>();
  /** Task notes written since the last commit (only until committed: never indexed in memory). */
  private dirtyNotes: NotesBatch = emptyNotes();
  /** Result-webhook deliveries to insert with the next group commit (ADR 0012). */
  private readonly outboxBatch = new OutboxBatch();
  /** Per tenant, the command the last claimed task came from (round-robin across commands). */
  private readonly lastServed = new Map<string, string>();
  private batch: Deferred | null = null;
  private flushScheduled = false;
  private afterCommit: (() => void)[] = [];
  /** (tenant \0 key) → task id, most recently used last (LRU, issue 12 item 8); misses fall back to the database. */
  private readonly idempotency = new Map<string, string>();
  private readonly queues = new Map<string, Queue>();
  private readonly delayed = new MinHeap();
  private readonly leases = new MinHeap();
  private readonly delayAlarm = new Alarm(() => this.promoteDue());
  private readonly leaseAlarm = new Alarm(() => this.expireLeases());
  private readonly resultWaiters = new Map<string, Set<() => void>>();
  /** Paused commands (queue key → spelling), a copy of table paused_commands. */
  private readonly paused = new Map<string, PausedCommand>();
  private leaseHandler: ((leases: ExpiredLease[]) => void) | null = null;
  private seqCounter = 0;
  private ok = false;
  private closed = false;
  private draining = false;
  /** Set by a failed commit or a dead writer: writes and reads are refused until reloaded (ADR 0005). */
  private failed: string | null = null;
  private recovering = false;
  private file = '';

  constructor(private readonly opts: SqliteStoreOptions) {}

  async open(): Promise<void> {
    mkdirSync(this.opts.path, { recursive: true, mode: 0o700 });
    this.lock();
    const file = join(this.opts.path, 'codeq.db');
    const ds = new DataSource({
      type: 'better-sqlite3',
      database: file,
      entities: [TaskEntity, ResultEntity, MetaEntity, TopicEntity, PausedCommandEntity],
      migrations: [InitialSchema1764300000000, Topics1764310000000, OperatorApi1764500000000, TaskNotes1764600000000, Schedules1764610000000, WebhookOutbox1764620000000, TraceContext1764630000000],
      migrationsTableName: 'migrations',
      synchronize: false,
      logging: false,
      enableWAL: true,
      timeout: 5000,
    });
    try {
      await ds.initialize();
      this.ds = ds;
      this.db = (ds.driver as unknown as { databaseConnection: BetterSqlite3.Database }).databaseConnection;
      this.db.pragma('temp_store = MEMORY');
      this.db.pragma('cache_size = -65536');
      await ds.runMigrations({ transaction: 'all' });
      this.db.prepare(`INSERT INTO meta(key, value) VALUES ('opened_at', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`).run(String(Date.now()));
      this.prepare();
      this.load();
      this.file = file;
      await this.startWriter(file);
    } catch (e) {
      this.closed = true;
      if (ds.isInitialized) await ds.destroy().catch(() => undefined);
      this.unlock();
      throw e;
    }
    this.ok = true;
  }

  /** Exclusive ownership of the directory; the kernel releases it if the process dies. */
  private lock(): void {
    const db = new Database(join(this.opts.path, 'codeq.lock'), { timeout: 0 });
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = DELETE');
      db.prepare('CREATE TABLE IF NOT EXISTS owner (pid INTEGER, started_at INTEGER)').run();
      db.prepare('DELETE FROM owner').run();
      db.prepare('INSERT INTO owner (pid, started_at) VALUES (?, ?)').run(process.pid, Date.now());
    } catch (e) {
      db.close();
      const msg = e instanceof Error ? e.message : String(e);
      if (/locked|busy/i.test(msg)) throw new StoreLockedError(`data directory ${this.opts.path} is in use by another codeQ process (database is locked)`);
      throw e;
    }
    this.lockDb = db;
  }

  private unlock(): void {
    this.lockDb?.close();
    this.lockDb = null;
  }

  private startWriter(file: string): Promise<void> {
    const worker = new Worker(new URL('./writer-thread.cjs', import.meta.url), {
      workerData: { file, fsyncOnCommit: this.opts.fsyncOnCommit, taskColumns: TASK_COLUMNS, mutableColumns: MUTABLE_COLUMNS, outboxInsert: SQLITE_OUTBOX_INSERT },
    });
    this.writer = worker;
    return new Promise<void>((resolve, reject) => {
      let started = false;
      const died = (reason: string) => {
        if (this.writer !== worker) return; // replaced or closed on purpose
        this.writer = null;
        this.writerDied(reason);
        if (!started) reject(new Error(reason));
      };
      worker.on('error', (e: Error) => died(`writer thread failed: ${e.message}`));
      worker.on('exit', (code) => died(`writer thread exited (code ${code})`));
      worker.on('message', (m: { type: string; id?: number; error?: string }) => {
        if (m.type === 'ready') {
          started = true;
          resolve();
        } else if (m.type === 'ack') this.acknowledge(m.id ?? -1, m.error);
        else if (m.type === 'reset') this.resetDone?.(m.error);
      });
    });
  }

  /** The writer thread is gone: nothing in flight can be committed any more; answer it at once. */
  private writerDied(reason: string): void {
    if (this.closed) return;
    this.fail(reason);
    for (const b of this.inflight.splice(0)) b.done.reject(storageUnavailable(reason));
    this.resetDone?.(reason);
  }

  /**
   * A commit failed or the writer died: memory may be ahead of the disk, so stop acknowledging
   * (every write and read answers UNAVAILABLE, /readyz 503) and reload from disk (ADR 0005).
   */
  private fail(reason: string): void {
    this.ok = false;
    if (!this.failed) this.opts.log?.error({ err: reason }, 'storage write failed; refusing requests until reloaded from disk');
    this.failed ??= reason;
    void this.recover();
  }

  private resetDone: ((error: string | undefined) => void) | null = null;

  /** Retry until the writer can take the write lock again, then rebuild memory from disk. */
  private async recover(): Promise<void> {
    if (this.recovering) return;
    this.recovering = true;
    try {
      while (!this.closed && this.failed) {
        await new Promise((r) => setTimeout(r, RECOVERY_RETRY_MS));
        if (this.closed) return;
        // Wait until every batch of the failed state has been answered.
        if (this.inflight.length || this.batch) continue;
        try {
          if (!this.writer) await this.startWriter(this.file);
          const w = this.writer;
          if (!w || this.closed) continue;
          const error = await new Promise<string | undefined>((resolve) => {
            this.resetDone = resolve;
            w.postMessage({ type: 'reset' });
          });
          this.resetDone = null;
          if (error) throw new Error(error);
          if (this.closed) return;
          this.reload();
          this.opts.log?.warn({ reason: this.failed }, 'storage reloaded from disk after a failed write; serving again');
          this.failed = null;
          this.ok = true;
        } catch (e) {
          this.resetDone = null;
          this.opts.log?.warn({ err: (e as Error).message }, 'storage still failing; retrying');
        }
      }
    } finally {
      this.recovering = false;
    }
  }

  /** Forget every memory index and rebuild them from the database (the state on disk wins). */
  private reload(): void {
    this.delayAlarm.clear();
    this.leaseAlarm.clear();
    for (const q of this.queues.values()) this.wakeAll(q);
    this.queues.clear();
    this.live.clear();
    this.idempotency.clear();
    this.delayed.clear();
    this.leases.clear();
    this.dirty = new Map();
    this.dirtyResults = new Map();
    this.dirtyNotes = emptyNotes();
    this.outboxBatch.take();
    this.afterCommit = [];
    this.topicCache = null;
    this.lastCommit = Promise.resolve();
    this.load();
  }

  /** The writer committed batch `id` (in order). */
  private acknowledge(id: number, error: string | undefined): void {
    const b = this.inflight[0];
    if (!b || b.id !== id) return;
    this.inflight.shift();
    // The changes gathered while this batch was being written go out now, as one batch.
    if (this.batch && !this.flushScheduled) this.flush();
    if (error) {
      // The memory state is ahead of the disk now: stop serving rather than acknowledge lies.
      this.fail(`commit failed: ${error}`);
      b.done.reject(storageUnavailable('a commit failed'));
      return;
    }
    b.done.resolve();
    for (const f of b.after) f();
  }

  private prepare(): void {
    this.stmts = {
      getTask: this.db.prepare(`SELECT * FROM tasks WHERE id = ?`),
      getResult: this.db.prepare(`SELECT * FROM results WHERE task_id = ?`),
      findIdempotent: this.db.prepare(`SELECT id FROM tasks WHERE tenant_id = ? AND idempotency_key = ?`),
      expiredTerminal: this.db.prepare(`SELECT id FROM tasks WHERE terminal_at IS NOT NULL AND terminal_at <= ? ORDER BY terminal_at LIMIT ?`),
      expiredTerminalOfTenant: this.db.prepare(`SELECT id FROM tasks WHERE terminal_at IS NOT NULL AND terminal_at <= ? AND tenant_id = ? ORDER BY terminal_at LIMIT ?`),
      getProgress: this.db.prepare(`SELECT * FROM task_progress WHERE task_id = ?`),
      getLogs: this.db.prepare(`SELECT * FROM task_logs WHERE task_id = ? AND tenant_id = ? AND n > ? ORDER BY n LIMIT ?`),
      // One statement for a whole claim batch: the ids travel as one JSON array.
      getTasks: this.db.prepare(`SELECT ${TASK_COLUMNS.map((c) => `"${c}"`).join(', ')} FROM tasks WHERE id IN (SELECT value FROM json_each(?))`),
    };
  }

  /** Rebuild the memory indexes from the database. */
  private load(): void {
    const started = Date.now();
    // The scans below read many pages once: a small page cache for them, so those pages do not
    // stay in memory (restored at the end).
    const cacheSize = this.db.pragma('cache_size', { simple: true }) as number;
    this.db.pragma('cache_size = -2048');
    // `seq` orders only live tasks (a task entering a ready index gets a new one): their maximum
    // is enough, and the partial index answers it without a scan of finished tasks.
    const max = this.db.prepare(`SELECT max(seq) AS m FROM tasks WHERE terminal_at IS NULL`).get() as { m: number | null };
    this.seqCounter = max.m ?? 0;
    let n = 0;
    const cols = MEM_COLUMNS.map((c) => `"${c}"`).join(', ');
    const rows = this.db.prepare(`SELECT ${cols} FROM tasks WHERE terminal_at IS NULL ORDER BY seq`).raw(true);
    // Queues by tenant then command key: no key string is built per row.
    const byTenant = new Map<string, Map<string, Queue>>();
    for (const r of rows.iterate() as IterableIterator<unknown[]>) {
      const [id, tenantId, commandKey, command, priority, location, seq, visibleAt, leaseUntil, leaseId] = r as [string, string, string, string, number, string, number, number | null, number | null, string | null];
      // Rows of one queue share its strings.
      let qs = byTenant.get(tenantId);
      if (!qs) byTenant.set(tenantId, (qs = new Map<string, Queue>()));
      let q = qs.get(commandKey);
      if (!q) qs.set(commandKey, (q = this.queue(tenantId, commandKey, command)));
      const loc = LOCATION_OF.get(location) ?? 'NONE';
      const m: MemTask = {
        id, tenantId: q.tenantId, commandKey: q.commandKey, command: command === q.command ? q.command : command, priority, location: loc, seq,
        at: loc === 'DELAYED_ZSET' ? (visibleAt ?? 0) : loc === 'INPROG_SET' ? (leaseUntil ?? 0) : 0, leaseId,
      };
      this.live.set(id, m);
      this.index(m, false, q);
      n++;
    }
    const dlq = this.db
      .prepare(`SELECT tenant_id, command_key, min(command) AS command, count(*) AS n FROM tasks WHERE location = 'DLQ_SET' GROUP BY tenant_id, command_key`)
      .all() as { tenant_id: string; command_key: string; command: string; n: number }[];
    for (const d of dlq) this.queue(d.tenant_id, d.command_key, d.command).dlq += d.n;
    for (const r of this.db.prepare(`SELECT tenant_id, command_key, command FROM paused_commands`).all() as { tenant_id: string; command_key: string; command: string }[]) {
      this.paused.set(this.queueKey(r.tenant_id, r.command_key), { tenantId: r.tenant_id, commandKey: r.command_key, command: r.command });
    }
    this.db.pragma(`cache_size = ${cacheSize}`);
    this.db.pragma('shrink_memory');
    this.opts.log?.info({ liveTasks: n, ms: Date.now() - started, path: this.opts.path }, 'embedded store opened');
    this.armAlarms();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.delayAlarm.clear();
    this.leaseAlarm.clear();
    if (this.dirty.size || this.dirtyResults.size || this.dirtyNotes.count) {
      this.commit().catch(() => undefined);
      this.flush(true);
    }
    this.closed = true;
    await this.lastCommit.catch(() => undefined);
    for (const q of this.queues.values()) this.wakeAll(q);
    for (const set of this.resultWaiters.values()) for (const w of set) w();
    this.ok = false;
    const w = this.writer;
    this.writer = null;
    if (w) {
      await new Promise<void>((resolve) => {
        w.once('exit', () => resolve());
        w.on('message', (m: { type: string }) => {
          if (m.type === 'closed') void w.terminate();
        });
        w.postMessage({ type: 'close' });
      });
    }
    if (this.ds?.isInitialized) await this.ds.destroy();
    this.unlock();
  }

  healthy(): boolean {
    return this.ok && !this.failed && !this.closed && !this.draining;
  }

  drain(): void {
    this.draining = true;
    for (const q of this.queues.values()) this.wakeAll(q);
    for (const set of [...this.resultWaiters.values()]) for (const w of [...set]) w();
  }

  // ---------------------------------------------------------------------------------------------
  // Group commit

  private markDirty(t: TaskRecord, insert: boolean): void {
    if (typeof t.payload !== 'string') throw new Error(`internal: partial record ${t.id} marked for writing`);
    const d = this.dirty.get(t.id);
    if (d) d.rec = t;
    else this.dirty.set(t.id, { rec: t, insert });
  }

  /** Promise of the commit that will contain every change made so far. */
  private commit(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    if (!this.batch) {
      this.batch = deferred();
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
    return this.batch.promise;
  }

  /**
   * Hand every change of this turn to the writer; callers are answered on its acknowledgement.
   * While MAX_INFLIGHT_COMMITS batches are being written, changes keep gathering and go out
   * together on the next acknowledgement (bigger batches exactly when the writer is the
   * bottleneck: fsync on commit, a WAL checkpoint, a loaded disk; fewer thread hand-offs).
   */
  private flush(force = false): void {
    const b = this.batch;
    if (!b) return;
    if (!force && this.writer && this.inflight.length >= MAX_INFLIGHT_COMMITS) return;
    this.batch = null;
    const tasks = this.dirty;
    const results = this.dirtyResults;
    const after = this.afterCommit;
    const notes = this.dirtyNotes;
    const outbox = this.outboxBatch.take();
    this.dirty = new Map();
    this.dirtyResults = new Map();
    this.dirtyNotes = emptyNotes();
    this.afterCommit = [];
    if (!this.writer) {
      b.reject(this.failed ? storageUnavailable(this.failed) : new Error('store is closed'));
      return;
    }
    const msg = {
      type: 'batch', id: ++this.batchId, inserts: [] as unknown[][], updates: [] as unknown[][], deletes: [] as string[], results: [] as unknown[][], resultDeletes: [] as string[],
      progress: notes.progress, progressDeletes: notes.progressDeletes, logs: notes.logs, outbox,
    };
    for (const [id, d] of tasks) {
      if (!d.rec) msg.deletes.push(id);
      else if (d.insert) msg.inserts.push(taskValues(d.rec));
      else msg.updates.push(updateParams(d.rec));
    }
    for (const [id, r] of results) {
      if (r) msg.results.push([r.taskId, r.tenantId, r.status, r.result, r.error, r.artifacts ? JSON.stringify(r.artifacts) : null, r.completedAtMs, r.leaseId, r.workerId]);
      else msg.resultDeletes.push(id);
    }
    this.inflight.push({ id: msg.id, tasks, results, done: b, after });
    this.lastCommit = b.promise;
    this.writer.postMessage(msg);
  }

  private nextSeq(): number {
    return ++this.seqCounter;
  }

  // ---------------------------------------------------------------------------------------------
  // Indexes

  private queueKey(tenantId: string, commandKey: string): string {
    return `${tenantId}\u0000${commandKey}`;
  }

  private queue(tenantId: string, commandKey: string, command: string): Queue {
    const key = this.queueKey(tenantId, commandKey);
    let q = this.queues.get(key);
    if (!q) {
      q = {
        named: false,
        tenantId,
        commandKey,
        command,
        ready: Array.from({ length: MAX_PRIORITY + 1 }, () => new Deque<MemTask>()),
        readyByPriority: new Array<number>(MAX_PRIORITY + 1).fill(0),
        delayed: 0,
        inProgress: 0,
        dlq: 0,
        waiters: new Set<Waiter>(),
      };
      this.queues.set(key, q);
    }
    return q;
  }

  /** Account for `t` in the indexes of its current location (and push its index entry). */
  private index(t: MemTask, wake = true, queue?: Queue): void {
    const q = queue ?? this.queue(t.tenantId, t.commandKey, t.command);
    if (!q.named) {
      q.named = true;
      q.command = t.command;
    }
    switch (t.location) {
      case 'PENDING_LIST':
        q.ready[t.priority]!.push(t);
        q.readyByPriority[t.priority]!++;
        if (wake) this.wakeOne(q);
        break;
      case 'DELAYED_ZSET':
        q.delayed++;
        this.delayed.push({ at: dueAt(t.at), id: t.id, seq: t.seq, ref: t });
        if (!wake) break;
        this.delayAlarm.armAt(dueAt(t.at));
        break;
      case 'INPROG_SET':
        q.inProgress++;
        this.leases.push({ at: t.at, id: t.id, seq: t.seq, ref: t });
        if (!wake) break;
        this.leaseAlarm.armAt(t.at);
        break;
      case 'DLQ_SET':
        q.dlq++;
        break;
      case 'NONE':
        break;
    }
  }

  /** Remove `t` from the counters of its location (index entries are invalidated lazily by seq). */
  private unindex(t: Pick<MemTask, 'tenantId' | 'commandKey' | 'command' | 'location' | 'priority'>): void {
    const q = this.queue(t.tenantId, t.commandKey, t.command);
    if (!q.named) {
      q.named = true;
      q.command = t.command;
    }
    switch (t.location) {
      case 'PENDING_LIST':
        q.readyByPriority[t.priority]!--;
        break;
      case 'DELAYED_ZSET':
        q.delayed--;
        break;
      case 'INPROG_SET':
        q.inProgress--;
        break;
      case 'DLQ_SET':
        q.dlq--;
        break;
      case 'NONE':
        break;
    }
  }

  private armAlarms(): void {
    const d = this.delayed.peek();
    if (d) this.delayAlarm.armAt(d.at);
    const l = this.leases.peek();
    if (l) this.leaseAlarm.armAt(l.at);
  }

  /** Replace a record with its next state, keeping indexes, counters and the dirty set right. */
  private applyChange(prev: TaskRecord | null, next: TaskRecord): void {
    if (prev && !isTerminal(prev.status)) this.unindex(prev);
    if (prev && isTerminal(prev.status) && prev.location === 'DLQ_SET') this.unindex(prev);
    if (!isTerminal(next.status)) {
      // `seq` is the FIFO position in the ready index; only entering it assigns a new one.
      if (next.location === 'PENDING_LIST' || next.location === 'DELAYED_ZSET') next.seq = this.nextSeq();
    }
    // Memory keeps the MemTask; the full record waits in the dirty set until it is committed.
    const mem = this.memOf(next);
    if (!isTerminal(next.status)) this.live.set(next.id, mem);
    else this.live.delete(next.id);
    this.index(mem);
    this.markDirty(next, prev === null);
    if (isTerminal(next.status)) this.dropQueueOf(next);
  }

  /** The MemTask of a record, sharing tenant and command strings with its queue. */
  private memOf(t: TaskRecord): MemTask {
    const q = this.queue(t.tenantId, t.commandKey, t.command);
    return {
      id: t.id, tenantId: q.tenantId, commandKey: q.commandKey, command: t.command === q.command ? q.command : t.command,
      priority: t.priority, location: t.location, seq: t.seq, at: dueOf(t), leaseId: t.leaseId,
    };
  }

  /** The newest uncommitted full record of a task (dirty, else the newest in-flight batch). */
  private pendingRecord(id: string): TaskRecord | null | undefined {
    const d = this.dirty.get(id);
    if (d) return d.rec;
    for (let i = this.inflight.length - 1; i >= 0; i--) {
      const f = this.inflight[i]!.tasks.get(id);
      if (f) return f.rec;
    }
    return undefined;
  }

  /**
   * Full records of live tasks by id (issue 12 item 6): uncommitted ones from the batches, the
   * rest from the database in one statement. A live task missing on disk means memory and disk
   * diverged: the engine stops serving and reloads (ADR 0005).
   */
  private fullRecords(ids: readonly string[]): Map<string, TaskRecord> {
    const out = new Map<string, TaskRecord>();
    const fromDisk: string[] = [];
    for (const id of ids) {
      const p = this.pendingRecord(id);
      if (p) out.set(id, p);
      else fromDisk.push(id);
    }
    if (fromDisk.length === 1) {
      const r = this.stmts.getTask.get(fromDisk[0]) as Row | undefined;
      if (r) out.set(fromDisk[0]!, rowToTask(r));
    } else if (fromDisk.length) {
      for (const r of this.stmts.getTasks.all(JSON.stringify(fromDisk)) as Row[]) out.set(r['id'] as string, rowToTask(r));
    }
    for (const id of ids) {
      if (!out.has(id)) {
        this.fail(`task ${id} is in memory but not on disk`);
        throw storageUnavailable('memory and disk diverged; reloading');
      }
    }
    return out;
  }

  private dropQueueOf(t: TaskRecord): void {
    const q = this.queues.get(this.queueKey(t.tenantId, t.commandKey));
    if (q) this.dropIfEmpty(q);
  }

  private wakeOne(q: Queue): void {
    for (const w of q.waiters) {
      this.settleWaiter(w);
      return;
    }
  }

  private wakeAll(q: Queue): void {
    for (const w of [...q.waiters]) this.settleWaiter(w);
  }

  /** Resolve a waiter and take it off every queue it waits on (dropping queues left empty). */
  private settleWaiter(w: Waiter): void {
    if (w.done) return;
    w.done = true;
    for (const q of w.queues) {
      q.waiters.delete(w);
      this.dropIfEmpty(q);
    }
    w.resolve();
  }

  /** A queue with no task and no waiter is forgotten (issue 12 item 7: bounded memory). */
  private dropIfEmpty(q: Queue): void {
    if (q.waiters.size || q.delayed || q.inProgress || q.dlq || q.readyByPriority.some((n) => n > 0)) return;
    const key = this.queueKey(q.tenantId, q.commandKey);
    if (this.queues.get(key) === q) this.queues.delete(key);
  }

  /** Sizes of the memory structures (bounded-memory tests and the soak bench). */
  memoryStats(): { live: number; queues: number; waiters: number; idempotency: number; resultWaiters: number; diskOnlyChars: number } {
    let waiters = 0;
    for (const q of this.queues.values()) waiters += q.waiters.size;
    // Characters of payloads, webhook URLs and error texts held by the memory records (none: item 6).
    let diskOnlyChars = 0;
    for (const t of this.live.values() as IterableIterator<Partial<TaskRecord>>) diskOnlyChars += (t.payload?.length ?? 0) + (t.webhook?.length ?? 0) + (t.error?.length ?? 0) + (t.lastError?.length ?? 0);
    return { live: this.live.size, queues: this.queues.size, waiters, idempotency: this.idempotency.size, resultWaiters: this.resultWaiters.size, diskOnlyChars };
  }

  /** Move due delayed tasks to their ready FIFO (timer callback). */
  private promoteDue(): void {
    if (this.closed || this.failed) return; // reload() re-arms the alarm
    const now = Date.now();
    let moved = 0;
    const due: string[] = [];
    for (let e = this.delayed.peek(); e && e.at <= now; e = this.delayed.peek()) {
      this.delayed.pop();
      const t = this.live.get(e.id);
      if (!t || t !== e.ref || t.location !== 'DELAYED_ZSET') continue;
      due.push(t.id);
    }
    let full: Map<string, TaskRecord>;
    try {
      full = this.fullRecords(due);
    } catch {
      return; // the engine is reloading
    }
    for (const id of due) {
      const t = full.get(id)!;
      this.applyChange(t, { ...t, status: 'PENDING', location: 'PENDING_LIST', workerId: null, leaseId: null, leaseUntilMs: null, visibleAtMs: null, updatedAtMs: now });
      moved++;
    }
    if (moved) void this.commit().catch(() => undefined);
    const next = this.delayed.peek();
    if (next) this.delayAlarm.armAt(next.at);
  }

  /** Hand expired leases to the lease handler (timer callback). */
  private expireLeases(): void {
    if (this.closed || this.failed || !this.leaseHandler) return; // onLeaseExpired() / reload() re-arm the alarm
    const now = Date.now();
    const expired: ExpiredLease[] = [];
    for (let e = this.leases.peek(); e && e.at <= now; e = this.leases.peek()) {
      this.leases.pop();
      const t = this.live.get(e.id);
      if (!t || t !== e.ref || t.location !== 'INPROG_SET' || !t.leaseId) continue;
      expired.push({ tenantId: t.tenantId, taskId: t.id, leaseId: t.leaseId });
    }
    if (expired.length && this.leaseHandler) this.leaseHandler(expired);
    const next = this.leases.peek();
    if (next) this.leaseAlarm.armAt(next.at);
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  /** The current full record of a task (memory, uncommitted changes, else the database). */
  private lookup(id: string): TaskRecord | null {
    const p = this.pendingRecord(id);
    if (p !== undefined) return p;
    const row = this.stmts.getTask.get(id) as Row | undefined;
    return row ? rowToTask(row) : null;
  }

  private lookupResult(id: string): ResultRecord | null {
    if (this.dirtyResults.has(id)) return this.dirtyResults.get(id) ?? null;
    for (let i = this.inflight.length - 1; i >= 0; i--) {
      const m = this.inflight[i]!.results;
      if (m.has(id)) return m.get(id) ?? null;
    }
    const row = this.stmts.getResult.get(id) as Row | undefined;
    return row ? rowToResult(row) : null;
  }

  /** Reads wait for the commit of anything they might observe, so they never show unacknowledged state. */
  private async settled(): Promise<void> {
    this.assertOpen();
    await (this.batch ? this.batch.promise : this.lastCommit);
  }

  async get(tenantId: string, id: string): Promise<TaskRecord | null> {
    await this.settled();
    const t = this.lookup(id);
    return t && t.tenantId === tenantId ? { ...t } : null;
  }

  async getResult(tenantId: string, id: string): Promise<ResultRecord | null> {
    await this.settled();
    const r = this.lookupResult(id);
    return r && r.tenantId === tenantId ? r : null;
  }

  // ---------------------------------------------------------------------------------------------
  // Writes

  async create(task: TaskRecord): Promise<CreateOutcome> {
    this.assertOpen();
    if (task.idempotencyKey) {
      const k = `${task.tenantId}\u0000${task.idempotencyKey}`;
      let existingId = this.idempotency.get(k);
      if (existingId === undefined) {
        const row = this.stmts.findIdempotent.get(task.tenantId, task.idempotencyKey) as { id: string } | undefined;
        existingId = row?.id;
      }
      const existing = existingId ? this.lookup(existingId) : null;
      if (existing) {
        this.rememberKey(k, existing.id);
        await this.commit(); // the original may still be in flight: answer once it is durable
        return { task: { ...existing }, created: false };
      }
      this.rememberKey(k, task.id);
    }
    const t = { ...task };
    this.applyChange(null, t);
    await this.commit();
    return { task: { ...t }, created: true };
  }

  async claim(tenantId: string, commandKeys: readonly string[], count: number, lease: (t: TaskRecord) => TaskRecord): Promise<TaskRecord[]> {
    this.assertOpen();
    const out: TaskRecord[] = [];
    const queues: Queue[] = [];
    for (const key of new Set(commandKeys)) {
      const q = this.queues.get(this.queueKey(tenantId, key));
      if (q && !this.paused.has(q.tenantId + '\u0000' + q.commandKey)) queues.push(q);
    }
    const order = queues.map((q) => q.commandKey);
    // ADR 0007: the highest ready priority across the commands first; among the commands ready at
    // that priority, the one after the tenant's last served command (round-robin); FIFO within.
    // Claiming only removes tasks, so the top ready priority never rises during this loop.
    const picked: string[] = [];
    let last = this.lastServed.get(tenantId);
    for (let p = MAX_PRIORITY; p >= 0 && picked.length < count; p--) {
      const ready = new Map<string, Queue>();
      for (const q of queues) if (this.liveHead(q.ready[p]!)) ready.set(q.commandKey, q);
      while (ready.size && picked.length < count) {
        const key = nextCommand(ready, last, order)!;
        const q = ready.get(key)!;
        picked.push(q.ready[p]!.shift()!.id);
        last = key;
        if (!this.liveHead(q.ready[p]!)) ready.delete(key);
      }
    }
    if (last !== undefined) this.lastServed.set(tenantId, last);
    // The whole batch in one read (issue 12 item 6): memory holds no payloads.
    const full = picked.length ? this.fullRecords(picked) : null;
    for (const id of picked) {
      const t = full!.get(id)!;
      const next = lease(t);
      this.applyChange(t, next);
      out.push({ ...next });
    }
    if (out.length) await this.commit();
    return out;
  }

  /** Drops stale entries off the head of a ready FIFO; true when a claimable task heads it. */
  private liveHead(fifo: Deque<MemTask>): boolean {
    for (let e = fifo.peek(); e; e = fifo.peek()) {
      if (this.live.get(e.id) === e && e.location === 'PENDING_LIST') return true;
      fifo.shift();
    }
    return false;
  }

  waitForWork(tenantId: string, commandKeys: readonly string[], deadlineMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      // eslint-disable-next-line prefer-const -- assigned after the waiter that clears it is built
      let timer: NodeJS.Timeout | undefined;
      const w: Waiter = {
        done: false,
        queues: [],
        resolve: () => {
          if (timer) clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => this.settleWaiter(w);
      if (this.closed || this.draining || signal?.aborted) return resolve();
      for (const key of new Set(commandKeys)) {
        const q = this.queue(tenantId, key, key);
        q.waiters.add(w);
        w.queues.push(q);
      }
      timer = setTimeout(onAbort, Math.min(2 ** 31 - 1, Math.max(0, deadlineMs - Date.now())));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async transition<R>(tenantId: string | null, id: string, fn: TransitionFn<R>): Promise<R> {
    this.assertOpen();
    let current = this.lookup(id);
    if (current && tenantId !== null && current.tenantId !== tenantId) current = null;
    const snapshot = current ? { ...current } : null;
    let loaded: ResultRecord | null | undefined;
    const out = fn(snapshot, {
      result: () => {
        if (loaded === undefined) loaded = this.lookupResult(id);
        return loaded;
      },
    });
    if (out.next) {
      this.applyChange(current, out.next);
      if (out.result) {
        const r = out.result;
        this.dirtyResults.set(r.taskId, r);
        this.afterCommit.push(() => this.notifyResult(r.taskId));
      }
      if (out.webhook) this.outboxBatch.add(out.webhook);
      await this.commit();
    } else {
      await this.settled();
    }
    return out.value;
  }

  private rememberKey(k: string, id: string): void {
    this.idempotency.delete(k);
    this.idempotency.set(k, id);
    const cap = this.opts.idempotencyCacheSize ?? 100_000;
    while (this.idempotency.size > cap) this.idempotency.delete(this.idempotency.keys().next().value!);
  }

  private notifyResult(taskId: string): void {
    const set = this.resultWaiters.get(taskId);
    if (!set) return;
    this.resultWaiters.delete(taskId);
    for (const w of set) w();
  }

  waitForResult(_tenantId: string, id: string, deadlineMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.closed || this.draining || signal?.aborted) return resolve();
      let set = this.resultWaiters.get(id);
      if (!set) {
        set = new Set();
        this.resultWaiters.set(id, set);
      }
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
      const timer = setTimeout(done, Math.min(2 ** 31 - 1, Math.max(0, deadlineMs - Date.now())));
      signal?.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }

  onLeaseExpired(handler: (leases: ExpiredLease[]) => void): void {
    this.leaseHandler = handler;
    // Leases that expired while the server was down are handed over right away.
    this.leaseAlarm.armAt(this.leases.peek()?.at ?? Infinity);
  }

  counts(tenantId: string, commandKey: string): Promise<QueueCounts> {
    return Promise.resolve(this.countsNow(tenantId, commandKey));
  }

  private countsNow(tenantId: string, commandKey: string): QueueCounts {
    const q = this.queues.get(this.queueKey(tenantId, commandKey));
    if (!q) return { readyByPriority: new Array<number>(MAX_PRIORITY + 1).fill(0), delayed: 0, inProgress: 0, dlq: 0 };
    return { readyByPriority: [...q.readyByPriority], delayed: q.delayed, inProgress: q.inProgress, dlq: q.dlq };
  }

  depths(): Promise<QueueDepth[]> {
    return Promise.resolve(this.depthsNow());
  }

  private depthsNow(): QueueDepth[] {
    // Queues that exist only because a worker waits on them are not listed.
    return [...this.queues.values()].filter((q) => q.named).map((q) => ({
      tenantId: q.tenantId,
      commandKey: q.commandKey,
      command: q.command,
      readyByPriority: [...q.readyByPriority],
      delayed: q.delayed,
      inProgress: q.inProgress,
      dlq: q.dlq,
    }));
  }

  // ---------------------------------------------------------------------------------------------
  // Task notes (progress, log lines): checked against the task in memory, written by the next
  // group commit in the same order as the task's own changes, read back from the database.

  async writeNotes(
    tenantId: string,
    id: string,
    guard: (t: TaskRecord | null) => TaskRecord,
    notes: { progress?: string; logs?: readonly LogLineInput[]; maxLines: number },
    now: number,
  ): Promise<void> {
    this.assertOpen();
    let current = this.lookup(id);
    if (current && current.tenantId !== tenantId) current = null;
    const t = guard(current ? { ...current } : null);
    const n = this.dirtyNotes;
    if (notes.progress !== undefined) {
      n.progress.push([t.id, t.tenantId, t.attempts, notes.progress, now]);
      n.count++;
    }
    if (notes.logs?.length) {
      n.logs.push({ taskId: t.id, tenantId: t.tenantId, attempt: t.attempts, maxLines: notes.maxLines, lines: notes.logs.map((l) => [l.level, l.message, l.atMs]) });
      n.count++;
    }
    await this.commit();
  }

  async progress(tenantId: string, id: string): Promise<ProgressRecord | null> {
    await this.settled();
    const r = this.stmts.getProgress.get(id) as Row | undefined;
    if (!r || r['tenant_id'] !== tenantId) return null;
    return { value: r['progress'] as string, attempt: r['attempt'] as number, updatedAtMs: r['updated_at'] as number };
  }

  async logs(tenantId: string, id: string, afterN: number, limit: number): Promise<LogLine[]> {
    await this.settled();
    return (this.stmts.getLogs.all(id, tenantId, afterN, limit) as Row[]).map(rowToLogLine);
  }

  // ---------------------------------------------------------------------------------------------
  // Operator API

  /** Read from the database through the listing indexes (the memory copies are not walked). */
  async list(q: ListQuery): Promise<TaskRecord[]> {
    this.assertOpen();
    await this.settled();
    const branches = listBranches(q);
    if (!branches.length || q.limit <= 0) return [];
    const { text, values } = listSql(q, branches, () => 'tasks', () => '?');
    return (this.db.prepare(text).all(...values) as Row[]).map(rowToTask);
  }

  /** Explain the listing's SQL (tests check every branch uses an index). */
  explainList(q: ListQuery): string[] {
    const { text, values } = listSql(q, listBranches(q), () => 'tasks', () => '?');
    return (this.db.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...values) as { detail: string }[]).map((r) => r.detail);
  }

  async redrive(tenantId: string, sel: RedriveSelection, now: number): Promise<TaskRecord[]> {
    this.assertOpen();
    await this.settled();
    const ids =
      'ids' in sel
        ? [...new Set(sel.ids)]
        : (this.db
            .prepare(`SELECT id FROM tasks WHERE tenant_id = ? AND command_key = ? AND location = 'DLQ_SET' ORDER BY created_at, id LIMIT ?`)
            .all(tenantId, sel.commandKey, sel.limit) as { id: string }[]).map((r) => r.id);
    const moved: TaskRecord[] = [];
    for (const id of ids) {
      const t = this.lookup(id);
      if (!t || t.tenantId !== tenantId || t.location !== 'DLQ_SET' || !isTerminal(t.status)) continue;
      const next = redriveTask(t, now);
      this.applyChange(t, next);
      this.dirtyResults.set(id, null);
      // The next delivery starts at attempt 1 again: an earlier attempt 1's progress must not show.
      this.dirtyNotes.progressDeletes.push(id);
      this.dirtyNotes.count++;
      moved.push({ ...next });
    }
    // Every change above lands in one group commit, which is one transaction.
    if (moved.length) await this.commit();
    return moved;
  }

  async setPaused(tenantId: string, commandKey: string, command: string, paused: boolean): Promise<void> {
    this.assertOpen();
    const key = this.queueKey(tenantId, commandKey);
    if (paused) {
      this.db
        .prepare(`INSERT INTO paused_commands (tenant_id, command_key, command, paused_at) VALUES (?, ?, ?, ?) ON CONFLICT(tenant_id, command_key) DO NOTHING`)
        .run(tenantId, commandKey, command, Date.now());
      if (!this.paused.has(key)) this.paused.set(key, { tenantId, commandKey, command: this.queues.get(key)?.command ?? command });
    } else {
      this.db.prepare(`DELETE FROM paused_commands WHERE tenant_id = ? AND command_key = ?`).run(tenantId, commandKey);
      if (this.paused.delete(key)) {
        const q = this.queues.get(key);
        if (q) this.wakeAll(q);
      }
    }
  }

  pausedCommands(tenantId?: string): Promise<PausedCommand[]> {
    return Promise.resolve([...this.paused.values()].filter((p) => tenantId === undefined || p.tenantId === tenantId).map((p) => ({ ...p })));
  }

  async purgeTerminal(terminalBeforeMs: number, limit: number, tenantId?: string): Promise<number> {
    this.assertOpen();
    await this.settled();
    const rows = (tenantId === undefined
      ? this.stmts.expiredTerminal.all(terminalBeforeMs, limit)
      : this.stmts.expiredTerminalOfTenant.all(terminalBeforeMs, tenantId, limit)) as { id: string }[];
    for (const { id } of rows) {
      const t = this.lookup(id);
      if (!t || !isTerminal(t.status)) continue; // never delete a live task
      if (t.location === 'DLQ_SET') {
        this.unindex(t);
        this.dropQueueOf(t);
      }
      if (t.idempotencyKey) this.idempotency.delete(`${t.tenantId}\u0000${t.idempotencyKey}`);
      this.dirty.set(id, { rec: null, insert: false });
      this.dirtyResults.set(id, null);
    }
    if (rows.length) await this.commit();
    return rows.length;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('store is closed');
    if (this.failed) throw storageUnavailable('a write failed and the engine is reloading from disk');
  }

  // ---------------------------------------------------------------------------------------------
  // Topic catalog (rare admin writes: written directly on the main connection, WAL-serialised
  // with the writer thread by SQLite's busy timeout; reads come from a memory copy).

  private topicCache: Map<string, Topic> | null = null;

  /** Schedules (issue 17 item 4): their own table and statements on the main connection. */
  schedules(): ScheduleStore {
    return new SqliteScheduleStore(this.db);
  }

  /** The result-webhook outbox of this store (ADR 0012). */
  webhookOutbox(): SqliteWebhookOutbox {
    return (this.outbox ??= new SqliteWebhookOutbox(this.db));
  }
  private outbox: SqliteWebhookOutbox | null = null;

  topics(): TopicStore {
    const cache = (): Map<string, Topic> => {
      if (!this.topicCache) {
        this.topicCache = new Map();
        for (const r of this.db.prepare(`SELECT * FROM topics`).all() as Row[]) {
          const t: Topic = {
            topicId: r['topic_id'] as string,
            tenantId: r['tenant_id'] as string,
            topicName: r['topic_name'] as string,
            policy: JSON.parse(r['policy'] as string) as Topic['policy'],
            version: r['version'] as number,
            createdAtMs: r['created_at'] as number,
            updatedAtMs: r['updated_at'] as number,
          };
          this.topicCache.set(t.topicId, t);
        }
      }
      return this.topicCache;
    };
    return {
      get: (tenantId, name) => cache().get(`${tenantId}.${name}`) ?? null,
      all: () => [...cache().values()],
      put: async (t) => {
        this.db
          .prepare(
            `INSERT INTO topics (topic_id, tenant_id, topic_name, policy, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(topic_id) DO UPDATE SET policy = excluded.policy, version = excluded.version, updated_at = excluded.updated_at`,
          )
          .run(t.topicId, t.tenantId, t.topicName, JSON.stringify(t.policy), t.version, t.createdAtMs, t.updatedAtMs);
        cache().set(t.topicId, t);
      },
      delete: async (tenantId, name) => {
        this.db.prepare(`DELETE FROM topics WHERE topic_id = ?`).run(`${tenantId}.${name}`);
        cache().delete(`${tenantId}.${name}`);
      },
    };
  }
}

/** Delayed tasks are due at the start of their second (upstream compares whole Unix seconds). */
function dueAt(visibleAtMs: number): number {
  return Math.floor(visibleAtMs / 1000) * 1000;
}

/** Notes gathered for the next group commit (rows in the writer thread's parameter order). */
interface NotesBatch {
  count: number;
  /** [task_id, tenant_id, attempt, progress, updated_at] */
  progress: unknown[][];
  progressDeletes: string[];
  logs: { taskId: string; tenantId: string; attempt: number; maxLines: number; lines: [string, string, number][] }[];
}

function emptyNotes(): NotesBatch {
  return { count: 0, progress: [], progressDeletes: [], logs: [] };
}

function rowToLogLine(r: Row): LogLine {
  return { n: r['n'] as number, attempt: r['attempt'] as number, level: r['level'] as LogLine['level'], message: r['message'] as string, atMs: Number(r['at']) };
}
