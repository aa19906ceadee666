/**
 * Creates: those that arrive in the same event-loop turn are inserted by one multi-row statement;
 * a create with an idempotency key is insert-or-replay, atomic per (tenant, key).
 */
import type pg from 'pg';
import type { CreateOutcome } from '../../domain/task-store.js';
import type { TaskRecord } from '../../domain/task.js';
import { taskValues } from '../schema.js';
import { COLS, NOTIFY_TIMER, NOTIFY_WORK, SQL_TYPES, fetchTask } from './sql.js';

const CREATE_BATCH = 500;

interface PendingCreate {
  task: TaskRecord;
  resolve: (o: CreateOutcome) => void;
  reject: (e: unknown) => void;
}

export class CreateBatcher {
  private pending: PendingCreate[] = [];
  private scheduled: Promise<void> | null = null;
  private readonly inflight = new Set<Promise<void>>();

  constructor(private readonly pool: () => pg.Pool) {}

  create(task: TaskRecord): Promise<CreateOutcome> {
    if (task.idempotencyKey) return this.createKeyed(task);
    return new Promise<CreateOutcome>((resolve, reject) => {
      this.pending.push({ task, resolve, reject });
      if (this.pending.length >= CREATE_BATCH) this.flush();
      else if (!this.scheduled) this.scheduled = new Promise<void>((r) => setImmediate(() => r())).then(() => this.flush());
    });
  }

  /** Send what is gathered and wait for every insert (close). */
  async settle(): Promise<void> {
    if (this.pending.length) this.flush();
    await Promise.allSettled([...this.inflight]);
  }

  /** One multi-row INSERT for the creates of this turn (they are independent: one failing row fails the batch). */
  flush(): void {
    this.scheduled = null;
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return;
    const arrays = COLS.map(() => [] as unknown[]);
    for (const { task } of batch) taskValues(task).forEach((v, i) => arrays[i]!.push(v));
    const seqIndex = COLS.indexOf('seq');
    const cols = COLS.filter((c) => c !== 'seq');
    const params = cols.map((c, i) => `$${i + 1}::${SQL_TYPES[c]}[]`).join(', ');
    const p = this.pool()
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
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** Insert-or-replay, atomic per (tenant, key): the key row and the task go in one statement. */
  private async createKeyed(task: TaskRecord): Promise<CreateOutcome> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const v = taskValues(task);
      const seqIndex = COLS.indexOf('seq');
      const cols = COLS.filter((c) => c !== 'seq');
      const values = v.filter((_, i) => i !== seqIndex);
      const r = await this.pool().query<{ id: string; seq: number }>({
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
      const k = await this.pool().query<{ task_id: string }>('SELECT task_id FROM codeq_idempotency WHERE tenant_id = $1 AND key = $2', [task.tenantId, task.idempotencyKey]);
      const existingId = k.rows[0]?.task_id;
      if (existingId) {
        const existing = await fetchTask(this.pool(), existingId);
        if (existing) return { task: existing.task, created: false };
      }
      // The key was purged between the two statements: try again.
    }
    throw new Error('idempotent create did not settle');
  }
}
