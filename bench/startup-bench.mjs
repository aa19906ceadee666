#!/usr/bin/env node
// Start-up with a large embedded store (issue 12 item 6): builds a SQLite data directory holding
// --tasks tasks (default 1,000,000) of mixed statuses with ~200-byte payloads, then starts the
// built server on it and prints the time to the first `/readyz` 200 and the server's RSS.
// Targets: < 5 s and < 300 MB. Not part of the test suite; numbers depend on the machine's load,
// which is printed with them.
//
//   node bench/startup-bench.mjs [--tasks 1000000] [--runs 2] [--keep <dir>] [--server apps/server/dist/main.js]
//
// The store is made fast: the server's own SqliteTaskStore migrates an empty directory, then
// better-sqlite3 inserts the rows directly (one transaction, no journal) in the column order of
// TASK_COLUMNS. Mix: 45 % PENDING (priorities 0-9, 50 commands, 3 tenants), 10 % DELAYED (due in an
// hour), 5 % IN_PROGRESS (lease due in an hour), 30 % COMPLETED, 5 % FAILED in the DLQ, 5 % CANCELLED.
// 1 in 10 has an idempotency key, 1 in 20 a webhook URL, the FAILED ones an error text.
// --keep <dir> reuses (or leaves) the data directory, so later runs skip the build.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const args = process.argv.slice(2);
const arg = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i < 0 || args[i + 1] === undefined ? def : args[i + 1];
};
const total = Number(arg('tasks', 1_000_000));
const runs = Number(arg('runs', 2));
const keep = arg('keep', null);
const serverMain = resolve(root, arg('server', 'apps/server/dist/main.js'));
const dist = join(serverMain, '..');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const freePort = () =>
  new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });

const base = keep ? resolve(keep) : mkdtempSync(join(tmpdir(), 'codeq-startup-'));
const dataDir = join(base, 'data');

async function buildStore() {
  mkdirSync(dataDir, { recursive: true });
  const { SqliteTaskStore } = await import(pathToFileURL(join(dist, 'persistence/sqlite/sqlite-task-store.js')).href);
  const { TASK_COLUMNS } = await import(pathToFileURL(join(dist, 'persistence/schema.js')).href);
  const store = new SqliteTaskStore({ path: dataDir, fsyncOnCommit: false });
  await store.open(); // runs the migrations
  await store.close();
  const Database = createRequire(join(root, 'apps/server/package.json'))('better-sqlite3');
  const db = new Database(join(dataDir, 'codeq.db'));
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -262144');
  const insert = db.prepare(`INSERT INTO tasks (${TASK_COLUMNS.map((c) => `"${c}"`).join(', ')}) VALUES (${TASK_COLUMNS.map(() => '?').join(', ')})`);
  const now = Date.now();
  const hour = 3_600_000;
  const pad = 'x'.repeat(160);
  const chunk = db.transaction((from, to) => {
    for (let i = from; i < to; i++) {
      const r = i % 20; // 0-8 pending, 9-10 delayed, 11 in progress, 12-17 completed, 18 failed, 19 cancelled
      const tenant = `tenant-${i % 3}`;
      const command = `Command${i % 50}`;
      const row = {
        id: randomUUID(), tenant_id: tenant, command, command_key: command.toLowerCase(),
        payload: JSON.stringify({ n: i, pad }), priority: i % 10, webhook: i % 20 === 7 ? `https://hooks.example.com/codeq/${i}` : null,
        status: 'PENDING', location: 'PENDING_LIST', worker_id: null, lease_id: null, lease_until: null, attempts: 0,
        max_attempts: 5, error: null, result_key: null, idempotency_key: i % 10 === 3 ? `key-${i}` : null, visible_at: null,
        seq: i + 1, created_at: now - (total - i), updated_at: now, terminal_at: null, last_error: null, cancel_requested: 0,
      };
      if (r === 9 || r === 10) Object.assign(row, { status: 'PENDING', location: 'DELAYED_ZSET', visible_at: now + hour });
      else if (r === 11) Object.assign(row, { status: 'IN_PROGRESS', location: 'INPROG_SET', worker_id: 'worker-1', lease_id: randomUUID(), lease_until: now + hour, attempts: 1 });
      else if (r >= 12 && r <= 17) Object.assign(row, { status: 'COMPLETED', location: 'NONE', attempts: 1, result_key: `results:${row.id}`, terminal_at: now });
      else if (r === 18) Object.assign(row, { status: 'FAILED', location: 'DLQ_SET', attempts: 5, error: 'handler threw: connection refused', last_error: 'handler threw: connection refused', terminal_at: now });
      else if (r === 19) Object.assign(row, { status: 'CANCELLED', location: 'NONE', terminal_at: now });
      insert.run(TASK_COLUMNS.map((c) => row[c]));
    }
  });
  const t0 = Date.now();
  for (let i = 0; i < total; i += 50_000) chunk(i, Math.min(total, i + 50_000));
  db.pragma('journal_mode = WAL');
  db.close();
  console.log(`built ${total.toLocaleString('en')} tasks in ${((Date.now() - t0) / 1000).toFixed(1)} s (${dataDir})`);
}

