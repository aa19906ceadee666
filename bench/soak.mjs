#!/usr/bin/env node
// codeQ soak test (issue 12): mixed load for a long time, printing the server's RSS and heap every
// minute, to show that memory stays bounded. Not part of the test suite.
//
//   node bench/soak.mjs [--minutes 30] [--restart-every 10] [--rate 200] [--workers 8] [--fsync false]
//                       [--server apps/server/dist/main.js]
//
// --server runs another build of the server (e.g. a copy of dist taken before rebuilding, so a
// long soak is not disturbed by a rebuild of the working tree).
// Starts the built server (apps/server/dist/main.js, embedded engine, fresh temp directory) and
// runs, all at once:
//   producers   create tasks at --rate per second (payloads of ~200 bytes, 1 in 10 with an
//               idempotency key, 1 in 10 delayed by 1 s, many distinct commands);
//   workers     long-poll claims (waitSeconds 1); of the claimed tasks 70 % complete, 15 % nack
//               (to retry or, after maxAttempts, to the DLQ), 5 % abandon, 10 % are left to expire
//               (lease 2 s), with heartbeats now and then;
//   churn       long-polls on fresh random commands that time out or are aborted by the client;
//   retention   finished tasks are purged after 60 s (CODEQ_RETENTION_SECONDS);
//   restarts    SIGTERM + restart on the same directory every --restart-every minutes (0 = never).
// Every minute: RSS (/proc VmRSS) and V8 heap used (/metrics nodejs_heap_size_used_bytes) of the
// server, tasks created/completed, errors. At the end: RSS at the last minute vs minute 5.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const args = process.argv.slice(2);
const arg = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i < 0 || args[i + 1] === undefined ? def : args[i + 1];
};
const minutes = Number(arg('minutes', 30));
const restartEvery = Number(arg('restart-every', 10));
const rate = Number(arg('rate', 200));
const workers = Number(arg('workers', 8));
const fsync = String(arg('fsync', 'false')) === 'true';
const serverMain = resolve(root, arg('server', 'apps/server/dist/main.js'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });

const dir = mkdtempSync(join(tmpdir(), 'codeq-soak-'));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const scopes = ['codeq:claim', 'codeq:heartbeat', 'codeq:abandon', 'codeq:nack', 'codeq:result', 'codeq:subscribe'];
const env = {
  ...process.env,
  PORT: String(port),
  HOST: '127.0.0.1',
  LOG_LEVEL: 'error',
  PERSISTENCE_PROVIDER: 'sqlite',
  PERSISTENCE_CONFIG: JSON.stringify({ path: join(dir, 'data'), fsyncOnCommit: fsync }),
  PRODUCER_AUTH_PROVIDER: 'static',
  PRODUCER_AUTH_CONFIG: JSON.stringify({ token: 'soak-producer', subject: 'soak-producer', raw: { tid: 'soak', role: 'ADMIN' } }),
  WORKER_AUTH_PROVIDER: 'static',
  WORKER_AUTH_CONFIG: JSON.stringify({ token: 'soak-worker', subject: 'soak-worker', scopes, eventTypes: ['*'], raw: { tid: 'soak' } }),
  CODEQ_RETENTION_SECONDS: '60',
  MAX_ATTEMPTS_DEFAULT: '3',
  BACKOFF_POLICY: 'fixed',
  BACKOFF_BASE_SECONDS: '1',
  LOCAL_ARTIFACTS_DIR: join(dir, 'artifacts'),
};

let child = null;
async function startServer() {
  child = spawn(process.execPath, [serverMain], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) return;
    } catch {
      /* not yet */
    }
    await sleep(100);
  }
  throw new Error('server did not become ready');
}
async function stopServer() {
  const c = child;
  child = null;
  if (!c) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  await exited;
}

const stats = { created: 0, completed: 0, nacked: 0, abandoned: 0, expiredOnPurpose: 0, churn: 0, errors: 0, http5xx: 0 };
let running = true;
let restarting = false;

async function api(method, path, token, body, signal) {
  const init = { method, headers: { authorization: `Bearer ${token}` }, signal };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['content-type'] = 'application/json';
  }
  const r = await fetch(base + path, init);
  const text = await r.text();
  if (r.status >= 500) stats.http5xx++;
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

const commands = Array.from({ length: 20 }, (_, i) => `soak-${i}`);
const pad = 'x'.repeat(150);

async function producer(perSecond) {
  let seq = 0;
  while (running) {
    const t0 = Date.now();
    const batch = [];
    for (let i = 0; i < perSecond; i++) {
      seq++;
      const body = { command: commands[seq % commands.length], payload: { seq, pad } };
      if (seq % 10 === 0) body.idempotencyKey = `k-${seq}`;
      if (seq % 10 === 5) body.delaySeconds = 1;
      batch.push(body);
    }
    for (let i = 0; i < batch.length && running; i += 20) {
      await Promise.all(
        batch.slice(i, i + 20).map(async (b) => {
          if (restarting) return;
          try {
            const r = await api('POST', '/v1/codeq/tasks', 'soak-producer', b);
            if (r.status === 202) stats.created++;
          } catch {
            if (!restarting) stats.errors++;
          }
        }),
      );
    }
    await sleep(Math.max(0, 1000 - (Date.now() - t0)));
  }
}

