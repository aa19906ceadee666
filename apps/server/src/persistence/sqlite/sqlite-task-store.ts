/**
 * The embedded engine (architecture §3.1): SQLite through TypeORM (schema + migrations) and
 * prepared statements on the same better-sqlite3 connection (hot path). Its parts:
 *  - group-commit.ts: changes of one event-loop turn committed together by a writer thread, the
 *    uncommitted and recently committed full records (record-cache.ts);
 *  - memory-index.ts: ready FIFOs, delayed and lease heaps, counters, long-poll waiters — only
 *    what ordering, routing and expiry need (issue 12 item 6), rebuilt at start;
 *  - ../directory-lock.ts: one process per data directory;
 *  - sqlite-topic-store.ts, sqlite-schedule-store.ts: the catalogs on the main connection.
 * This file applies the port (domain/task-store.ts) with them: a record is read back by id when
 * it is handed out or changed (one statement for a whole claim batch); results are never held.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
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
import { isTerminal, type ResultRecord, type TaskRecord } from '../../domain/task.js';
import { claimTask, promote, redriveTask, type LeaseSpec } from '../../domain/rules.js';
import type { LogLine, LogLineInput, ProgressRecord } from '../../domain/task-notes.js';
import type { ScheduleStore } from '../../domain/schedule.js';
import type { TopicStore } from '../../domain/topic.js';
import { Alarm } from '../structures.js';
import { TASK_COLUMNS, rowToResult, rowToTask, type Row } from '../schema.js';
import { listBranches, listSql } from '../list-sql.js';
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
import { TraceContext1764630000000 } from './migrations/1764630000000-trace-context.js';

export { StoreLockedError } from '../directory-lock.js';

const MIGRATIONS = [InitialSchema1764300000000, Topics1764310000000, OperatorApi1764500000000, TaskNotes1764600000000, Schedules1764610000000, TraceContext1764630000000];

/** Pause between attempts to recover from a failed commit (ADR 0005). */
const RECOVERY_RETRY_MS = 250;

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

export class SqliteTaskStore implements TaskStore {
  private ds: DataSource | null = null;
  /** Main-thread connection: migrations and reads of rows not held in memory. */
  private db!: BetterSqlite3.Database;
  private lockDb: BetterSqlite3.Database | null = null;
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

  private readonly now: () => number;
  private readonly delayAlarm: Alarm;
  private readonly leaseAlarm: Alarm;
  private readonly gc: GroupCommit;
  private readonly mem: MemoryIndex;
  private readonly results: ResultWaiters;
  private readonly topicStore = new SqliteTopicStore(() => this.db);
  /** (tenant \0 key) → task id, most recently used last (LRU, issue 12 item 8); misses fall back to the database. */
  private readonly idempotency = new Map<string, string>();
  private leaseHandler: ((leases: ExpiredLease[]) => void) | null = null;
  private ok = false;
  private closed = false;
  private draining = false;
  /** Set by a failed commit or a dead writer: writes and reads are refused until reloaded (ADR 0005). */
  private failed: string | null = null;
  private recovering = false;

