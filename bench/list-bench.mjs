#!/usr/bin/env node
// Operator listing benchmark (issue 14): how long GET /v1/codeq/tasks takes for a page of 50 out of
// a large store (default 1,000,000 tasks), on the embedded engine and on PostgreSQL. Not a test:
// it prints numbers.
//
//   node bench/list-bench.mjs [--engine sqlite|postgres|both] [--rows 1000000] [--runs 40]
//                             [--pg-url postgres://user@127.0.0.1:5432/postgres] [--json]
//
// It seeds the database directly (one transaction of bulk inserts; a realistic mix: 70 % COMPLETED,
// 8 % FAILED of which half dead-lettered, 10 % ready, 5 % delayed, 5 % in progress, 2 % CANCELLED,
// 20 commands, 2 tenants), starts apps/server/dist/main.js on it, and times real HTTP requests
// (first page, filtered pages, a page 20 pages deep through the cursor), after a warm-up.
// PostgreSQL needs --pg-url (or CODEQ_TEST_PG_URL): the bench creates and drops its own database.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const MAIN = join(root, 'apps/server/dist/main.js');
const req = createRequire(join(root, 'apps/server/package.json'));

const { values: a } = parseArgs({
  options: {
    engine: { type: 'string', default: 'both' },
    rows: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '40' },
    'pg-url': { type: 'string', default: process.env['CODEQ_TEST_PG_URL'] ?? '' },
    json: { type: 'boolean', default: false },
  },
});
const ROWS = Number(a.rows);
const RUNS = Number(a.runs);
const TOKEN = 'bench';
const out = a.json ? (s) => process.stderr.write(s + '\n') : (s) => process.stdout.write(s + '\n');
if (!existsSync(MAIN)) {
  console.error(`${MAIN} is missing: build the server first (bash scripts/pnpm.sh exec turbo run build --filter=@codeq/server)`);
  process.exit(2);
}

const freePort = () =>
  new Promise((res, rej) => {
    const s = net.createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });

async function startServer(env) {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      PRODUCER_AUTH_PROVIDER: 'static',
      PRODUCER_AUTH_CONFIG: JSON.stringify({ token: TOKEN, subject: 'bench', raw: { role: 'ADMIN', tid: 't0' } }),
      WORKER_AUTH_PROVIDER: 'static',
      WORKER_AUTH_CONFIG: JSON.stringify({ token: 'w', subject: 'w', scopes: ['codeq:claim'], eventTypes: ['*'], raw: { tid: 't0' } }),
      CODEQ_RETENTION_SECONDS: String(10 * 365 * 86400),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const url = `http://127.0.0.1:${port}`;
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited:\n${log}`);
    try {
      if ((await fetch(url + '/readyz')).status === 200) break;
    } catch {
      /* not yet */
    }
    if (Date.now() - started > 600_000) throw new Error(`server not ready:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    startMs: Date.now() - started,
    stop: () => new Promise((r) => (child.exitCode !== null ? r() : (child.once('exit', r), child.kill('SIGTERM')))),
  };
}

// --- the data set ------------------------------------------------------------------------------

const BASE = Date.UTC(2026, 0, 1);
/** Row i: [status, location, terminal?]. */
function kind(i) {
  const m = i % 100;
  if (m < 70) return ['COMPLETED', 'NONE', true];
  if (m < 74) return ['FAILED', 'NONE', true];
  if (m < 78) return ['FAILED', 'DLQ_SET', true];
  if (m < 88) return ['PENDING', 'PENDING_LIST', false];
  if (m < 93) return ['PENDING', 'DELAYED_ZSET', false];
  if (m < 98) return ['IN_PROGRESS', 'INPROG_SET', false];
  return ['CANCELLED', 'NONE', true];
}
const hex = (n, w) => n.toString(16).padStart(w, '0');
/** Time-ordered ids like the server's (48-bit ms prefix). */
const idOf = (i, at) => `${hex(Math.floor(at / 65536), 8)}-${hex(at % 65536, 4)}-4${hex(i % 4096, 3)}-8${hex((i >> 12) % 4096, 3)}-${hex(i, 12)}`;

