/**
 * The operator listing answers from indexes on both engines (issue 14): every branch of the
 * listing SQL is an index range walked in order (no full scan of a task table, no sort of all
 * matching rows). Checked with the engines' own plans: SQLite EXPLAIN QUERY PLAN always; PostgreSQL
 * EXPLAIN (on a table with enough rows for the planner to prefer indexes) in the PostgreSQL pass.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { ListQuery } from '../src/domain/task-store.js';
import { SqliteTaskStore } from '../src/persistence/sqlite/sqlite-task-store.js';
import { PostgresTaskStore } from '../src/persistence/postgres/postgres-task-store.js';
import { PG_URL, dropDatabase, ensureDatabase } from './pg.js';

const after = { createdAtMs: Date.now(), id: 'ffffffff-ffff-4fff-bfff-ffffffffffff' };
const QUERIES: [string, ListQuery][] = [
  ['every status', { tenantId: 'acme', limit: 51 }],
  ['every status, next page', { tenantId: 'acme', limit: 51, after }],
  ['PENDING', { tenantId: 'acme', limit: 51, statuses: ['PENDING'] }],
  ['DELAYED of a command', { tenantId: 'acme', limit: 51, statuses: ['DELAYED'], commandKey: 'cmd3' }],
  ['FAILED,CANCELLED in a time window', { tenantId: 'acme', limit: 51, statuses: ['FAILED', 'CANCELLED'], createdAfterMs: 1, createdBeforeMs: Date.now(), after }],
  ['a command, next page', { tenantId: 'acme', limit: 51, commandKey: 'cmd1', after }],
  ['dead letters', { tenantId: 'acme', limit: 51, dlq: true }],
  ['dead letters of a command, next page', { tenantId: 'acme', limit: 51, dlq: true, commandKey: 'cmd2', after }],
];

describe('listing query plans: SQLite', () => {
  let dir: string;
  let store: SqliteTaskStore;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'codeq-plans-'));
    store = new SqliteTaskStore({ path: dir, fsyncOnCommit: false });
    await store.open();
  });
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it.each(QUERIES)('%s: every branch searches a listing index, no table scan', (_name, q) => {
    const plan = store.explainList(q);
    const searches = plan.filter((l) => /^SEARCH tasks USING (COVERING )?INDEX tasks_(list_status|list_command|dlq|dlq_command) /.test(l));
    expect(searches.length).toBeGreaterThan(0);
    expect(plan.filter((l) => /^SCAN tasks\b/.test(l))).toEqual([]);
    // Each branch reads the index in order and stops at its LIMIT (no sort inside a branch); the
    // only sorts allowed are the merge's, over a branch's output (`SCAN b<i>`: at most LIMIT rows).
    plan.forEach((l, i) => {
      if (l.includes('TEMP B-TREE')) expect(plan[i - 1]).toMatch(/^SCAN b\d+$/);
    });
    if (searches.length === 1) expect(plan.some((l) => l.includes('TEMP B-TREE'))).toBe(false);
  });
});

const pgDescribe = PG_URL ? describe : describe.skip;
if (!PG_URL) process.stderr.write('list-plans.int-spec: PostgreSQL plans skipped, CODEQ_TEST_PG_URL is not set (scripts/test.sh sets it)\n');

pgDescribe('listing query plans: PostgreSQL', () => {
  const name = `codeq_plans_${process.pid}`;
  let store: PostgresTaskStore;
  beforeAll(async () => {
    const url = await ensureDatabase(name);
    store = new PostgresTaskStore({ url, poolSize: 2 });
    await store.open();
    // Enough rows (live and finished, 5 commands, 2 tenants) for the planner to weigh indexes.
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const cols = `id, tenant_id, command, command_key, payload, priority, status, location, attempts, max_attempts, seq, created_at, updated_at`;
    const gen = (table: string, status: string, location: string, n: number, terminal: boolean) =>
      c.query(
        `INSERT INTO ${table} (${cols}${terminal ? ', terminal_at' : ''})
         SELECT md5(g::text || '${table}${status}${location}'), CASE WHEN g % 10 = 0 THEN 'globex' ELSE 'acme' END, 'CMD' || (g % 5), 'cmd' || (g % 5), '{"big":"payload"}', 0,
                '${status}', '${location}', 1, 5, g, 1700000000000 + g, 1700000000000 + g${terminal ? ', 1700000000000 + g' : ''}
         FROM generate_series(1, ${n}) g`,
      );
    await gen('codeq_tasks', 'PENDING', 'PENDING_LIST', 20_000, false);
    await gen('codeq_tasks', 'PENDING', 'DELAYED_ZSET', 5_000, false);
    await gen('codeq_tasks', 'IN_PROGRESS', 'INPROG_SET', 5_000, false);
    await gen('codeq_finished', 'COMPLETED', 'NONE', 40_000, true);
    await gen('codeq_finished', 'FAILED', 'DLQ_SET', 5_000, true);
    await gen('codeq_finished', 'CANCELLED', 'NONE', 5_000, true);
    await c.query('ANALYZE codeq_tasks; ANALYZE codeq_finished');
    await c.end();
  }, 120_000);
  afterAll(async () => {
    await store?.close();
    await dropDatabase(name);
  });

  it.each(QUERIES)('%s: every branch is an index scan, no sequential scan', async (_name, q) => {
    const plan = (await store.explainList(q)).join('\n');
    expect(plan).toMatch(/Index (Only )?Scan/);
    expect(plan).not.toMatch(/Seq Scan/);
    expect(plan).not.toMatch(/Bitmap Heap Scan/);
  });

  it('returns rows in the order the plan reads them', async () => {
    const rows = await store.list({ tenantId: 'acme', limit: 20 });
    const keys = rows.map((r) => [r.createdAtMs, r.id] as const);
    const sorted = [...keys].sort((a, b) => b[0] - a[0] || (a[1] < b[1] ? 1 : -1));
    expect(keys).toEqual(sorted);
    expect(rows).toHaveLength(20);
  });
});
