/**
 * Transitions on the PostgreSQL engine: every change is an optimistic, guarded statement
 * (`WHERE id = $1 AND version = $v`): a reaper or worker acting on a stale read changes nothing
 * and re-reads. A task that finishes moves to `codeq_finished` (with its result) in the statement
 * that finishes it, so the hot table stays small whatever the retention.
 */
import type pg from 'pg';
import type { Transition, TransitionFn } from '../../domain/task-store.js';
import type { WebhookOutboxRow } from '../../domain/webhook-outbox.js';
import { PG_OUTBOX_INSERT, outboxInsertCte, outboxValues } from './postgres-webhook-outbox.js';
import { isTerminal, type ResultRecord, type TaskRecord } from '../../domain/task.js';
import { MUTABLE_COLUMNS, mutableValues, resultUpsertSql, resultValues, taskValues, type Row } from '../schema.js';
import { COLS, COL_LIST, NOTIFY_TIMER, NOTIFY_WORK, SQL_TYPES, fetchResult, fetchTask, type Fetched } from './sql.js';

/** Bounds of the copy of recently leased rows (entries; payload characters of one entry). */
const RECENT_MAX = 4096;
const RECENT_MAX_PAYLOAD = 16 * 1024;
/** SQL types of the result columns (RESULT_COLUMNS order). */
const RESULT_SQL_TYPES = ['text', 'text', 'text', 'text', 'text', 'text', 'bigint', 'text', 'text'];

export class Transitions {
  /** Live rows this replica leased or wrote last (id → row and version), a hint for run(). */
  private readonly recent = new Map<string, Fetched>();

  constructor(private readonly pool: () => pg.Pool) {}

  /** Keep a copy of a live row this replica wrote (bounded; oldest first out; large payloads skipped). */
  remember(f: Fetched): void {
    this.recent.delete(f.task.id);
    if (!f.live || f.task.payload.length > RECENT_MAX_PAYLOAD) return;
    this.recent.set(f.task.id, f);
    if (this.recent.size > RECENT_MAX) this.recent.delete(this.recent.keys().next().value!);
  }

  /** Forget the copy of a row (it changed elsewhere). */
  forget(id: string): void {
    this.recent.delete(id);
  }

  /**
   * Read, apply `fn`, write guarded by the version read; a lost race re-reads and re-runs `fn`.
   * The first attempt may start from the copy of a row this replica leased or wrote itself (see
   * `recent`), which saves the read on the hot path (claim → heartbeat → result on one replica).
   * A stale copy is harmless: the version guard refuses the write, and an answer that is not a
   * successful write (a refusal, or no change) is only ever given from a fresh read.
   */
  async run<R>(tenantId: string | null, id: string, fn: TransitionFn<R>): Promise<R> {
    let f: Fetched | null = this.recent.get(id) ?? null;
    let cached = f !== null;
    for (let attempt = 0; ; attempt++) {
      if (!cached) f = await fetchTask(this.pool(), id);
      const current = f && (tenantId === null || f.task.tenantId === tenantId) ? f : null;
      // Only finished tasks have results (a result is stored by the transition that finishes a task).
      const stored = current && isTerminal(current.task.status) ? await fetchResult(this.pool(), id) : null;
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

  /** Write `next` if the row is still the version that was read; false = lost a race (re-read). */
  private async apply(prev: Fetched, next: TaskRecord, result: ResultRecord | null, webhook?: WebhookOutboxRow): Promise<boolean> {
    const newSeq = next.location === 'PENDING_LIST' || next.location === 'DELAYED_ZSET';
    if (prev.live && !isTerminal(next.status)) {
      const r = await this.pool().query({
        name: 'codeq_update',
        text: `WITH src AS (
                 UPDATE codeq_tasks SET ${MUTABLE_COLUMNS.map((c, i) => `"${c}" = $${i + 3}`).join(', ')},
                   seq = CASE WHEN $${MUTABLE_COLUMNS.length + 3}::boolean THEN nextval('codeq_seq') ELSE seq END, version = version + 1
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
      const r = await this.pool().query({
        name: result ? (webhook ? 'codeq_finish_result_webhook' : 'codeq_finish_result') : webhook ? 'codeq_finish_webhook' : 'codeq_finish',
        text: `WITH gone AS (DELETE FROM codeq_tasks WHERE id = $1 AND version = $${base + 1} RETURNING id),
               f AS (INSERT INTO codeq_finished (${COL_LIST}) SELECT ${COLS.map((c, i) => `$${i + 1}::${SQL_TYPES[c]}`).join(', ')} WHERE EXISTS (SELECT 1 FROM gone) RETURNING id)
               ${result
                 ? `, r AS (${resultUpsertSql('codeq_results', (i) => `$${base + 1 + i}::${RESULT_SQL_TYPES[i - 1]}`, 'WHERE EXISTS (SELECT 1 FROM gone)')} RETURNING task_id),
                   n AS (SELECT pg_notify('codeq_result', task_id) FROM r)`
                 : ', n AS (SELECT 1 WHERE false)'}${webhook ? outboxInsertCte(base + 2 + (result ? 9 : 0)) : ''}
               SELECT (SELECT count(*) FROM f) AS changed, (SELECT count(*) FROM n) AS notified`,
        values: [...taskValues(next), prev.version, ...(result ? resultValues(result) : []), ...(webhook ? outboxValues(webhook) : [])],
      });
      return Number((r.rows[0] as Row)['changed']) === 1;
    }
    // A finished task changing again (not produced by the current rules, kept for completeness):
    // rewrite it in place, or move it back to the hot table.
    const client = await this.pool().connect();
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
          resultUpsertSql('codeq_results', (i) => `$${i}`),
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
}