function rssMb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) / 1024;
}
/** User + system CPU seconds of a process (robust on a loaded machine, unlike wall time). */
function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}
function hwmMb(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) / 1024;
}

async function startOnce(dataDir) {
  const port = await freePort();
  const env = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    PERSISTENCE_PROVIDER: 'sqlite',
    PERSISTENCE_CONFIG: JSON.stringify({ path: dataDir, fsyncOnCommit: false }),
    PRODUCER_AUTH_PROVIDER: 'static',
    PRODUCER_AUTH_CONFIG: JSON.stringify({ token: 'bench', subject: 'bench', raw: { tid: 'tenant-0', role: 'ADMIN' } }),
    WORKER_AUTH_PROVIDER: 'static',
    WORKER_AUTH_CONFIG: JSON.stringify({ token: 'bench-w', subject: 'bench-w', scopes: ['codeq:claim'], eventTypes: ['*'], raw: { tid: 'tenant-0' } }),
    LOCAL_ARTIFACTS_DIR: join(base, 'artifacts'),
  };
  const t0 = performance.now();
  const child = spawn(process.execPath, [serverMain], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let opened = '';
  const scan = (b) => {
    const m = /"liveTasks":(\d+),"ms":(\d+)/.exec(String(b));
    if (m) opened = `${Number(m[1]).toLocaleString('en')} live tasks loaded in ${m[2]} ms`;
    else if (/"level":"(error|fatal)"/.test(String(b))) process.stderr.write(b);
  };
  child.stdout.on('data', scan);
  child.stderr.on('data', scan);
  const exited = new Promise((r) => child.once('exit', r));
  let readyMs = NaN;
  for (;;) {
    if (child.exitCode !== null) throw new Error('server exited before it was ready');
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) {
        readyMs = performance.now() - t0;
        break;
      }
    } catch {
      /* not yet */
    }
    await sleep(20);
  }
  const rssReady = rssMb(child.pid);
  const cpuReady = cpuSeconds(child.pid);
  // One claim and one read, so the first request's lazy work is part of the figure.
  const claim = await fetch(`http://127.0.0.1:${port}/v1/codeq/tasks/claim`, {
    method: 'POST',
    headers: { authorization: 'Bearer bench-w', 'content-type': 'application/json' },
    body: JSON.stringify({ commands: ['command1'] }),
  });
  const claimed = claim.status === 200 ? await claim.json() : null;
  await sleep(3000);
  const rssSettled = rssMb(child.pid);
  const peak = hwmMb(child.pid);
  child.kill('SIGTERM');
  await exited;
  if (!claimed) console.log(`claim answered ${claim.status}: ${await claim.text()}`);
  return { readyMs, rssReady, rssSettled, peak, opened, claimOk: claim.status === 200 && typeof claimed?.payload === 'string' && claimed.payload.includes('"pad"'), cpuReady };
}

console.log(`startup bench: ${total.toLocaleString('en')} tasks, ${cpus().length} cores, load average ${load()}`);
if (!existsSync(join(dataDir, 'codeq.db'))) await buildStore();
else console.log(`reusing ${dataDir}`);
// The same server on an empty store: what start-up costs on this machine without any task.
{
  const empty = mkdtempSync(join(tmpdir(), 'codeq-startup-empty-'));
  const loadBefore = load();
  const r = await startOnce(join(empty, 'data'));
  rmSync(empty, { recursive: true, force: true });
  console.log(`empty store: ready in ${(r.readyMs / 1000).toFixed(2)} s, ${r.cpuReady.toFixed(2)} CPU s; RSS at ready ${r.rssReady.toFixed(0)} MB, 3 s later ${r.rssSettled.toFixed(0)} MB; load average before ${loadBefore}`);
}
for (let i = 1; i <= runs; i++) {
  const loadBefore = load();
  const r = await startOnce(dataDir);
  console.log(
    `run ${i}: ready in ${(r.readyMs / 1000).toFixed(2)} s (target < 5 s), ${r.cpuReady.toFixed(2)} CPU s; RSS at ready ${r.rssReady.toFixed(0)} MB, ` +
      `3 s later ${r.rssSettled.toFixed(0)} MB, peak ${r.peak.toFixed(0)} MB (target < 300 MB); ${r.opened}; ` +
      `first claim ${r.claimOk ? 'ok, payload read from disk' : 'FAILED'}; load average before ${loadBefore}`,
  );
}
if (!keep) rmSync(base, { recursive: true, force: true });