async function worker() {
  while (running) {
    if (restarting) {
      await sleep(200);
      continue;
    }
    try {
      const r = await api('POST', '/v1/codeq/tasks/claim', 'soak-worker', { commands, leaseSeconds: 2, waitSeconds: 1 });
      if (r.status !== 200) continue;
      const t = r.body;
      const dice = Math.random();
      if (dice < 0.1) {
        stats.expiredOnPurpose++; // keep it: the lease expires
      } else if (dice < 0.15) {
        await api('POST', `/v1/codeq/tasks/${t.id}/abandon`, 'soak-worker', { leaseId: t.leaseId });
        stats.abandoned++;
      } else if (dice < 0.3) {
        await api('POST', `/v1/codeq/tasks/${t.id}/nack`, 'soak-worker', { leaseId: t.leaseId, delaySeconds: 1, reason: 'soak' });
        stats.nacked++;
      } else {
        if (dice < 0.4) await api('POST', `/v1/codeq/tasks/${t.id}/heartbeat`, 'soak-worker', { leaseId: t.leaseId, extendSeconds: 5 });
        const res = await api('POST', `/v1/codeq/tasks/${t.id}/result`, 'soak-worker', { leaseId: t.leaseId, status: 'COMPLETED', result: { ok: true } });
        if (res.status === 200) stats.completed++;
      }
    } catch {
      if (!restarting) stats.errors++;
      await sleep(100);
    }
  }
}

/** Long-polls on fresh commands that time out or are abandoned by the client. */
async function churn() {
  let n = 0;
  while (running) {
    if (restarting) {
      await sleep(200);
      continue;
    }
    const ac = new AbortController();
    const cmd = `churn-${n++}`;
    const p = api('POST', '/v1/codeq/tasks/claim', 'soak-worker', { commands: [cmd, `churn-x-${n}`], waitSeconds: 2 }, ac.signal).catch(() => null);
    if (n % 2) setTimeout(() => ac.abort(), 50 + Math.random() * 500);
    stats.churn++;
    if (n % 8 === 0) await p;
    else await sleep(20);
  }
}

async function memory() {
  let rssMb = NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
    rssMb = Number(m[1]) / 1024;
  } catch {
    /* process restarting */
  }
  let heapMb = NaN;
  try {
    const text = await (await fetch(`${base}/metrics`)).text();
    const m = /^nodejs_heap_size_used_bytes (\d+(\.\d+)?)/m.exec(text);
    heapMb = Number(m[1]) / 1024 / 1024;
  } catch {
    /* restarting */
  }
  return { rssMb, heapMb };
}

await startServer();
console.log(`soak: ${minutes} min, ${rate} creates/s, ${workers} workers, restart every ${restartEvery || 'never'} min, dir ${dir}`);
console.log('minute  rss_mb  heap_mb  created  completed  nacked  abandoned  expired  churn  5xx  errors');
const loops = [producer(rate), ...Array.from({ length: workers }, worker), churn(), churn()];
const samples = [];
const started = Date.now();
for (let minute = 1; minute <= minutes; minute++) {
  await sleep(Math.max(0, started + minute * 60_000 - Date.now()));
  const m = await memory();
  samples.push({ minute, ...m });
  const f = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-').padStart(7);
  console.log(`${String(minute).padStart(6)} ${f(m.rssMb)} ${f(m.heapMb)}  ${String(stats.created).padStart(7)}  ${String(stats.completed).padStart(9)}  ${String(stats.nacked).padStart(6)}  ${String(stats.abandoned).padStart(9)}  ${String(stats.expiredOnPurpose).padStart(7)}  ${String(stats.churn).padStart(5)}  ${String(stats.http5xx).padStart(3)}  ${String(stats.errors).padStart(6)}`);
  if (restartEvery > 0 && minute % restartEvery === 0 && minute < minutes) {
    restarting = true;
    await sleep(1500); // let in-flight requests finish
    await stopServer();
    await startServer();
    restarting = false;
    console.log(`       (restarted after minute ${minute})`);
  }
}
running = false;
await Promise.race([Promise.all(loops), sleep(5000)]);
await stopServer();
rmSync(dir, { recursive: true, force: true });
const ref = samples.find((s) => s.minute === Math.min(5, minutes));
const last = samples[samples.length - 1];
if (ref && last) {
  const change = ((last.rssMb - ref.rssMb) / ref.rssMb) * 100;
  console.log(`RSS minute ${ref.minute}: ${ref.rssMb.toFixed(1)} MB, minute ${last.minute}: ${last.rssMb.toFixed(1)} MB (${change >= 0 ? '+' : ''}${change.toFixed(1)} %; target within ±10 %)`);
}
process.exit(0);
