/**
 * Group commit of the embedded engine (architecture §3.1): every change marks records dirty; once
 * per event-loop turn the changed rows are handed to a writer thread (writer-thread.cjs) that
 * commits them in one transaction, and every caller of that turn is answered after that commit.
 * Commits run on another core, in order. Uncommitted records are full and are read from the dirty
 * and in-flight batches; the records of recently committed batches stay in a bounded cache
 * (record-cache.ts, issue 13), so a claim or result right after a create or claim reads no disk.
 */
import { Worker } from 'node:worker_threads';
import { CodeqError } from '@codeq/proto/errors';
import type { ResultRecord, TaskRecord } from '../../domain/task.js';
import { MUTABLE_COLUMNS, TASK_COLUMNS, mutableValues, resultUpsertSql, resultValues, taskValues } from '../schema.js';
import { RecordCache } from './record-cache.js';
import { OutboxBatch, SQLITE_OUTBOX_INSERT } from './sqlite-webhook-outbox.js';
import type { WebhookOutboxRow } from '../../domain/webhook-outbox.js';

/** The answer to every request while the engine refuses writes after a failed commit. */
export function storageUnavailable(reason: string): CodeqError {
  return new CodeqError('UNAVAILABLE', `storage unavailable: ${reason}; retry later`);
}

/** Batches handed to the writer thread at once; later changes wait and join the next batch. */
const MAX_INFLIGHT_COMMITS = 1;

/** SQLite also moves `seq` on a transition (the ready FIFO position); the row is found by id. */
const SQLITE_MUTABLE = [...MUTABLE_COLUMNS, 'seq'] as const;

function updateParams(t: TaskRecord): unknown[] {
  return [...mutableValues(t), t.seq, t.id];
}

interface Dirty {
  rec: TaskRecord | null;
  /** Not in the database yet: INSERT instead of UPDATE. */
  insert: boolean;
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

/** Notes gathered for the next group commit (rows in the writer thread's parameter order). */
export interface NotesBatch {
  count: number;
  /** [task_id, tenant_id, attempt, progress, updated_at] */
  progress: unknown[][];
  progressDeletes: string[];
  logs: { taskId: string; tenantId: string; attempt: number; maxLines: number; lines: [string, string, number][] }[];
}

function emptyNotes(): NotesBatch {
  return { count: 0, progress: [], progressDeletes: [], logs: [] };
}

/** What the group commit needs from its engine. */
export interface CommitHost {
  closed(): boolean;
  /** The reason the engine refuses requests, or null. */
  failed(): string | null;
  /** A commit failed or the writer died: memory may be ahead of the disk (ADR 0005). */
  onFailure(reason: string): void;
}

export class GroupCommit {
  /** The writer thread (tests terminate it to simulate its loss). */
  private writer: Worker | null = null;
  private file = '';
  private batchId = 0;
  /** Batches handed to the writer, oldest first, until their commit is acknowledged. */
  private inflight: { id: number; tasks: Map<string, Dirty>; results: Map<string, ResultRecord | null>; done: Deferred; after: (() => void)[] }[] = [];
  private lastCommit: Promise<void> = Promise.resolve();
  /** Records changed since the last commit (null = delete). */
  private dirty = new Map<string, Dirty>();
  private dirtyResults = new Map<string, ResultRecord | null>();
  /** Task notes written since the last commit (only until committed: never indexed in memory). */
  private dirtyNotes: NotesBatch = emptyNotes();
  /** Result-webhook deliveries to insert with the next group commit (ADR 0012). */
  private readonly outboxBatch = new OutboxBatch();
  private batch: Deferred | null = null;
  private flushScheduled = false;
  private afterCommit: (() => void)[] = [];
  /** Full records of recently committed live tasks (issue 13). */
  readonly committed = new RecordCache();
  private resetDone: ((error: string | undefined) => void) | null = null;

  constructor(
    private readonly host: CommitHost,
    private readonly fsyncOnCommit: boolean,
  ) {}