  constructor(private readonly opts: SqliteStoreOptions) {
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
    } catch (e) {
      this.closed = true;
      if (ds.isInitialized) await ds.destroy().catch(() => undefined);
      this.unlock();
      throw e;
    }
    this.ok = true;
  }

  private unlock(): void {
    this.lockDb?.close();
    this.lockDb = null;
  }

  /**
   * A commit failed or the writer died: memory may be ahead of the disk, so stop acknowledging
   * (every write and read answers UNAVAILABLE, /readyz 503) and reload from disk (ADR 0005).
   */
  private fail(reason: string): void {
    this.ok = false;
    this.gc.committed.clear();
    if (!this.failed) this.opts.log?.error({ err: reason }, 'storage write failed; refusing requests until reloaded from disk');
    this.failed ??= reason;
    void this.recover();
  }

  /** Retry until the writer can take the write lock again, then rebuild memory from disk. */
  private async recover(): Promise<void> {
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
  private reload(): void {
    this.delayAlarm.clear();
    this.leaseAlarm.clear();
    this.idempotency.clear();
    this.gc.forget();
    this.topicStore.invalidate();
    this.load();
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

  private assertOpen(): void {
    if (this.closed) throw new Error('store is closed');
    if (this.failed) throw storageUnavailable('a write failed and the engine is reloading from disk');
  }

  /** Replace a record with its next state: memory indexes, then the next group commit. */
  private applyChange(prev: TaskRecord | null, next: TaskRecord): void {
    this.mem.apply(prev, next);
    this.gc.markDirty(next, prev === null);
  }

  /** Sizes of the memory structures (bounded-memory tests and the soak bench). */
  memoryStats(): { live: number; queues: number; waiters: number; idempotency: number; resultWaiters: number; diskOnlyChars: number; cachedRecords: number; cachedBytes: number } {
    return { ...this.mem.stats(), idempotency: this.idempotency.size, resultWaiters: this.results.size, cachedRecords: this.gc.committed.size, cachedBytes: this.gc.committed.heldBytes };
  }

  // ---------------------------------------------------------------------------------------------
  // Timers

  /** Move due delayed tasks to their ready FIFO (timer callback). */
  private promoteDue(): void {
    if (this.closed || this.failed) return; // reload() re-arms the alarm
    const now = this.now();
    const due = this.mem.takeDue(now);
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
  private expireLeases(): void {
    if (this.closed || this.failed || !this.leaseHandler) return; // onLeaseExpired() / reload() re-arm the alarm
    const expired = this.mem.takeExpired(this.now());
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
  private fullRecords(ids: readonly string[]): Map<string, TaskRecord> {
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
  private lookup(id: string): TaskRecord | null {
    const p = this.gc.record(id);
    if (p !== undefined) return p;
    const row = this.stmts.getTask.get(id) as Row | undefined;
    return row ? rowToTask(row) : null;
  }

  private lookupResult(id: string): ResultRecord | null {
    const p = this.gc.result(id);
    if (p !== undefined) return p;
    const row = this.stmts.getResult.get(id) as Row | undefined;
    return row ? rowToResult(row) : null;
  }

  /** Reads wait for the commit of anything they might observe, so they never show unacknowledged state. */
  private async settled(): Promise<void> {
    this.assertOpen();
    await this.gc.settled();
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

  counts(tenantId: string, commandKey: string): Promise<QueueCounts> {
    return Promise.resolve(this.mem.counts(tenantId, commandKey));
  }

  depths(): Promise<QueueDepth[]> {
    return Promise.resolve(this.mem.depths());
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
        await this.gc.commit(); // the original may still be in flight: answer once it is durable
        return { task: { ...existing }, created: false };
      }
      this.rememberKey(k, task.id);
    }
    const t = { ...task };
    this.applyChange(null, t);
    await this.gc.commit();
    return { task: { ...t }, created: true };
  }

  private rememberKey(k: string, id: string): void {
    this.idempotency.delete(k);
    this.idempotency.set(k, id);
    const cap = this.opts.idempotencyCacheSize ?? 100_000;
    while (this.idempotency.size > cap) this.idempotency.delete(this.idempotency.keys().next().value!);
  }

  async claim(tenantId: string, commandKeys: readonly string[], count: number, lease: LeaseSpec): Promise<TaskRecord[]> {
    this.assertOpen();
    const picked = this.mem.pick(tenantId, commandKeys, count);
    if (!picked.length) return [];
    // The whole batch in one read (issue 12 item 6): memory holds no payloads.
    const full = this.fullRecords(picked);
    const out: TaskRecord[] = [];
    for (let i = 0; i < picked.length; i++) {
      const t = full.get(picked[i]!)!;
      const next = claimTask(t, lease, i);
      this.applyChange(t, next);
      out.push({ ...next });
    }
    await this.gc.commit();
    return out;
  }

  waitForWork(tenantId: string, commandKeys: readonly string[], deadlineMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.closed || this.draining || signal?.aborted) return resolve();
      const settle = this.mem.park(tenantId, commandKeys, () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', settle);
        resolve();
      });
      const timer = setTimeout(settle, Math.min(2 ** 31 - 1, Math.max(0, deadlineMs - this.now())));
      signal?.addEventListener('abort', settle, { once: true });
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
        this.gc.setResult(r.taskId, r);
        this.gc.afterNextCommit(() => this.results.notify(r.taskId));
      }
      await this.gc.commit();
    } else {
      await this.settled();
    }
    return out.value;
  }

  waitForResult(_tenantId: string, id: string, deadlineMs: number, signal?: AbortSignal): Promise<void> {
    if (this.closed || this.draining || signal?.aborted) return Promise.resolve();
    return this.results.wait(id, deadlineMs, signal);
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
    const n = this.gc.notes;
    if (notes.progress !== undefined) {
      n.progress.push([t.id, t.tenantId, t.attempts, notes.progress, now]);
      n.count++;
    }
    if (notes.logs?.length) {
      n.logs.push({ taskId: t.id, tenantId: t.tenantId, attempt: t.attempts, maxLines: notes.maxLines, lines: notes.logs.map((l) => [l.level, l.message, l.atMs]) });
      n.count++;
    }
    await this.gc.commit();
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
      this.gc.setResult(id, null);
      // The next delivery starts at attempt 1 again: an earlier attempt 1's progress must not show.
      this.gc.notes.progressDeletes.push(id);
      this.gc.notes.count++;
      moved.push({ ...next });
    }
    // Every change above lands in one group commit, which is one transaction.
    if (moved.length) await this.gc.commit();
    return moved;
  }

  async setPaused(tenantId: string, commandKey: string, command: string, paused: boolean): Promise<void> {
    this.assertOpen();
    const key = this.mem.queueKey(tenantId, commandKey);
    if (paused) {
      this.db
        .prepare(`INSERT INTO paused_commands (tenant_id, command_key, command, paused_at) VALUES (?, ?, ?, ?) ON CONFLICT(tenant_id, command_key) DO NOTHING`)
        .run(tenantId, commandKey, command, this.now());
      if (!this.mem.paused.has(key)) this.mem.paused.set(key, { tenantId, commandKey, command: this.mem.commandOf(tenantId, commandKey) ?? command });
    } else {
      this.db.prepare(`DELETE FROM paused_commands WHERE tenant_id = ? AND command_key = ?`).run(tenantId, commandKey);
      if (this.mem.paused.delete(key)) this.mem.wakeQueue(tenantId, commandKey);
    }
  }

  pausedCommands(tenantId?: string): Promise<PausedCommand[]> {
    return Promise.resolve([...this.mem.paused.values()].filter((p) => tenantId === undefined || p.tenantId === tenantId).map((p) => ({ ...p })));
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
        this.mem.unindex(t);
        this.mem.dropQueueOf(t);
      }
      if (t.idempotencyKey) this.idempotency.delete(`${t.tenantId}\u0000${t.idempotencyKey}`);
      this.gc.markDeleted(id);
      this.gc.setResult(id, null);
    }
    if (rows.length) await this.gc.commit();
    return rows.length;
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
}

function rowToLogLine(r: Row): LogLine {
  return { n: r['n'] as number, attempt: r['attempt'] as number, level: r['level'] as LogLine['level'], message: r['message'] as string, atMs: Number(r['at']) };
}