function seedSqlite(dir) {
  const Database = req('better-sqlite3');
  const db = new Database(join(dir, 'codeq.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const cols = ['id', 'tenant_id', 'command', 'command_key', 'payload', 'priority', 'status', 'location', 'lease_until', 'lease_id', 'worker_id', 'attempts', 'max_attempts', 'error', 'last_error', 'result_key', 'visible_at', 'seq', 'created_at', 'updated_at', 'terminal_at', 'cancel_requested'];
  const ins = db.prepare(`INSERT INTO tasks (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`);
  const far = Date.now() + 365 * 86400_000;
  db.transaction(() => {
    for (let i = 0; i < ROWS; i++) {
      const [status, location, terminal] = kind(i);
      const at = BASE + i * 10;
      const cmd = `cmd${i % 20}`;
      const failed = status === 'FAILED';
      ins.run(
        idOf(i, at), i % 10 === 9 ? 't1' : 't0', cmd, cmd, `{"n":${i},"pad":"${'x'.repeat(80)}"}`, i % 10, status, location,
        location === 'INPROG_SET' ? far : null, location === 'INPROG_SET' ? `l${i}` : null, location === 'INPROG_SET' ? 'w' : null,
        failed || location === 'INPROG_SET' ? 1 : 0, 5, failed ? 'boom' : null, failed ? 'boom' : null, terminal ? 'codeq:results' : null,
        location === 'DELAYED_ZSET' ? far : null, i + 1, at, at, terminal ? at : null, 0,
      );
    }
  })();
  db.close();
}

async function seedPostgres(url) {
  const pg = req('pg');
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const far = Date.now() + 365 * 86400_000;
  // The same mix as SQLite, generated in the database (ids: md5-based, time-ordered by created_at).
  const sel = (where, table, terminal) => `
    INSERT INTO ${table} (id, tenant_id, command, command_key, payload, priority, status, location, lease_until, lease_id, worker_id, attempts, max_attempts,
                          error, last_error, result_key, visible_at, seq, created_at, updated_at, terminal_at, cancel_requested)
    SELECT lpad(to_hex(${BASE}::bigint + g * 10), 12, '0') || '-' || md5(g::text), CASE WHEN g % 10 = 9 THEN 't1' ELSE 't0' END, 'cmd' || (g % 20), 'cmd' || (g % 20),
           '{"n":' || g || ',"pad":"' || repeat('x', 80) || '"}', g % 10, k.status, k.location,
           CASE WHEN k.location = 'INPROG_SET' THEN ${far}::bigint END, CASE WHEN k.location = 'INPROG_SET' THEN 'l' || g END, CASE WHEN k.location = 'INPROG_SET' THEN 'w' END,
           CASE WHEN k.status = 'FAILED' OR k.location = 'INPROG_SET' THEN 1 ELSE 0 END, 5,
           CASE WHEN k.status = 'FAILED' THEN 'boom' END, CASE WHEN k.status = 'FAILED' THEN 'boom' END, ${terminal ? `'codeq:results'` : 'NULL'},
           CASE WHEN k.location = 'DELAYED_ZSET' THEN ${far}::bigint END, g + 1, ${BASE}::bigint + g * 10, ${BASE}::bigint + g * 10, ${terminal ? `${BASE}::bigint + g * 10` : 'NULL'}, 0
    FROM generate_series(0, ${ROWS - 1}) g
    CROSS JOIN LATERAL (SELECT CASE WHEN g % 100 < 70 THEN 'COMPLETED' WHEN g % 100 < 78 THEN 'FAILED' WHEN g % 100 < 93 THEN 'PENDING' WHEN g % 100 < 98 THEN 'IN_PROGRESS' ELSE 'CANCELLED' END AS status,
                               CASE WHEN g % 100 < 74 THEN 'NONE' WHEN g % 100 < 78 THEN 'DLQ_SET' WHEN g % 100 < 88 THEN 'PENDING_LIST' WHEN g % 100 < 93 THEN 'DELAYED_ZSET' WHEN g % 100 < 98 THEN 'INPROG_SET' ELSE 'NONE' END AS location) k
    WHERE ${where}`;
  await c.query(sel(`g % 100 >= 78 AND g % 100 < 98`, 'codeq_tasks', false));
  await c.query(sel(`g % 100 < 78 OR g % 100 >= 98`, 'codeq_finished', true));
  await c.query(`SELECT setval('codeq_seq', ${ROWS + 1})`);
  await c.query('ANALYZE');
  await c.end();
}

// --- measuring ---------------------------------------------------------------------------------

async function get(url, path) {
  const t0 = performance.now();
  const r = await fetch(url + path, { headers: { authorization: `Bearer ${TOKEN}` } });
  const body = await r.json();
  const ms = performance.now() - t0;
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${JSON.stringify(body)}`);
  return { ms, body };
}

const pct = (xs, p) => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

async function measure(engine, url) {
  // A cursor 20 pages deep (keyset: costs the same as the first page).
  let cursor = null;
  for (let i = 0; i < 20; i++) cursor = (await get(url, `/v1/codeq/tasks?limit=50${cursor ? `&cursor=${cursor}` : ''}`)).body.nextCursor;
  const cases = [
    ['first page, all statuses', '/v1/codeq/tasks?limit=50'],
    ['page 21 (cursor)', `/v1/codeq/tasks?limit=50&cursor=${cursor}`],
    ['status=FAILED', '/v1/codeq/tasks?limit=50&status=FAILED'],
    ['status=PENDING,DELAYED', '/v1/codeq/tasks?limit=50&status=PENDING,DELAYED'],
    ['command=cmd7', '/v1/codeq/tasks?limit=50&command=cmd7'],
    ['command=cmd15&status=IN_PROGRESS', '/v1/codeq/tasks?limit=50&command=cmd15&status=IN_PROGRESS'],
    ['dlq (admin/dlq)', '/v1/codeq/admin/dlq?limit=50'],
    ['createdBefore (old window)', `/v1/codeq/tasks?limit=50&createdBefore=${new Date(BASE + ROWS * 5).toISOString()}`],
  ];
  const rows = [];
  for (const [name, path] of cases) {
    for (let i = 0; i < 5; i++) await get(url, path); // warm-up
    const ms = [];
    let n = 0;
    for (let i = 0; i < RUNS; i++) {
      const r = await get(url, path);
      ms.push(r.ms);
      n = r.body.tasks.length;
    }
    rows.push({ engine, case: name, tasks: n, p50: +pct(ms, 50).toFixed(2), p95: +pct(ms, 95).toFixed(2), max: +Math.max(...ms).toFixed(2) });
  }
  return rows;
}

async function runSqlite() {
  const dir = mkdtempSync(join(os.tmpdir(), 'codeq-list-bench-'));
  const data = join(dir, 'data');
  try {
    const env = { PERSISTENCE_PROVIDER: 'sqlite', PERSISTENCE_CONFIG: JSON.stringify({ path: data }) };
    await (await startServer(env)).stop(); // schema
    let t0 = Date.now();
    seedSqlite(data);
    out(`sqlite: seeded ${ROWS} tasks in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    t0 = Date.now();
    const s = await startServer(env);
    out(`sqlite: server ready in ${(s.startMs / 1000).toFixed(1)} s (loads live tasks into memory)`);
    try {
      return await measure('sqlite', s.url);
    } finally {
      await s.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runPostgres() {
  if (!a['pg-url']) {
    out('postgres: skipped (give --pg-url or CODEQ_TEST_PG_URL)');
    return [];
  }
  const pg = req('pg');
  const name = `codeq_list_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: a['pg-url'] });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(a['pg-url']);
  u.pathname = `/${name}`;
  try {
    const env = { PERSISTENCE_PROVIDER: 'postgres', PERSISTENCE_CONFIG: JSON.stringify({ url: u.toString(), poolSize: 4 }) };
    await (await startServer(env)).stop(); // schema
    const t0 = Date.now();
    await seedPostgres(u.toString());
    out(`postgres: seeded ${ROWS} tasks in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const s = await startServer(env);
    try {
      return await measure('postgres', s.url);
    } finally {
      await s.stop();
    }
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

const results = [];
if (a.engine === 'sqlite' || a.engine === 'both') results.push(...(await runSqlite()));
if (a.engine === 'postgres' || a.engine === 'both') results.push(...(await runPostgres()));
out(`\nGET a page of 50 out of ${ROWS.toLocaleString('en')} tasks over HTTP (${RUNS} runs each, ms; ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)})`);
out(`${'engine'.padEnd(9)} ${'case'.padEnd(34)} ${'tasks'.padStart(5)} ${'p50'.padStart(7)} ${'p95'.padStart(7)} ${'max'.padStart(7)}`);
for (const r of results) out(`${r.engine.padEnd(9)} ${r.case.padEnd(34)} ${String(r.tasks).padStart(5)} ${r.p50.toFixed(2).padStart(7)} ${r.p95.toFixed(2).padStart(7)} ${r.max.toFixed(2).padStart(7)}`);
if (a.json) process.stdout.write(JSON.stringify({ bench: 'list', rows: ROWS, runs: RUNS, loadavg: os.loadavg()[0], results }) + '\n');
