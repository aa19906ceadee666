/**
 * The embedded engine's life cycle and shared plumbing (architecture §3.1): opening (directory
 * lock, migrations, memory indexes, writer thread), failure and recovery (ADR 0005), closing, the
 * timers (delayed promotion, lease expiry) and the reads of full records. The port's operations
 * are in sqlite-task-store.ts; the parts are group-commit.ts, memory-index.ts and the catalogs.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { DataSource } from 'typeorm';
import type { ExpiredLease } from '../../domain/task-store.js';
import type { ResultRecord, TaskRecord } from '../../domain/task.js';
import { promote } from '../../domain/rules.js';
import type { ScheduleStore } from '../../domain/schedule.js';
import type { TopicStore } from '../../domain/topic.js';
import { Alarm } from '../structures.js';
import { TASK_COLUMNS, rowToResult, rowToTask, type Row } from '../schema.js';
import { lockDirectory } from '../directory-lock.js';
import { ResultWaiters } from '../waiters.js';
import { GroupCommit, storageUnavailable } from './group-commit.js';
import { MemoryIndex } from './memory-index.js';
import { SqliteTopicStore } from './sqlite-topic-store.js';
import { SqliteScheduleStore } from './sqlite-schedule-store.js';
import { MetaEntity, PausedCommandEntity, ResultEntity, TaskEntity, TopicEntity } from './entities.js';
import { InitialSchema1764300000000 } from './migrations/1764300000000-initial-schema.js';
import { Topics1764310000000 } from './migrations/1764310000000-topics.js';
import { OperatorApi1764500000000 } from './migrations/1764500000000-operator-api.js';
import { TaskNotes1764600000000 } from './migrations/1764600000000-task-notes.js';
import { Schedules1764610000000 } from './migrations/1764610000000-schedules.js';
import { WebhookOutbox1764620000000 } from './migrations/1764620000000-webhook-outbox.js';
import { TraceContext1764630000000 } from './migrations/1764630000000-trace-context.js';
import { SqliteWebhookOutbox } from './sqlite-webhook-outbox.js';
import { KeyFilter, fillKeyFilter } from './key-filter.js';

const MIGRATIONS = [InitialSchema1764300000000, Topics1764310000000, OperatorApi1764500000000, TaskNotes1764600000000, Schedules1764610000000, WebhookOutbox1764620000000, TraceContext1764630000000];

/** Pause between attempts to recover from a failed commit (ADR 0005). */
const RECOVERY_RETRY_MS = 250;
/** Due delayed tasks or expired leases handled per timer turn (the alarm re-fires while more are due). */
const TIMER_SLICE = 1000;

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
  /** Time source (default: the system clock); timers, promotions and lease expiry read it. */
  clock?: { now(): number };
  /** Logger for engine events. */
  log?: { info(obj: object, msg: string): void; error(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export abstract class SqliteEngine {
  protected ds: DataSource | null = null;
  /** Main-thread connection: migrations and reads of rows not held in memory. */
  protected db!: BetterSqlite3.Database;
  protected lockDb: BetterSqlite3.Database | null = null;
  protected stmts!: {
    getTask: BetterSqlite3.Statement;
    getResult: BetterSqlite3.Statement;
    findIdempotent: BetterSqlite3.Statement;
    expiredTerminal: BetterSqlite3.Statement;
    expiredTerminalOfTenant: BetterSqlite3.Statement;
    getProgress: BetterSqlite3.Statement;
    getLogs: BetterSqlite3.Statement;
    getTasks: BetterSqlite3.Statement;
  };

  protected readonly now: () => number;
  protected readonly delayAlarm: Alarm;
  protected readonly leaseAlarm: Alarm;
  protected readonly gc: GroupCommit;
  protected readonly mem: MemoryIndex;
  protected readonly results: ResultWaiters;
  protected readonly topicStore = new SqliteTopicStore(() => this.db);
  /** (tenant \0 key) → task id, most recently used last (LRU, issue 12 item 8); misses fall back to the database. */
  protected readonly idempotency = new Map<string, string>();
  /** Every idempotency key on disk, approximately: a miss in both skips the database read (issue 13). */
  protected readonly keyFilter = new KeyFilter();
  private keyFilterBuild = 0;
  protected leaseHandler: ((leases: ExpiredLease[]) => void) | null = null;
  protected ok = false;
  protected closed = false;
  protected draining = false;
  /** Set by a failed commit or a dead writer: writes and reads are refused until reloaded (ADR 0005). */
  protected failed: string | null = null;
  protected recovering = false;

  constructor(protected readonly opts: SqliteStoreOptions) {
    const clock = opts.clock;
    this.now = clock ? () => clock.now() : Date.now;
    this.delayAlarm = new Alarm(() => this.promoteDue(), this.now);
    this.leaseAlarm = new Alarm(() => this.expireLeases(), this.now);
    this.mem = new MemoryIndex((at) => this.delayAlarm.armAt(at), (at) => this.leaseAlarm.armAt(at));
    this.results = new ResultWaiters(this.now);
    this.gc = new GroupCommit({ closed: () => this.closed, failed: () => this.failed, onFailure: (reason) => this.fail(reason) }, opts.fsyncOnCommit);
  }

  async open(): Promise<void> {
    mkdirSync(this.opts.path, { recursive: true, mode: 0o700 });
    this.lockDb = lockDirectory(this.opts.path);
    const file = join(this.opts.path, 'codeq.db');
    const ds = new DataSource({
      type: 'better-sqlite3',
      database: file,
      entities: [TaskEntity, ResultEntity, MetaEntity, TopicEntity, PausedCommandEntity],
      migrations: MIGRATIONS,
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
      await this.gc.start(file);
      this.buildKeyFilter();
    } catch (e) {
      this.closed = true;
      if (ds.isInitialized) await ds.destroy().catch(() => undefined);
      this.unlock();
      throw e;
    }
    this.ok = true;
  }

  protected unlock(): void {
    this.lockDb?.close();
    this.lockDb = null;
  }

  /**
   * A commit failed or the writer died: memory may be ahead of the disk, so stop acknowledging
   * (every write and read answers UNAVAILABLE, /readyz 503) and reload from disk (ADR 0005).
   */
  protected fail(reason: string): void {
    this.ok = false;
    this.gc.committed.clear();
    if (!this.failed) this.opts.log?.error({ err: reason }, 'storage write failed; refusing requests until reloaded from disk');
    this.failed ??= reason;
    void this.recover();
  }

  /** Retry until the writer can take the write lock again, then rebuild memory from disk. */
  protected async recover(): Promise<void> {
    if (this.recovering) return;
    this.recovering = true;
    try {
      while (!this.closed && this.failed) {
        await new Promise((r) => setTimeout(r, RECOVERY_RETRY_MS));
        if (this.closed) return;
        // Wait until every batch of the failed state has been answered.
        if (!this.gc.idle()) continue;
        try {
          const error = await this.gc.resetWriter();
          if (error) throw new Error(error);
          if (this.closed) return;
          this.reload();
          this.opts.log?.warn({ reason: this.failed }, 'storage reloaded from disk after a failed write; serving again');
          this.failed = null;
          this.ok = true;
        } catch (e) {
          this.opts.log?.warn({ err: (e as Error).message }, 'storage still failing; retrying');
        }
      }
    } finally {
      this.recovering = false;
    }
  }

  /** Forget every memory index and rebuild them from the database (the state on disk wins). */
  protected reload(): void {
    this.delayAlarm.clear();
    this.leaseAlarm.clear();
    this.idempotency.clear();
    this.keyFilter.reset();
    this.gc.forget();
    this.topicStore.invalidate();
    this.load();
    this.buildKeyFilter();
  }

  /** Fill the key filter from disk after start-up (a reload or close abandons a build in progress). */
  protected buildKeyFilter(): void {
    const build = ++this.keyFilterBuild;
    fillKeyFilter(this.db, this.keyFilter, () => build !== this.keyFilterBuild || this.closed || this.failed !== null, (e) =>
      this.opts.log?.warn({ err: e.message }, 'idempotency key filter not built'),
    );
  }

  protected prepare(): void {
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
  protected load(): void {
    const started = Date.now();
    // The scans read many pages once: a small page cache for them, so those pages do not stay
    // in memory (restored at the end).
    const cacheSize = this.db.pragma('cache_size', { simple: true }) as number;
    this.db.pragma('cache_size = -2048');
    const n = this.mem.load(this.db);
    this.db.pragma(`cache_size = ${cacheSize}`);
    this.db.pragma('shrink_memory');
    this.opts.log?.info({ liveTasks: n, ms: Date.now() - started, path: this.opts.path }, 'embedded store opened');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.delayAlarm.clear();
    this.leaseAlarm.clear();
    if (this.gc.hasChanges()) {
      this.gc.commit().catch(() => undefined);
      this.gc.flush(true);
    }
    this.closed = true;
    this.keyFilterBuild++;
    await this.gc.settled().catch(() => undefined);
    this.mem.wakeEverybody();
    this.results.wakeAll();
    this.ok = false;
    await this.gc.close();
    if (this.ds?.isInitialized) await this.ds.destroy();
    this.unlock();
  }

  healthy(): boolean {
    return this.ok && !this.failed && !this.closed && !this.draining;
  }

  drain(): void {
    this.draining = true;
    this.mem.wakeEverybody();
    this.results.wakeAll();
  }

  protected assertOpen(): void {
    if (this.closed) throw new Error('store is closed');
    if (this.failed) throw storageUnavailable('a write failed and the engine is reloading from disk');
  }

  /** Replace a record with its next state: memory indexes, then the next group commit. */
  protected applyChange(prev: TaskRecord | null, next: TaskRecord): void {
    this.mem.apply(prev, next);
    this.gc.markDirty(next, prev === null);
  }

  /** Sizes of the memory structures (bounded-memory tests and the soak bench). */
  memoryStats(): { live: number; queues: number; waiters: number; idempotency: number; resultWaiters: number; diskOnlyChars: number; cachedRecords: number; cachedBytes: number; keyFilterReady: boolean } {
    return { ...this.mem.stats(), keyFilterReady: this.keyFilter.usable, idempotency: this.idempotency.size, resultWaiters: this.results.size, cachedRecords: this.gc.committed.size, cachedBytes: this.gc.committed.heldBytes };
  }

  // ---------------------------------------------------------------------------------------------
  // Timers

  /** Move due delayed tasks to their ready FIFO (timer callback). */
  protected promoteDue(): void {
    if (this.closed || this.failed) return; // reload() re-arms the alarm
    const now = this.now();
    // A bounded slice per timer turn: after downtime, thousands may be due at once, and requests
    // must keep being served meanwhile (the alarm re-fires at once while more are due).
    const due = this.mem.takeDue(now, TIMER_SLICE);
    let full: Map<string, TaskRecord>;
    try {
      full = this.fullRecords(due);
    } catch {
      return; // the engine is reloading
    }
    let moved = 0;
    for (const id of due) {
      const t = full.get(id)!;
      // The heap entry is due (its time is dueAt(visible_at)), so promote() moves it.
      const next = promote(t, now);
      if (next === t) continue;
      this.applyChange(t, next);
      moved++;
    }
    if (moved) void this.gc.commit().catch(() => undefined);
    const next = this.mem.nextDueAt();
    if (next !== undefined) this.delayAlarm.armAt(next);
  }

  /** Hand expired leases to the lease handler (timer callback). */
  protected expireLeases(): void {
    if (this.closed || this.failed || !this.leaseHandler) return; // onLeaseExpired() / reload() re-arm the alarm
    const expired = this.mem.takeExpired(this.now(), TIMER_SLICE);
    if (expired.length && this.leaseHandler) this.leaseHandler(expired);
    const next = this.mem.nextExpiryAt();
    if (next !== undefined) this.leaseAlarm.armAt(next);
  }

  onLeaseExpired(handler: (leases: ExpiredLease[]) => void): void {
    this.leaseHandler = handler;
    // Leases that expired while the server was down are handed over right away.
    this.leaseAlarm.armAt(this.mem.nextExpiryAt() ?? Infinity);
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  /**
   * Full records of live tasks by id (issue 12 item 6): uncommitted or recently committed ones
   * from memory, the rest from the database in one statement. A live task missing on disk means
   * memory and disk diverged: the engine stops serving and reloads (ADR 0005).
   */
  protected fullRecords(ids: readonly string[]): Map<string, TaskRecord> {
    const out = new Map<string, TaskRecord>();
    const fromDisk: string[] = [];
    for (const id of ids) {
      const p = this.gc.record(id);
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

  /** The current full record of a task (memory, uncommitted changes, else the database). */
  protected lookup(id: string): TaskRecord | null {
    const p = this.gc.record(id);
    if (p !== undefined) return p;
    const row = this.stmts.getTask.get(id) as Row | undefined;
    return row ? rowToTask(row) : null;
  }

  protected lookupResult(id: string): ResultRecord | null {
    const p = this.gc.result(id);
    if (p !== undefined) return p;
    const row = this.stmts.getResult.get(id) as Row | undefined;
    return row ? rowToResult(row) : null;
  }

  /** Reads wait for the commit of anything they might observe, so they never show unacknowledged state. */
  protected async settled(): Promise<void> {
    this.assertOpen();
    await this.gc.settled();
  }

  // ---------------------------------------------------------------------------------------------
  // Catalogs on the main connection

  /** Schedules (issue 17 item 4): their own table and statements on the main connection. */
  schedules(): ScheduleStore {
    return new SqliteScheduleStore(this.db);
  }

  topics(): TopicStore {
    return this.topicStore;
  }

  /** The result-webhook outbox of this store (ADR 0012). */
  webhookOutbox(): SqliteWebhookOutbox {
    return (this.outbox ??= new SqliteWebhookOutbox(this.db));
  }
  private outbox: SqliteWebhookOutbox | null = null;
}
