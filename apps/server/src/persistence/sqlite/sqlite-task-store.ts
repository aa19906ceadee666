/**
 * The embedded engine's side of the storage port (domain/task-store.ts): creates, claims,
 * transitions, notes and the operator API, applied to the memory indexes and the group commit of
 * SqliteEngine (sqlite-engine.ts). A record is read back by id when it is handed out or changed
 * (one statement for a whole claim batch); results are never held in memory.
 */
import type {
  CreateOutcome,
  ListQuery,
  PausedCommand,
  QueueCounts,
  RedriveSelection,
  QueueDepth,
  TaskStore,
  TransitionFn,
} from '../../domain/task-store.js';
import { isTerminal, type ResultRecord, type TaskRecord } from '../../domain/task.js';
import { claimTask, redriveTask, type LeaseSpec } from '../../domain/rules.js';
import type { LogLine, LogLineInput, ProgressRecord } from '../../domain/task-notes.js';
import { rowToTask, type Row } from '../schema.js';
import { listBranches, listSql } from '../list-sql.js';
import { SqliteEngine } from './sqlite-engine.js';

export { StoreLockedError } from '../directory-lock.js';
export type { SqliteStoreOptions } from './sqlite-engine.js';

export class SqliteTaskStore extends SqliteEngine implements TaskStore {
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
      if (existingId === undefined && this.keyFilter.mayContain(k)) {
        const row = this.stmts.findIdempotent.get(task.tenantId, task.idempotencyKey) as { id: string } | undefined;
        existingId = row?.id;
      }
      const existing = existingId ? this.lookup(existingId) : null;
      if (existing) {
        this.rememberKey(k, existing.id);
        await this.gc.commit(); // the original may still be in flight: answer once it is durable
        return { task: { ...existing }, created: false };
      }
      this.keyFilter.add(k);
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
      if (out.webhook) this.gc.addWebhook(out.webhook);
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

}

function rowToLogLine(r: Row): LogLine {
  return { n: r['n'] as number, attempt: r['attempt'] as number, level: r['level'] as LogLine['level'], message: r['message'] as string, atMs: Number(r['at']) };
}
