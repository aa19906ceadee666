/**
 * The result-webhook outbox on the PostgreSQL engine (ADR 0012). A row is inserted by the statement
 * (or transaction) that finishes its task (`outboxInsertCte`, used by postgres-task-store.ts). Any
 * replica may deliver: a claim is one `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)`
 * that moves the row's due time to the end of a lease (visibility timeout), so concurrent claims
 * never return the same row and a replica that dies mid-attempt leaves its rows to the others once
 * the lease ends. The trim beyond the cap runs on one replica at a time (transaction-level
 * advisory lock).
 */
import type pg from 'pg';
import { OUTBOX_COLUMNS, outboxValues, rowToOutbox, type WebhookOutbox, type WebhookOutboxRow } from '../../domain/webhook-outbox.js';

const TYPES = ['text', 'text', 'text', 'text', 'text', 'text', 'bigint', 'integer', 'bigint'] as const;
const COL_LIST = OUTBOX_COLUMNS.map((c) => `"${c}"`).join(', ');
/** Advisory lock key of the trim (any constant distinct from the engine's other locks). */
const TRIM_LOCK = 7_305_120_012;

/**
 * A CTE that inserts one outbox row when the CTE `gone` (the finishing delete) changed a row; its
 * parameters start at `$first` and take the values of {@link outboxValues}.
 */
export function outboxInsertCte(first: number): string {
  return `, o AS (INSERT INTO codeq_webhook_outbox (${COL_LIST}) SELECT ${TYPES.map((t, i) => `$${first + i}::${t}`).join(', ')} WHERE EXISTS (SELECT 1 FROM gone) ON CONFLICT (id) DO NOTHING)`;
}

/** A plain insert of one outbox row (inside a transaction of the caller). */
export const PG_OUTBOX_INSERT = `INSERT INTO codeq_webhook_outbox (${COL_LIST}) VALUES (${OUTBOX_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT (id) DO NOTHING`;

export { outboxValues };

export class PostgresWebhookOutbox implements WebhookOutbox {
  constructor(private readonly pool: pg.Pool) {}

  async claim(nowMs: number, leaseUntilMs: number, limit: number): Promise<WebhookOutboxRow[]> {
    const r = await this.pool.query({
      name: 'codeq_outbox_claim',
      text: `UPDATE codeq_webhook_outbox SET attempts = attempts + 1, next_attempt_at = $2, claimed = 1
             WHERE id IN (SELECT id FROM codeq_webhook_outbox WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING *`,
      values: [nowMs, leaseUntilMs, limit],
    });
    return r.rows.map((x) => rowToOutbox(x as Record<string, unknown>));
  }

  async remove(ids: readonly string[]): Promise<void> {
    if (ids.length) await this.pool.query('DELETE FROM codeq_webhook_outbox WHERE id = ANY($1::text[])', [ids]);
  }

  async retryAt(id: string, nextAttemptAtMs: number): Promise<void> {
    await this.pool.query('UPDATE codeq_webhook_outbox SET next_attempt_at = $2, claimed = 0 WHERE id = $1', [id, nextAttemptAtMs]);
  }

  async release(ids: readonly string[], nowMs: number): Promise<void> {
    if (!ids.length) return;
    await this.pool.query('UPDATE codeq_webhook_outbox SET next_attempt_at = $2, claimed = 0, attempts = greatest(attempts - 1, 0) WHERE id = ANY($1::text[])', [ids, nowMs]);
  }

  async count(): Promise<number> {
    const r = await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM codeq_webhook_outbox');
    return Number(r.rows[0]?.n ?? 0);
  }

  async trim(maxRows: number, nowMs: number): Promise<{ id: string; command: string }[]> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const locked = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [TRIM_LOCK]);
      if (!locked.rows[0]?.ok) {
        await c.query('ROLLBACK');
        return [];
      }
      const n = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM codeq_webhook_outbox')).rows[0]?.n ?? 0);
      let out: { id: string; command: string }[] = [];
      if (n > maxRows) {
        const r = await c.query<{ id: string; command: string }>(
          `DELETE FROM codeq_webhook_outbox WHERE id IN (
             SELECT id FROM codeq_webhook_outbox WHERE claimed = 0 OR next_attempt_at <= $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
           RETURNING id, command`,
          [nowMs, n - maxRows],
        );
        out = r.rows;
      }
      await c.query('COMMIT');
      return out;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      c.release();
    }
  }
}