  /** Start (or restart) the writer thread on the database file. */
  start(file: string): Promise<void> {
    this.file = file;
    const worker = new Worker(new URL('./writer-thread.cjs', import.meta.url), {
      workerData: {
        file, fsyncOnCommit: this.fsyncOnCommit, taskColumns: TASK_COLUMNS, mutableColumns: SQLITE_MUTABLE,
        resultUpsert: resultUpsertSql('results', () => '?'), outboxInsert: SQLITE_OUTBOX_INSERT,
      },
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
    if (this.host.closed()) return;
    this.host.onFailure(reason);
    for (const b of this.inflight.splice(0)) b.done.reject(storageUnavailable(reason));
    this.resetDone?.(reason);
  }

  /** True when no batch is gathering or being written (recovery waits for this). */
  idle(): boolean {
    return !this.inflight.length && !this.batch;
  }

  /** After a failure: (re)start the writer and let it roll back; resolves with its error, if any. */
  async resetWriter(): Promise<string | undefined> {
    if (!this.writer) await this.start(this.file);
    const w = this.writer;
    if (!w || this.host.closed()) return 'writer unavailable';
    try {
      return await new Promise<string | undefined>((resolve) => {
        this.resetDone = resolve;
        w.postMessage({ type: 'reset' });
      });
    } finally {
      this.resetDone = null;
    }
  }

  /** Forget every uncommitted change and the record cache (the state on disk wins). */
  forget(): void {
    this.dirty = new Map();
    this.dirtyResults = new Map();
    this.dirtyNotes = emptyNotes();
    this.outboxBatch.take();
    this.afterCommit = [];
    this.committed.clear();
    this.lastCommit = Promise.resolve();
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
      this.host.onFailure(`commit failed: ${error}`);
      b.done.reject(storageUnavailable('a commit failed'));
      return;
    }
    // The records of this batch are the state on disk now (batches are acknowledged in order).
    for (const [tid, d] of b.tasks) this.committed.committed(tid, d.rec);
    b.done.resolve();
    for (const f of b.after) f();
  }

  // ---------------------------------------------------------------------------------------------
  // Changes of the current turn

  markDirty(t: TaskRecord, insert: boolean): void {
    if (typeof t.payload !== 'string') throw new Error(`internal: partial record ${t.id} marked for writing`);
    const d = this.dirty.get(t.id);
    if (d) d.rec = t;
    else this.dirty.set(t.id, { rec: t, insert });
  }

  markDeleted(id: string): void {
    this.dirty.set(id, { rec: null, insert: false });
  }

  /** Store (or, with null, delete) the result of a task in the next commit. */
  setResult(id: string, r: ResultRecord | null): void {
    this.dirtyResults.set(id, r);
  }

  /** A result-webhook delivery to insert in the next commit (with the transition that made it). */
  addWebhook(row: WebhookOutboxRow): void {
    this.outboxBatch.add(row);
  }

  /** Notes of the next commit. */
  get notes(): NotesBatch {
    return this.dirtyNotes;
  }

  /** Run `f` once the next commit is acknowledged. */
  afterNextCommit(f: () => void): void {
    this.afterCommit.push(f);
  }

  hasChanges(): boolean {
    return this.dirty.size > 0 || this.dirtyResults.size > 0 || this.dirtyNotes.count > 0;
  }

  /** Promise of the commit that will contain every change made so far. */
  commit(): Promise<void> {
    if (this.host.closed()) return Promise.reject(new Error('store is closed'));
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

  /** Resolves once everything acknowledged or gathered so far is committed. */
  settled(): Promise<void> {
    return this.batch ? this.batch.promise : this.lastCommit;
  }

  /**
   * Hand every change of this turn to the writer; callers are answered on its acknowledgement.
   * While MAX_INFLIGHT_COMMITS batches are being written, changes keep gathering and go out
   * together on the next acknowledgement (bigger batches exactly when the writer is the
   * bottleneck: fsync on commit, a WAL checkpoint, a loaded disk; fewer thread hand-offs).
   */
  flush(force = false): void {
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
      const failed = this.host.failed();
      b.reject(failed ? storageUnavailable(failed) : new Error('store is closed'));
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
      if (r) msg.results.push(resultValues(r));
      else msg.resultDeletes.push(id);
    }
    this.inflight.push({ id: msg.id, tasks, results, done: b, after });
    this.lastCommit = b.promise;
    this.writer.postMessage(msg);
  }

  /** Close: send what is gathered, wait for every commit, stop the writer thread. */
  async close(): Promise<void> {
    await this.lastCommit.catch(() => undefined);
    const w = this.writer;
    this.writer = null;
    if (!w) return;
    await new Promise<void>((resolve) => {
      w.once('exit', () => resolve());
      w.on('message', (m: { type: string }) => {
        if (m.type === 'closed') void w.terminate();
      });
      w.postMessage({ type: 'close' });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Reads of records held in memory

  /**
   * The newest full record of a task held in memory: uncommitted (dirty, else the newest
   * in-flight batch), else recently committed (the record cache); undefined = read the disk.
   */
  record(id: string): TaskRecord | null | undefined {
    const d = this.dirty.get(id);
    if (d) return d.rec;
    for (let i = this.inflight.length - 1; i >= 0; i--) {
      const f = this.inflight[i]!.tasks.get(id);
      if (f) return f.rec;
    }
    return this.committed.get(id);
  }

  /** The newest uncommitted result of a task; undefined = read the disk. */
  result(id: string): ResultRecord | null | undefined {
    if (this.dirtyResults.has(id)) return this.dirtyResults.get(id) ?? null;
    for (let i = this.inflight.length - 1; i >= 0; i--) {
      const m = this.inflight[i]!.results;
      if (m.has(id)) return m.get(id) ?? null;
    }
    return undefined;
  }
}
