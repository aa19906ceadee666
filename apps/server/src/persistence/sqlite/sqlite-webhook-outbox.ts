/**
 * The result-webhook outbox on the embedded engine (ADR 0012). Rows are inserted by the writer
 * thread in the group commit that finishes their task (writer-thread.cjs, `batch.outbox`); the
 * dispatcher's claims, retries and deletes are rare, small statements on the main connection
 * (WAL-serialised with the writer thread by SQLite's busy timeout, like schedules and topics).
 * One process owns the data directory, so a row claimed when the process died is simply made due
 * again when the store opens.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { OUTBOX_COLUMNS, outboxValues, rowToOutbox, type WebhookOutbox, type WebhookOutboxRow } from '../../domain/webhook-outbox.js';

/** Insert statement of the writer thread (same column order as {@link outboxValues}). */
export const SQLITE_OUTBOX_INSERT = `INSERT INTO webhook_outbox (${OUTBOX_COLUMNS.map((c) => `"${c}"`).join(', ')}) VALUES (${OUTBOX_COLUMNS.map(() => '?').join(', ')}) ON CONFLICT(id) DO NOTHING`;

/** Outbox rows gathered for the next group commit (handed to the writer with the batch). */
export class OutboxBatch {
  private rows: unknown[][] = [];
  add(row: WebhookOutboxRow): void {
    this.rows.push(outboxValues(row));
  }
  /** The rows of this batch; the buffer starts empty again. */
  take(): unknown[][] {
    const r = this.rows;
    this.rows = [];
    return r;
  }
}

export class SqliteWebhookOutbox implements WebhookOutbox {
  private readonly s: Record<'anyDue' | 'claim' | 'remove' | 'retryAt' | 'release' | 'count' | 'trim', BetterSqlite3.Statement>;

  constructor(db: BetterSqlite3.Database, nowMs = Date.now()) {
    // Claimed by a process that is gone (this directory has one owner): due again now.
    db.prepare(`UPDATE webhook_outbox SET claimed = 0, next_attempt_at = min(next_attempt_at, ?) WHERE claimed = 1`).run(nowMs);
    this.s = {
      anyDue: db.prepare(`SELECT 1 FROM webhook_outbox WHERE next_attempt_at <= ? LIMIT 1`),
      claim: db.prepare(
        `UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = ?, claimed = 1
         WHERE id IN (SELECT id FROM webhook_outbox WHERE next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?) RETURNING *`,
      ),
      remove: db.prepare(`DELETE FROM webhook_outbox WHERE id IN (SELECT value FROM json_each(?))`),
      retryAt: db.prepare(`UPDATE webhook_outbox SET next_attempt_at = ?, claimed = 0 WHERE id = ?`),
      release: db.prepare(`UPDATE webhook_outbox SET next_attempt_at = ?, claimed = 0, attempts = max(attempts - 1, 0) WHERE id IN (SELECT value FROM json_each(?))`),
      count: db.prepare(`SELECT count(*) AS n FROM webhook_outbox`),
      trim: db.prepare(
        `DELETE FROM webhook_outbox WHERE id IN (SELECT id FROM webhook_outbox WHERE claimed = 0 OR next_attempt_at <= ? ORDER BY created_at LIMIT ?) RETURNING id, command`,
      ),
    };
  }

  async claim(nowMs: number, leaseUntilMs: number, limit: number): Promise<WebhookOutboxRow[]> {
    // A read first: an idle poll takes no write lock (an UPDATE would wait for the writer thread,
    // or for the busy timeout while another connection holds the database).
    if (!this.s.anyDue.get(nowMs)) return [];
    return (this.s.claim.all(leaseUntilMs, nowMs, limit) as Record<string, unknown>[]).map(rowToOutbox);
  }

  async remove(ids: readonly string[]): Promise<void> {
    if (ids.length) this.s.remove.run(JSON.stringify(ids));
  }

  async retryAt(id: string, nextAttemptAtMs: number): Promise<void> {
    this.s.retryAt.run(nextAttemptAtMs, id);
  }

  async release(ids: readonly string[], nowMs: number): Promise<void> {
    if (ids.length) this.s.release.run(nowMs, JSON.stringify(ids));
  }

  async count(): Promise<number> {
    return (this.s.count.get() as { n: number }).n;
  }

  async trim(maxRows: number, nowMs: number): Promise<{ id: string; command: string }[]> {
    const excess = (await this.count()) - maxRows;
    if (excess <= 0) return [];
    return this.s.trim.all(nowMs, excess) as { id: string; command: string }[];
  }
}
